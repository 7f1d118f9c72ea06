"""The model folder's files, readable without TensorFlow: the recorded configuration (network/config.py)
and the check that the weights are there (their Keras 2 format: network/keras2_format.py).

A model folder (model/ by default) holds parameters.pkl (the thesis's pickled list
[input_shape, conv_filters, conv_kernels, conv_strides, latent_space_dimension]), parameters.json
(the same, preferred when present) and weights.h5 in Keras 2's legacy layout (top-level groups
`encoder` and `decoder`), the form of the author's released model. Commands check a folder here
before they start TensorFlow.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from semantic_timbre import safe_io
from semantic_timbre.network.config import ModelConfig, ModelFolderError, check_parameters

PARAMETERS_PICKLE = "parameters.pkl"
PARAMETERS_JSON = "parameters.json"
WEIGHTS_FILE = "weights.h5"
RUN_TRAINING = "run 'python train_timbre_generation_vae.py' first"



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
    """As check_model_folder, returning the whole config.ModelConfig (conditioning included)."""
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
