"""The model folder's files, readable without TensorFlow: the thesis's parameters and Keras 2's
legacy HDF5 weights.

A model folder (model/ by default) holds parameters.pkl (the thesis's pickled list
[input_shape, conv_filters, conv_kernels, conv_strides, latent_space_dimension]), parameters.json
(the same, preferred when present) and weights.h5 in Keras 2's legacy layout (top-level groups
`encoder` and `decoder`), the form of the author's released model. Commands check a folder here
before they start TensorFlow; the weights are matched to a built model's layers in build order,
as Keras 2 itself loaded them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from semantic_timbre import safe_io
from semantic_timbre.errors import UserError
from semantic_timbre.network.latent_sampling import LOG_VARIANCE_BOUND, sample_latent  # noqa: F401  (re-exported)

PARAMETERS_PICKLE = "parameters.pkl"
PARAMETERS_JSON = "parameters.json"
WEIGHTS_FILE = "weights.h5"
RUN_TRAINING = "run 'python train_timbre_generation_vae.py' first"
PARAMETER_NAMES = ("input_shape", "conv_filters", "conv_kernels", "conv_strides", "latent_space_dimension")

THESIS_CONFIGURATION = {
    "input_shape": (512, 64, 1),
    "conv_filters": (512, 256, 128, 64, 32),
    "conv_kernels": (3, 3, 3, 3, 3),
    "conv_strides": (2, 2, 2, 2, (2, 1)),
    "latent_space_dimension": 128,
}

#: A small model for the demo: the thesis's kernels, strides and latent size with few filters in
#: the full-resolution layers (where the cost is) and more in the coarse ones (where it is cheap),
#: so that its epochs on the demo set take minutes on two CPU cores (bench/bench_demo_quality.py);
#: its decoder resizes then convolves (no checkerboard) and it trains with the spectral loss
#: (conditioning.UPSAMPLINGS and LOSSES; the measurements that chose them: bench/bench_demo_quality.py).
DEMO_CONFIGURATION = {**THESIS_CONFIGURATION, "conv_filters": (16, 16, 32, 64, 64), "upsampling": "nearest",
                      "loss": "spectral"}


class ModelFolderError(UserError):
    """The model folder is missing, incomplete or does not hold a model this code can load."""


# ---------------------------------------------------------------- parameters

def _plain(value):
    """Numpy scalars to Python numbers, keeping list/tuple containers as they are."""
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(item) for item in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _is_count(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0


def _is_size(value) -> bool:
    """An int, or a pair of ints (a kernel or a stride)."""
    if _is_count(value):
        return True
    return isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_count(item) for item in value)


def check_parameters(parameters, source: str = "the parameters") -> list:
    """Return the thesis's parameter list [input_shape, conv_filters, conv_kernels, conv_strides,
    latent_space_dimension] as plain Python values, or raise ModelFolderError saying what is wrong.

    Accepts the list (or tuple) itself or a dict with those five keys.
    """
    expected = ("a list [input_shape, conv_filters, conv_kernels, conv_strides, latent_space_dimension], "
                "e.g. [(512, 64, 1), (512, 256, 128, 64, 32), (3, 3, 3, 3, 3), (2, 2, 2, 2, (2, 1)), 128]")
    if isinstance(parameters, dict):
        missing = [name for name in PARAMETER_NAMES if name not in parameters]
        if missing:
            raise ModelFolderError(f"{source} lacks {', '.join(missing)}: expected {expected}")
        parameters = [parameters[name] for name in PARAMETER_NAMES]
    if not isinstance(parameters, (list, tuple)) or len(parameters) != 5:
        raise ModelFolderError(f"{source} is not of the expected form: expected {expected}")
    input_shape, filters, kernels, strides, latent = parameters
    problems = []
    if not (isinstance(input_shape, (list, tuple)) and len(input_shape) == 3 and all(map(_is_count, input_shape))):
        problems.append(f"input_shape {input_shape!r} is not three positive integers")
    if not (isinstance(filters, (list, tuple)) and filters and all(map(_is_count, filters))):
        problems.append(f"conv_filters {filters!r} is not a list of positive integers")
    for name, sizes in (("conv_kernels", kernels), ("conv_strides", strides)):
        if not (isinstance(sizes, (list, tuple)) and all(map(_is_size, sizes))):
            problems.append(f"{name} {sizes!r} is not a list of integers or integer pairs")
        elif isinstance(filters, (list, tuple)) and len(sizes) != len(filters):
            problems.append(f"{name} has {len(sizes)} entries but conv_filters has {len(filters)}")
    if not _is_count(latent):
        problems.append(f"latent_space_dimension {latent!r} is not a positive integer")
    if not problems:
        problems = _size_problems(input_shape, filters, kernels, strides, latent)
    if problems:
        raise ModelFolderError(f"{source} is not of the expected form ({'; '.join(problems)}): expected {expected}")
    return [_plain(item) for item in parameters]


MAX_PARAMETERS = 200_000_000  # 800 MB of float32 weights: 70 times the thesis's model; more is a typo


def _size_problems(input_shape, filters, kernels, strides, latent) -> list[str]:
    """What makes sizes absurd (a model that would not fit in memory, a layer larger than its
    input), in words; empty when the sizes can be built."""
    problems = []
    if any(size > 65_536 for size in input_shape) or input_shape[2] > 16:
        problems.append(f"input_shape {tuple(input_shape)} is far larger than a spectrogram (512, 64, 1)")
    if len(filters) > 16 or any(count > 8192 for count in filters):
        problems.append(f"conv_filters {tuple(filters)} has more than 16 layers or 8,192 filters a layer")
    pairs = [(size, size) if isinstance(size, int) else tuple(size) for size in kernels]
    steps = [(size, size) if isinstance(size, int) else tuple(size) for size in strides]
    if any(max(pair) > 64 for pair in pairs) or any(max(pair) > 64 for pair in steps):
        problems.append("a kernel or stride is larger than 64")
    if latent > 65_536:
        problems.append(f"latent_space_dimension {latent:,} is larger than 65,536")
    if problems:
        return problems
    height, width, channels = input_shape
    count = 0
    for size, step, out in zip(pairs, steps, filters):
        count += size[0] * size[1] * channels * out + 3 * out  # kernel, bias, batch norm (twice)
        height, width, channels = -(-height // step[0]), -(-width // step[1]), out
    flat = height * width * channels
    count *= 2  # the decoder mirrors the encoder's convolutions
    count += 2 * (flat * latent + latent) + latent * flat + flat  # mu, log_variance, the decoder's dense layer
    if count > MAX_PARAMETERS:
        problems.append(f"these sizes make a model of about {count:,} weights (more than {MAX_PARAMETERS:,}; the "
                        f"thesis's has 2,766,017), which would not fit in memory")
    return problems


def spectrogram_batch(spectrograms, shape) -> np.ndarray:
    """Spectrograms (N, *shape), or (N, *shape[:-1]) for one channel, as a float32 batch (N, *shape);
    raises ValueError for another shape."""
    shape = tuple(shape)
    spectrograms = np.asarray(spectrograms, dtype=np.float32)
    if spectrograms.ndim == len(shape) and shape[-1] == 1:
        spectrograms = spectrograms[..., None]
    if spectrograms.shape[1:] != shape:
        raise ValueError(f"expected spectrograms of shape (N, {', '.join(map(str, shape))}) "
                         f"or (N, {', '.join(map(str, shape[:-1]))}), got {spectrograms.shape}")
    return spectrograms


def _as_tuples(value):
    """The thesis's pickled form: tuples all the way down."""
    if isinstance(value, (list, tuple)):
        return tuple(_as_tuples(item) for item in value)
    return value


