"""Reading the pre-processor's output: spectrograms/ and minmax/min_max_values.pkl.

One home for the checks every downstream step needs (missing folders, wrong shapes, unsafe or
malformed pickles), so that each command names the step to run first in the same words, and names
the folders it was actually given.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np

from semantic_timbre import layout, safe_io
from semantic_timbre.errors import UserError
from semantic_timbre.data.spectrogram import SPECTROGRAM_SHAPE

PREPROCESSOR = "python process_audio_into_spectrograms.py"
RUN_PREPROCESSOR = f"run '{PREPROCESSOR}' first"


class ProcessedDataError(UserError):
    """spectrograms/ or minmax/ is missing, empty or holds something of the wrong form."""


def preprocessor_command(spectrograms_dir: str | Path | None = None, minmax_dir: str | Path | None = None) -> str:
    """Return the pre-processor's command line for these output folders.

    A folder is given as an option only when it is not the default, e.g.
    "python process_audio_into_spectrograms.py --minmax-dir other".
    """
    command = PREPROCESSOR
    if spectrograms_dir is not None and Path(spectrograms_dir) != Path(layout.SPECTROGRAMS_DIR):
        command += f" --spectrograms-dir {spectrograms_dir}"
    if minmax_dir is not None and Path(minmax_dir) != Path(layout.MINMAX_DIR):
        command += f" --minmax-dir {minmax_dir}"
    return command


class MinMaxValues(dict):
    """The min/max dict read from a file, remembering that file so messages can name it.

    It pickles as a plain dict, so saving it gives the thesis's format.
    """

    def __init__(self, values: dict, path: Path):
        super().__init__(values)
        self.path = path

    def __reduce__(self):
        return dict, (dict(self),)


def require_spectrograms(spectrograms_dir: str | Path = layout.SPECTROGRAMS_DIR) -> list[layout.Note]:
    """Return the Notes of every spectrogram in `spectrograms_dir`, sorted.

    Raises
    ------
    ProcessedDataError
        If the folder is missing or holds no well-named spectrogram.
    """
    folder = Path(spectrograms_dir)
    command = preprocessor_command(spectrograms_dir=folder)
    if not folder.is_dir():
        raise ProcessedDataError(f"{folder}/ does not exist: run '{command}' first")
    notes = layout.list_spectrograms(folder)
    if not notes:
        raise ProcessedDataError(f"{folder}/ holds no spectrograms (*.npy): run '{command}' first")
    return notes


def load_spectrogram(path: str | Path) -> np.ndarray:
    """Load one normalised spectrogram as float32 of shape (512, 64).

    Raises
    ------
    ProcessedDataError
        If the file is missing, unreadable, of the wrong shape or not finite.
    """
    path = Path(path)
    command = preprocessor_command(spectrograms_dir=path.parent)
    if not path.is_file():
        raise ProcessedDataError(f"spectrogram {path} does not exist: run '{command}' first")
    redo = f"delete it and run '{command}' again"
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ProcessedDataError(f"spectrogram {path} cannot be read ({error}): {redo}") from None
    if array.shape != SPECTROGRAM_SHAPE:
        raise ProcessedDataError(f"spectrogram {path} has shape {array.shape}, expected "
                                 f"{SPECTROGRAM_SHAPE}: {redo}")
    if not np.all(np.isfinite(array)):
        raise ProcessedDataError(f"spectrogram {path} holds NaN or infinite values: {redo}")
    return array.astype(np.float32, copy=False)


def min_max_path(minmax_dir: str | Path = layout.MINMAX_DIR) -> Path:
    return Path(minmax_dir) / layout.MINMAX_FILE_NAME


def load_min_max(minmax_dir: str | Path = layout.MINMAX_DIR) -> MinMaxValues:
    """Return the min/max dict of `minmax_dir/min_max_values.pkl`, read as plain data only.

    Keys are 'spectrograms/<name>.npy'; values {'min': float32, 'max': float32}. The dict
    remembers its file (`.path`), which `min_max_of` names when an entry is missing.

    Raises
    ------
    ProcessedDataError
        If the file is missing, is not a readable pickle or is not a dict; the message names the
        file to remove and the command that writes it again.
    UnsafePickleError
        If the pickle would build anything but plain data (nothing of it runs).
    """
    path = min_max_path(minmax_dir)
    command = preprocessor_command(minmax_dir=minmax_dir)
    redo = f"remove it and run '{command}' again"
    if not path.exists():
        raise ProcessedDataError(f"{path} does not exist: run '{command}' first")
    if not path.is_file():
        raise ProcessedDataError(f"{path} is not a file: {redo}")
    try:
        values = safe_io.load_plain_pickle(path)
    except safe_io.UnsafePickleError as error:
        if str(error).startswith("refusing to read"):  # it would build something: keep safe_io's words
            raise safe_io.UnsafePickleError(f"{error}; {redo}") from None
        # safe_io's own reason (the unpickler's error) is the exception it replaced.
        reason = error.__context__ if error.__context__ is not None else error
        raise ProcessedDataError(f"{path} is not a min/max file (not a readable pickle: {reason}): "
                                 f"{redo}") from None
    except OSError as error:
        raise ProcessedDataError(f"{path} cannot be read ({error.strerror or error})") from None
    if not isinstance(values, dict):
        raise ProcessedDataError(f"{path} is not a min/max file (a pickled {type(values).__name__}, "
                                 f"not a dict): {redo}")
    return MinMaxValues(values, path)


def min_max_of(min_max: dict, note: layout.Note) -> tuple[float, float]:
    """Return (min, max) of a note from a min/max dict, or explain how to get it.

    Raises
    ------
    ProcessedDataError
        If the note's entry is missing or malformed; the message names the min/max file (the one
        `load_min_max` read, when the dict came from it) and the command that adds the entry.
    """
    path = getattr(min_max, "path", min_max_path())
    command = preprocessor_command(minmax_dir=path.parent)
    entry = min_max.get(note.minmax_key)
    if entry is None:
        raise ProcessedDataError(f"min/max of {note.spectrogram_name} is missing from {path}: "
                                 f"run '{command}' to add it")
    try:
        low, high = float(entry["min"]), float(entry["max"])
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError
    except (TypeError, KeyError, IndexError, ValueError):
        # The pre-processor redoes a note whose entry is not a finite pair.
        raise ProcessedDataError(f"min/max of {note.spectrogram_name} in {path} is malformed "
                                 f"({str(entry)[:60]}): run '{command}' to redo it") from None
    return low, high


def spectrograms_stamp(spectrograms_dir: str | Path) -> dict:
    """A cheap fingerprint of a spectrograms folder for caches computed from it: the number of
    spectrograms and one sha1 of every name, size and modification time (no file is read)."""
    folder = Path(spectrograms_dir)
    digest = hashlib.sha1()
    names = sorted(note.spectrogram_name for note in layout.list_spectrograms(folder))
    for name in names:
        size, mtime_ns = safe_io.size_and_mtime(folder / name)
        digest.update(f"{name}\t{size}\t{mtime_ns}\n".encode())
    return {"count": len(names), "sha1_of_names_sizes_mtimes": digest.hexdigest()}
