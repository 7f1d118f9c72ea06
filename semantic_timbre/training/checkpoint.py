"""The training checkpoint (model/checkpoint/checkpoint.npz): weights, optimizer state, epochs and
losses, written atomically; its fingerprint of the settings and data, and where a run resumes."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np

from semantic_timbre import layout, safe_io
from semantic_timbre.errors import UserError
from semantic_timbre.training.options import (CHECKPOINT_FILE_NAME, CHECKPOINT_FORMAT, CHECKPOINT_SUBDIR,
                                              CheckpointError, TrainingOptions)


def checkpoint_path(model_dir: str | Path = layout.MODEL_DIR) -> Path:
    return Path(model_dir) / CHECKPOINT_SUBDIR / CHECKPOINT_FILE_NAME



#: The configuration's choices beyond the thesis's five parameters, and the thesis's value of each.
THESIS_CHOICES = {"upsampling": "transposed", "loss": "thesis"}



def _fingerprint(parameters, spectrograms_dir, model_dir, conditioning: str = "none", configuration=None) -> dict:
    # The decoder's upsampling and the loss are recorded only when they are not the thesis's, so
    # checkpoints written before they existed still resume.
    configuration = configuration or {}
    extras = {key: configuration[key] for key, default in THESIS_CHOICES.items()
              if configuration.get(key, default) != default}
    return {"parameters": json.loads(json.dumps(parameters)), "conditioning": conditioning, **extras,
            # relative to the model folder, both resolved: the same folder however it is typed
            # ('spectrograms', './spectrograms/', an absolute path), and a moved project still resumes
            "spectrograms_dir_from_model_dir": os.path.relpath(Path(spectrograms_dir).resolve(),
                                                               Path(model_dir).resolve())}



def _fingerprint_differences(stored: dict, current: dict, model_dir) -> list[str]:
    """What differs between a checkpoint's settings and this run's, in words (empty: the same)."""
    differences = []
    stored_parameters, parameters = stored.get("parameters"), current["parameters"]
    if stored_parameters != parameters:
        from semantic_timbre.network.config import PARAMETER_NAMES

        if isinstance(stored_parameters, list) and len(stored_parameters) == len(PARAMETER_NAMES):
            differences += [f"{name} {new} here, {old} in the checkpoint" for name, old, new
                            in zip(PARAMETER_NAMES, stored_parameters, parameters) if old != new]
        else:
            differences.append("the architecture")
    for key, default in THESIS_CHOICES.items():
        if stored.get(key, default) != current.get(key, default):
            differences.append(f"{key} {current.get(key, default)} here, {stored.get(key, default)} in the checkpoint")
    stored_conditioning = stored.get("conditioning", "none")
    if stored_conditioning != current.get("conditioning", "none"):
        differences.append(f"conditioning {current['conditioning']} here, {stored_conditioning} in the checkpoint")
    base = Path(model_dir).resolve()
    if "spectrograms_dir_from_model_dir" in stored:
        stored_folder = (base / stored["spectrograms_dir_from_model_dir"]).resolve()
    else:  # checkpoints of earlier versions recorded the folder as typed, from the working folder
        stored_folder = Path(stored.get("spectrograms_dir", "")).resolve()
    folder = (base / current["spectrograms_dir_from_model_dir"]).resolve()
    if stored_folder != folder:
        differences.append(f"spectrograms folder {folder} here, {stored_folder} in the checkpoint")
    return differences



def _variable_arrays(variables) -> list[np.ndarray]:
    return [np.asarray(variable.numpy() if hasattr(variable, "numpy") else variable) for variable in variables]



def checkpoint_arrays(vae) -> dict:
    """Copies of the weights and the optimizer state, as a checkpoint stores them."""
    arrays = {f"weight_{index}": value for index, value in enumerate(_variable_arrays(vae.weights))}
    arrays.update({f"optimizer_{index}": value for index, value in enumerate(_variable_arrays(vae.optimizer.variables))})
    return arrays



def non_finite_arrays(arrays: dict) -> list[str]:
    """The names of the arrays holding NaN or infinite values."""
    return [name for name, value in arrays.items()
            if np.issubdtype(value.dtype, np.floating) and not np.all(np.isfinite(value))]



def write_checkpoint(path: str | Path, arrays: dict, weights: int, epoch: int, fingerprint: dict,
                     history: list, extra: dict | None = None) -> None:
    """Write checkpoint arrays, the epochs done, the history (and `extra` metadata: the learning
    rate's recovery scale, the recoveries so far) to one .npz, atomically.

    Raises ValueError (writing nothing) if any array holds NaN or infinite values.
    """
    bad = non_finite_arrays(arrays)
    if bad:
        raise ValueError(f"refusing to write a checkpoint with NaN or infinite values ({', '.join(bad[:3])})")
    meta = {**(extra or {}), "format": CHECKPOINT_FORMAT, "epoch": epoch, "fingerprint": fingerprint,
            "history": history, "weights": weights, "optimizer_variables": len(arrays) - weights}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays, meta=np.array(json.dumps(meta)))
    safe_io.write_bytes_atomic(path, buffer.getvalue())



def save_checkpoint(path: str | Path, vae, epoch: int, fingerprint: dict, history: list) -> None:
    """Write weights, optimizer state, the epochs done and the history to one .npz, atomically."""
    write_checkpoint(path, checkpoint_arrays(vae), len(vae.weights), epoch, fingerprint, history)



def _checkpoint_advice(path) -> str:
    return f"delete {path} (or use --restart) to train from scratch, or --model-dir for another folder"



def _read_checkpoint(path: Path) -> tuple[dict, dict]:
    """(meta, arrays) of a checkpoint through the one cache reader (safe_io.read_npz), its metadata
    and the arrays it lists checked; CheckpointError naming the file and what to do otherwise."""
    def check(arrays):
        meta = json.loads(str(safe_io.expect(arrays, "meta", (), "U")))
        if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("an unknown format")
        counts = meta.get("weights"), meta.get("optimizer_variables"), meta.get("epoch")
        if not all(isinstance(count, int) and count >= 0 for count in counts):
            raise ValueError("its metadata lacks the counts of weights, optimizer variables or epochs")
        if not isinstance(meta.get("fingerprint"), dict) or not isinstance(meta.get("history", []), list):
            raise ValueError("its metadata lacks the settings it was trained with")
        for prefix, count in (("weight", counts[0]), ("optimizer", counts[1])):
            for index in range(count):
                value = arrays.get(f"{prefix}_{index}")
                if value is None:
                    raise ValueError(f"{prefix} {index} is missing")
                if value.dtype.kind not in "fiub":
                    raise ValueError(f"{prefix} {index} holds {value.dtype}")
                if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
                    raise ValueError(f"{prefix} {index} holds NaN or infinite values")
        arrays["meta"] = meta

    try:
        arrays = safe_io.read_npz(path, check=check)
    except safe_io.CacheReadError as error:
        raise CheckpointError(f"checkpoint {error}: {_checkpoint_advice(path)}") from None
    return arrays.pop("meta"), arrays



def read_checkpoint_meta(path: str | Path) -> dict | None:
    """Return the metadata of a checkpoint (epoch, fingerprint, history), or None if there is none.
    A checkpoint that cannot be read or is damaged (truncated, empty, not an archive, NaN weights,
    arrays missing) raises CheckpointError naming it and the ways on."""
    path = Path(path)
    if not path.is_file():
        return None
    return _read_checkpoint(path)[0]



def restore_checkpoint(path: str | Path, vae) -> dict:
    """Load weights and optimizer state of a checkpoint into a compiled VAE; return its metadata."""
    path = Path(path)
    meta, archive = _read_checkpoint(path)
    vae.optimizer.build(vae.trainable_variables)
    for prefix, variables, count in (("weight", vae.weights, meta["weights"]),
                                     ("optimizer", vae.optimizer.variables, meta["optimizer_variables"])):
        if count != len(variables):
            raise CheckpointError(f"checkpoint {path} holds {count} {prefix} variables where this model has "
                                  f"{len(variables)} (another precision or architecture): use --restart")
        for index, variable in enumerate(variables):
            value = archive[f"{prefix}_{index}"]
            if tuple(value.shape) != tuple(variable.shape):
                raise CheckpointError(f"checkpoint {path} does not fit this model ({prefix} {index} has "
                                      f"shape {value.shape}, expected {tuple(variable.shape)}): use --restart")
    restore_arrays(vae, archive)
    return meta



def restore_arrays(vae, arrays: dict) -> None:
    """Put arrays as checkpoint_arrays gives them (a checkpoint's, or copies held in memory) back
    into the model's weights and optimizer state, each in its variable's dtype."""
    for prefix, variables in (("weight", vae.weights), ("optimizer", vae.optimizer.variables)):
        for index, variable in enumerate(variables):
            value = arrays[f"{prefix}_{index}"]
            variable.assign(value.astype(variable.dtype, copy=False) if hasattr(variable, "dtype") else value)



def _parameters_of(configuration: dict) -> list:
    return [configuration["input_shape"], configuration["conv_filters"], configuration["conv_kernels"],
            configuration["conv_strides"], configuration["latent_space_dimension"]]



def resume_point(options: TrainingOptions) -> dict | None:
    """Decide, before anything is built, whether this run resumes: the checkpoint's metadata, or
    None to train from scratch.

    Raises
    ------
    CheckpointError
        --resume without a checkpoint, or a checkpoint of other settings (architecture or
        spectrograms folder) without --restart: the message names the difference.
    UserError
        The model folder holds a finished model but no checkpoint to resume, without --restart.
    """
    from semantic_timbre.network.model_files import WEIGHTS_FILE

    model_dir = Path(options.model_dir)
    ckpt = checkpoint_path(model_dir)
    if options.resume == "restart":
        return None
    meta = read_checkpoint_meta(ckpt)
    if options.resume == "resume" and meta is None:
        raise CheckpointError(f"there is no checkpoint to resume from in {ckpt.parent}/: train without --resume")
    ways_on = "add --restart to train from scratch and replace it, or choose another --model-dir to keep it"
    if meta is not None:
        fingerprint = _fingerprint(_parameters_of(options.configuration), options.spectrograms_dir, model_dir,
                                   options.conditioning, options.configuration)
        differences = _fingerprint_differences(meta["fingerprint"], fingerprint, model_dir)
        if differences:
            raise CheckpointError(f"the checkpoint in {ckpt.parent}/ (epoch {meta['epoch']}) was trained with "
                                  f"other settings ({'; '.join(differences)}): {ways_on}")
        return meta
    if finished_model_exists(model_dir):
        raise UserError(f"{model_dir}/ already holds a trained model ({WEIGHTS_FILE}) and no checkpoint to "
                        f"resume from: {ways_on}")
    return None



def already_done(options: TrainingOptions, meta: dict | None) -> bool:
    """True when the checkpoint has the epochs asked for and its finished model is saved."""
    return meta is not None and int(meta["epoch"]) >= options.epochs and finished_model_exists(options.model_dir)



def finished_model_exists(model_dir) -> bool:
    from semantic_timbre.network.model_files import WEIGHTS_FILE

    return (Path(model_dir) / WEIGHTS_FILE).exists()

