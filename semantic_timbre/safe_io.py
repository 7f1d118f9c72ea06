"""Safe file I/O: atomic writes (complete or absent, never truncated) and a pickle reader that
accepts plain data only."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import secrets
import shutil
import tempfile
from pathlib import Path

import numpy as np


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle that asks to build something other than plain data."""


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside `path`; on success it is fsynced and renamed onto `path`.

    On any exception (Ctrl-C included) the temporary file is removed and `path` is untouched.
    The temporary name keeps `path`'s suffix so writers that infer a format from it still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The name is chosen before the try, so an interrupt at any moment after it leaves nothing behind.
    temporary = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp{path.suffix}"
    try:
        os.close(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))  # 0o666 less the umask
        yield temporary
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def save_npy_atomic(path: str | Path, array: np.ndarray) -> None:
    """np.save `array` to `path` (which should end in .npy) atomically."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    write_bytes_atomic(path, buffer.getvalue())


def save_npz_cache(path: str | Path, arrays: dict, fingerprint: dict) -> None:
    """Write a cache of arrays with its fingerprint (what it was computed from) embedded, atomically."""
    buffer = io.BytesIO()
    np.savez(buffer, fingerprint=np.array(json.dumps(fingerprint, sort_keys=True)), **arrays)
    write_bytes_atomic(path, buffer.getvalue())


def load_npz_cache(path: str | Path, fingerprint: dict) -> dict | None:
    """The arrays of a cache written by save_npz_cache whose embedded fingerprint is `fingerprint`;
    None when it is missing, unreadable or of other data. Read with allow_pickle=False: arrays of
    numbers and strings only, nothing that runs code."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as cache:
            if "fingerprint" not in cache.files or str(cache["fingerprint"]) != json.dumps(fingerprint, sort_keys=True):
                return None
            return {key: cache[key] for key in cache.files if key != "fingerprint"}
    except (OSError, ValueError, KeyError):
        return None


def save_pickle_atomic(path: str | Path, obj) -> None:
    """Pickle `obj` to `path` atomically (protocol 4, readable by Python 3.4+ and the thesis's code)."""
    write_bytes_atomic(path, pickle.dumps(obj, protocol=4))


def write_wav_atomic(path: str | Path, audio: np.ndarray, sample_rate: int, subtype: str = "PCM_24") -> None:
    """Write audio as a WAV file (24-bit PCM by default) atomically; refuses non-finite samples."""
    write_wavs_atomic([(path, audio)], sample_rate, subtype)


def wav_bytes(audio: np.ndarray, sample_rate: int, subtype: str = "PCM_24") -> bytes:
    """Encode audio as a WAV file in memory (so that a failed write is the OSError it really is,
    'no space left' or 'file too large', not libsndfile's 'System error')."""
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, audio, sample_rate, subtype=subtype, format="WAV")
    return buffer.getvalue()


def write_wavs_atomic(items, sample_rate: int, subtype: str = "PCM_24") -> None:
    """Write several WAV files all or none: [(path, audio), ...].

    Every file is written to a temporary name first; only when all are complete are they renamed
    into place, so a failure (a full disk, an unwritable folder) leaves every earlier file as it was.
    """
    items = [(Path(path), np.asarray(audio)) for path, audio in items]
    for path, audio in items:
        if not np.all(np.isfinite(audio)):
            raise ValueError(f"refusing to write {path}: the audio holds NaN or infinite samples")
    with contextlib.ExitStack() as stack:
        for path, audio in items:
            stack.enter_context(atomic_path(path)).write_bytes(wav_bytes(audio, sample_rate, subtype))


def check_writable_folder(folder: str | Path, what: str = "output folder") -> Path:
    """Create `folder` if needed and check that a file can be written in it, before any work.

    Raises OSError with the folder and the reason when it cannot be (a file in the way, no
    permission, a read-only file system, no space).
    """
    folder = Path(folder)
    try:
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(20, "a file is in the way", str(folder))
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):  # unnamed where the OS allows: nothing is left behind
            pass
    except OSError as error:
        raise OSError(error.errno, f"the {what} {folder} cannot be written ({error.strerror or error})",
                      str(folder)) from None
    return folder


@contextlib.contextmanager
def atomic_directory(path: str | Path):
    """Yield a fresh temporary folder beside `path`; on success it replaces `path` as a whole.

    The old folder is moved aside first and deleted only after the new one is in place, so an
    interruption leaves either the old complete folder or the new complete one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield temporary
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = path.parent / f".{path.name}.old"
        if old.exists():
            shutil.rmtree(old)
        os.replace(path, old)
    os.replace(temporary, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# Globals a plain-data pickle may name: numpy scalars and dtypes (numpy 1 and numpy 2 module
# names) and the builtins that pickle uses for sets and bytes. Nothing here can run code.
_ALLOWED_GLOBALS = {
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "float32"), ("numpy", "float64"), ("numpy", "int64"), ("numpy", "int32"),
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "bytearray"),
    ("builtins", "tuple"), ("builtins", "list"), ("builtins", "dict"),
    ("builtins", "complex"), ("builtins", "slice"),
    ("_codecs", "encode"),
}


class _PlainDataUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module.replace("__builtin__", "builtins"), name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"it asks to load '{module}.{name}', which is not plain data (lists, dicts, numbers, "
            f"strings, numpy scalars)")


def load_plain_pickle(path: str | Path):
    """Unpickle a file that may contain only plain data; refuse anything that could run code.

    Accepts list, tuple, dict, set, str, bytes, int, float, bool, None, numpy scalars and dtypes
    (pickled under numpy 1 or numpy 2). Anything else raises UnsafePickleError before any
    object is built, naming the file.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            return _PlainDataUnpickler(handle).load()
    except UnsafePickleError as error:
        raise UnsafePickleError(f"refusing to read {path}: {error}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise UnsafePickleError(f"{path} is not a readable pickle ({error}); delete it and regenerate it") from None
