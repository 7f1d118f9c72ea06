"""Keras 2's legacy HDF5 weights file (weights.h5), the form of the author's released model:
root attributes layer_names/backend/keras_version, one group per sub-model ('encoder', 'decoder')
with its weights in Keras 2's order. The weights are matched to a built model's layers in build
order, as Keras 2 itself loaded them. Needs h5py, not TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from semantic_timbre.network.config import ModelFolderError
from semantic_timbre.network.model_files import PARAMETERS_JSON, replace_damaged

def _weighted_layers(model) -> list:
    return [layer for layer in model.layers if layer.trainable_weights or layer.non_trainable_weights]



def _variable_name(variable) -> str:
    return variable.name.split("/")[-1].split(":")[0]



def write_legacy_weights(path, vae, parameters=None) -> None:
    """Write the weights as Keras 2's Model.save_weights did for the thesis's model.

    Root attributes layer_names/backend/keras_version; one group per sub-model ('encoder',
    'decoder') with attribute weight_names ('conv2d/kernel:0', ...) in Keras 2's order (all
    trainable weights by layer, then the non-trainable ones) and one dataset per weight.
    Non-finite weights raise ValueError (the caller's temporary file is then discarded).
    """
    import h5py

    with h5py.File(path, "w") as handle:
        # The thesis's whole model: its input layer (Keras 2 named it input_3), then the sub-models.
        handle.attrs["layer_names"] = [b"input_3", b"encoder", b"decoder"]
        handle.attrs["backend"] = b"tensorflow"
        handle.attrs["keras_version"] = _keras_version().encode("utf8")
        if parameters is not None:
            handle.attrs["semantic_timbre_parameters"] = json.dumps(parameters).encode("utf8")
        handle.create_group("input_3").attrs["weight_names"] = []
        handle.create_group("top_level_model_weights").attrs["weight_names"] = []
        for model in (vae.encoder, vae.decoder):
            group = handle.create_group(model.name)
            weighted = _weighted_layers(model)
            entries = [(layer, variable) for layer in weighted for variable in layer.trainable_weights]
            entries += [(layer, variable) for layer in weighted for variable in layer.non_trainable_weights]
            weight_names = [f"{layer.name}/{_variable_name(variable)}:0" for layer, variable in entries]
            group.attrs["weight_names"] = [name.encode("utf8") for name in weight_names]
            for name, (layer, variable) in zip(weight_names, entries):
                value = np.asarray(variable)
                if not np.all(np.isfinite(value)):
                    raise ValueError(f"refusing to save the model: {model.name} layer {layer.name} holds NaN "
                                     f"or infinite weights (training diverged?)")
                group.create_dataset(name, data=value)



def _decode(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)



def read_legacy_weights(path, vae, parameters=None) -> None:
    """Load a Keras 2 legacy weights.h5 (the thesis's layout, or ours) into `vae`.

    Weights are matched to layers in build order within each sub-model, as Keras 2 did, so the
    file's layer names (which depend on what else its session built) do not matter; the kind of
    each weight and its shape are checked.
    """
    import h5py

    path = Path(path)
    retrain = replace_damaged(path)
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ModelFolderError(f"{path} is not a readable weights file ({error}): {retrain}") from None
    with handle:
        recorded = handle.attrs.get("semantic_timbre_parameters")
        if recorded is not None and parameters is not None and json.loads(_decode(recorded)) != json.loads(
                json.dumps(parameters)):
            raise ModelFolderError(f"{path} was saved with other parameters than {path.parent}/'s parameter "
                                   f"files (edited, or an interrupted save?): the weights were saved with "
                                   f"{_decode(recorded)}; put those back in {path.parent / PARAMETERS_JSON} "
                                   f"(the weights are kept), or train again")
        root = handle["model_weights"] if "model_weights" in handle else handle
        for model in (vae.encoder, vae.decoder):
            if model.name not in root:
                raise ModelFolderError(f"{path} has no '{model.name}' group: it is not a weights file of this "
                                       f"VAE (Keras 2 layout with groups 'encoder' and 'decoder' expected): {retrain}")
            _load_sub_model(root[model.name], model, path, retrain)



def _load_sub_model(group, model, path, retrain) -> None:
    try:
        weight_names = [_decode(name) for name in group.attrs["weight_names"]]
        by_layer: dict[str, dict[str, np.ndarray]] = {}
        for name in weight_names:
            parts = name.split(":")[0].split("/")
            by_layer.setdefault(parts[-2] if len(parts) > 1 else "", {})[parts[-1]] = np.asarray(group[name])
    except (KeyError, OSError, ValueError) as error:
        raise ModelFolderError(f"{path} is incomplete or corrupt in '{group.name}' ({error}): {retrain}") from None
    weighted = _weighted_layers(model)
    if len(by_layer) != len(weighted):
        raise ModelFolderError(f"{path} holds {len(by_layer)} layers with weights in '{model.name}', the model "
                               f"built from the parameters has {len(weighted)}: the weights do not belong to "
                               f"these parameters; {retrain}")
    for layer, (file_layer, values) in zip(weighted, by_layer.items()):
        variables = layer.trainable_weights + layer.non_trainable_weights
        for variable in variables:
            kind = _variable_name(variable)
            value = values.get(kind)
            if value is None or tuple(value.shape) != tuple(variable.shape):
                found = "missing" if value is None else f"of shape {value.shape}"
                raise ModelFolderError(
                    f"{path}: weight '{kind}' of layer {file_layer} in '{model.name}' is {found}, the model "
                    f"built from the parameters expects {tuple(variable.shape)} for its layer {layer.name}; "
                    f"{retrain}")
            variable.assign(value)
        if len(values) != len(variables):
            raise ModelFolderError(f"{path}: layer {file_layer} in '{model.name}' has weights "
                                   f"{sorted(values)}, expected {[_variable_name(v) for v in variables]}; {retrain}")



def _keras_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("keras")
    except PackageNotFoundError:
        return "3"

