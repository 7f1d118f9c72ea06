"""Reading the pre-processor's output: spectrograms/ and minmax/min_max_values.pkl.

One home for the checks every downstream step needs (missing folders, wrong shapes, unsafe
pickles), so that each command names the step to run first in the same words.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import layout, safe_io
from .cli import UserError
from .spectrogram import SPECTROGRAM_SHAPE

RUN_PREPROCESSOR = "run 'python process_audio_into_spectrograms.py' first"


class ProcessedDataError(UserError):
    """spectrograms/ or minmax/ is missing, empty or holds something of the wrong form."""


def require_spectrograms(spectrograms_dir: str | Path = layout.SPECTROGRAMS_DIR) -> list[layout.Note]:
    """Return the Notes of every spectrogram in `spectrograms_dir`, sorted.

    Raises
    ------
    ProcessedDataError
        If the folder is missing or holds no well-named spectrogram.
    """
    folder = Path(spectrograms_dir)
    if not folder.is_dir():
        raise ProcessedDataError(f"{folder}/ does not exist: {RUN_PREPROCESSOR}")
    notes = layout.list_spectrograms(folder)
    if not notes:
        raise ProcessedDataError(f"{folder}/ holds no spectrograms (*.npy): {RUN_PREPROCESSOR}")
    return notes


def load_spectrogram(path: str | Path) -> np.ndarray:
    """Load one normalised spectrogram as float32 of shape (512, 64).

    Raises
    ------
    ProcessedDataError
        If the file is missing, unreadable, of the wrong shape or not finite.
    """
    path = Path(path)
    if not path.is_file():
        raise ProcessedDataError(f"spectrogram {path} does not exist: {RUN_PREPROCESSOR}")
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ProcessedDataError(f"spectrogram {path} cannot be read ({error}): delete it and "
                                 f"{RUN_PREPROCESSOR.replace('run', 're-run', 1)}") from None
    if array.shape != SPECTROGRAM_SHAPE:
        raise ProcessedDataError(f"spectrogram {path} has shape {array.shape}, expected "
                                 f"{SPECTROGRAM_SHAPE}: delete it and re-run the pre-processor")
    if not np.all(np.isfinite(array)):
        raise ProcessedDataError(f"spectrogram {path} holds NaN or infinite values: delete it and "
                                 "re-run the pre-processor")
    return array.astype(np.float32, copy=False)


def min_max_path(minmax_dir: str | Path = layout.MINMAX_DIR) -> Path:
    return Path(minmax_dir) / layout.MINMAX_FILE_NAME


def load_min_max(minmax_dir: str | Path = layout.MINMAX_DIR) -> dict:
    """Return the min/max dict of `minmax_dir/min_max_values.pkl`, read as plain data only.

    Keys are 'spectrograms/<name>.npy'; values {'min': float32, 'max': float32}.

    Raises
    ------
    ProcessedDataError
        If the file is missing or is not a dict.
    UnsafePickleError
        If the pickle would build anything but plain data (nothing of it runs).
    """
    path = min_max_path(minmax_dir)
    if not path.is_file():
        raise ProcessedDataError(f"{path} does not exist: {RUN_PREPROCESSOR}")
    values = safe_io.load_plain_pickle(path)
    if not isinstance(values, dict):
        raise ProcessedDataError(f"{path} is not a dict of min/max values: re-run the pre-processor")
    return values


def min_max_of(min_max: dict, note: layout.Note) -> tuple[float, float]:
    """Return (min, max) of a note from a min/max dict, or explain how to get it."""
    entry = min_max.get(note.minmax_key)
    if not isinstance(entry, dict) or "min" not in entry or "max" not in entry:
        raise ProcessedDataError(f"min/max of {note.spectrogram_name} is missing from "
                                 f"{layout.MINMAX_DIR}/{layout.MINMAX_FILE_NAME}: re-run the pre-processor")
    return float(entry["min"]), float(entry["max"])
