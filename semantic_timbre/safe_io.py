"""Safe file I/O: atomic writes (complete or absent, never truncated) and a pickle reader that
accepts plain data only."""

from __future__ import annotations

import contextlib
import hashlib
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


def save_figure_atomic(figure, path: str | Path, *, close: bool = False, **savefig_kwargs) -> Path:
    """figure.savefig(`path`, **savefig_kwargs) atomically (the temporary file keeps `path`'s suffix);
    with `close`, the figure is closed afterwards (on failure too). Returns `path` as a Path."""
    try:
        with atomic_path(path) as temporary:
            figure.savefig(temporary, **savefig_kwargs)
    finally:
        if close:
            import matplotlib.pyplot as plt

            plt.close(figure)
    return Path(path)


def save_npy_atomic(path: str | Path, array: np.ndarray) -> None:
    """np.save `array` to `path` (which should end in .npy) atomically."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    write_bytes_atomic(path, buffer.getvalue())


def size_and_mtime(path: str | Path) -> tuple[int, int]:
    """A file's size and modification time in nanoseconds (st_size, st_mtime_ns)."""
    status = Path(path).stat()
    return status.st_size, status.st_mtime_ns


def update_digest(digest, path: str | Path):
    """Feed a file's bytes to `digest` (a hashlib object) in 1 MiB blocks; return `digest`."""
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest


def file_stamp(path: str | Path, *, sha1: bool = False) -> dict | None:
    """A cache fingerprint's stamp of one file: {"size", "mtime_ns"} (with `sha1`, its "sha1" too),
    or None when there is no such file."""
    path = Path(path)
    if not path.is_file():
        return None
    size, mtime_ns = size_and_mtime(path)
    stamp = {"size": size, "mtime_ns": mtime_ns}
    if sha1:
        stamp["sha1"] = update_digest(hashlib.sha1(), path).hexdigest()
    return stamp


def save_npz_cache(path: str | Path, arrays: dict, fingerprint: dict) -> None:
    """Write a cache of arrays with its fingerprint (what it was computed from) embedded, atomically."""
    buffer = io.BytesIO()
    np.savez(buffer, fingerprint=np.array(json.dumps(fingerprint, sort_keys=True)), **arrays)
    write_bytes_atomic(path, buffer.getvalue())


class CacheReadError(ValueError):
    """A cache or checkpoint file that cannot be read or holds what its reader does not expect;
    the message names the file and says what is wrong with it."""


def read_npz(path: str | Path, check=None) -> dict:
    """Every array of an .npz file, read with allow_pickle=False (numbers and strings only, nothing
    that runs code), then `check(arrays)` (raises ValueError saying what is wrong) when given.

    The one reader of every cache and checkpoint: any failure (a truncated, empty or non-zip file,
    a damaged member, an object array, a shape or value its reader does not expect) raises
    CacheReadError naming the file and the reason.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not hasattr(archive, "files"):
                raise ValueError("it is a single array, not an archive of arrays")
            arrays = {key: archive[key] for key in archive.files}
    except Exception as error:  # noqa: BLE001  zipfile, zlib, EOFError, OSError, ValueError, MemoryError...
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CacheReadError(f"{path} cannot be read ({type(error).__name__}: {reason[:160]})") from None
    if check is not None:
        try:
            check(arrays)
        except (ValueError, KeyError, TypeError, IndexError) as error:
            raise CacheReadError(f"{path} holds unexpected contents ({str(error)[:160]})") from None
    return arrays


def expect(arrays: dict, name: str, shape: tuple, kind: str = "f", finite: bool = True) -> np.ndarray:
    """The array `name` of a cache, checked: its shape (None for any length in that place), its
    dtype kind ('f' float, 'i' integer, 'U' string, 'fi' either number) and, for numbers, that
    every value is finite. Raises ValueError saying what differs."""
    if name not in arrays:
        raise ValueError(f"no array '{name}'")
    value = arrays[name]
    if value.ndim != len(shape) or any(want is not None and have != want for have, want in zip(value.shape, shape)):
        wanted = "(" + ", ".join("N" if want is None else str(want) for want in shape) + ")"
        raise ValueError(f"'{name}' has shape {value.shape}, expected {wanted}")
    if value.dtype.kind not in kind.replace("i", "iu"):
        raise ValueError(f"'{name}' holds {value.dtype}, expected {'strings' if kind == 'U' else 'numbers'}")
    if finite and value.dtype.kind == "f" and not np.all(np.isfinite(value)):
        raise ValueError(f"'{name}' holds NaN or infinite values")
    return value


def load_npz_cache(path: str | Path, fingerprint: dict, check=None, log=None) -> dict | None:
    """The arrays of a cache written by save_npz_cache whose embedded fingerprint is `fingerprint`,
    checked with `check(arrays)` (see read_npz); None when it is missing or of other data (it is
    computed again), and also when it cannot be read or fails the check, which is then said in
    one notice naming the file (`log`, default stderr)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        arrays = read_npz(path)
        stored = arrays.pop("fingerprint", None)
        if stored is None or stored.dtype.kind != "U" or str(stored) != json.dumps(fingerprint, sort_keys=True):
            return None  # of other data, or of an earlier version: computed again
        if check is not None:
            try:
                check(arrays)
            except (ValueError, KeyError, TypeError, IndexError) as error:
                raise CacheReadError(f"{path} holds unexpected contents ({str(error)[:160]})") from None
    except CacheReadError as error:
        (log or _notice)(f"notice: ignoring the cache {error}; computing it again")
        return None
    return arrays


def _notice(line: str) -> None:
    import sys

    print(line, file=sys.stderr)


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