def replace_damaged(path: str | Path) -> str:
    """The advice for a damaged model file: replace that one file, keeping the rest of the folder
    (a training checkpoint there is what a new run resumes from)."""
    path = Path(path)
    checkpoint = path.parent / "checkpoint"
    keep = f"; {checkpoint}/ is kept and training resumes from it" if checkpoint.is_dir() else ""
    return (f"remove {path} and run 'python train_timbre_generation_vae.py' again (with the same "
            f"--model-dir), or put back a good copy of that file{keep}")


def check_model_folder(folder: str | Path) -> list:
    """Check, without TensorFlow, that `folder` holds readable parameters and a weights file;
    return the parameters. Raises ModelFolderError naming what is missing or damaged."""
    folder = Path(folder)
    parameters = read_parameters(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelFolderError(f"{folder}/ holds parameters but no {WEIGHTS_FILE} (an unfinished training "
                               f"run?): {RUN_TRAINING}")
    return parameters


def model_stamp(model_dir) -> dict:
    """{file name: safe_io.file_stamp(..., sha1=True)} of the files a model is read from (weights.h5,
    parameters.json, parameters.pkl; None for a missing one): the model in the caches' fingerprints."""
    return {name: safe_io.file_stamp(Path(model_dir) / name, sha1=True)
            for name in (WEIGHTS_FILE, PARAMETERS_JSON, PARAMETERS_PICKLE)}


def check_model_config(folder: str | Path):
    """As check_model_folder, returning the whole conditioning.ModelConfig (conditioning included)."""
    from semantic_timbre.network.conditioning import ModelConfig

    parameters = check_model_folder(folder)
    json_path = Path(folder) / PARAMETERS_JSON
    if json_path.is_file():
        return ModelConfig.from_json(json.loads(json_path.read_text()), str(json_path))
    return ModelConfig.from_parameters(parameters)


def read_parameters(folder: str | Path) -> list:
    """Return the checked parameter list of a model folder (parameters.json, else parameters.pkl)."""
    folder = Path(folder)
    no_model = f"{folder}/ holds no trained model"
    if not folder.is_dir():
        raise ModelFolderError(f"{no_model} (the folder does not exist): {RUN_TRAINING}")
    json_path, pickle_path = folder / PARAMETERS_JSON, folder / PARAMETERS_PICKLE
    if json_path.is_file():
        try:
            parameters = json.loads(json_path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise ModelFolderError(f"{json_path} cannot be read ({error}): {replace_damaged(json_path)}") from None
        return check_parameters(parameters, str(json_path))
    if pickle_path.is_file():
        return check_parameters(safe_io.load_plain_pickle(pickle_path), str(pickle_path))
    resume = " (it resumes from the checkpoint there)" if (folder / "checkpoint").is_dir() else ""
    raise ModelFolderError(f"{no_model} (no {PARAMETERS_PICKLE} or {PARAMETERS_JSON}): {RUN_TRAINING}{resume}")


# ---------------------------------------------------------------- Keras 2 legacy HDF5 weights

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
