"""The AudioCommons timbral features of a note's audio, the perceptual VAE's condition.

Seven features (hardness, depth, brightness, roughness, warmth, sharpness, boominess), each a
regression model of listening tests, computed by `timbral_models` (0.4.0), the AudioCommons
project's reference implementation: it is the one the latent-space study names, and the other
candidates (pytimbre's Timbre Toolbox, essentia) compute other descriptors. It predates numpy 2
and librosa 0.10, so `_compatible_libraries` gives it, only while it runs, the three calls it
makes in their old form (np.lib.pad, librosa's positional y/sr); it is installed without its
metadata's retired 'sklearn' dependency (requirements-nodeps.txt). Those patches are process-wide,
so timbral_models runs only in worker processes (spawned, never forked): one long-lived worker,
started on first use, for the features computed by this process (`timbral_features`: the explorer's
threads, one command's notes), or the pool of `note_features`' many notes. This process's numpy and
librosa are never patched.

Features are computed once per audio file and cached in minmax/perceptual_features.npz, one row
per spectrogram name with the audio file's size and modification time, so an edited or new note
is computed again and the others are not.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import warnings
from pathlib import Path

import numpy as np

from semantic_timbre import layout, safe_io
from semantic_timbre.errors import UserError

FEATURES = ("hardness", "depth", "brightness", "roughness", "warmth", "sharpness", "boominess")
_FUNCTIONS = ("timbral_hardness", "timbral_depth", "timbral_brightness", "timbral_roughness", "timbral_warmth",
              "timbral_sharpness", "timbral_booming")
CACHE_FILE_NAME = "perceptual_features.npz"
_FINGERPRINT_VERSION = 2


def cache_fingerprint() -> dict:
    """What every row of the cache was computed with: the features, the installed timbral_models,
    librosa and numpy (their versions: an upgrade computes the features again) and the cache's
    format. Each row also keeps its audio file's size and modification time (`safe_io.size_and_mtime`)."""
    from importlib import metadata

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {"features": list(FEATURES), "timbral_models": version("timbral_models"), "librosa": version("librosa"),
            "numpy": version("numpy"), "version": _FINGERPRINT_VERSION}
_SAVE_EVERY = 200  # notes: an interrupted run keeps what it computed


class PerceptualFeaturesError(UserError):
    """The perceptual features of some notes cannot be had (no audio, unreadable audio)."""


def cache_path(minmax_dir=layout.MINMAX_DIR) -> Path:
    return Path(minmax_dir) / CACHE_FILE_NAME


@contextlib.contextmanager
def _compatible_libraries():
    """The numpy and librosa calls timbral_models 0.4.0 makes, in the form it makes them, while it runs."""
    import librosa

    def keywords(function, names):
        @functools.wraps(function)
        def call(*args, **kwargs):
            kwargs.update(zip(names, args))
            return function(**kwargs)
        return call

    patches = [(np.lib, "pad", np.pad),
               (librosa.onset, "onset_detect", keywords(librosa.onset.onset_detect, ("y", "sr"))),
               (librosa.onset, "onset_strength", keywords(librosa.onset.onset_strength, ("y", "sr"))),
               (librosa.core, "resample", keywords(librosa.resample, ("y", "orig_sr", "target_sr")))]
    saved = [(owner, name, owner.__dict__.get(name, None)) for owner, name, _ in patches]
    try:
        for owner, name, replacement in patches:
            setattr(owner, name, replacement)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for owner, name, original in saved:
            if original is None:
                with contextlib.suppress(AttributeError):
                    delattr(owner, name)
            else:
                setattr(owner, name, original)


_worker = None  # the ProcessPoolExecutor that computes this process's features (see _features_worker)
_worker_lock = threading.Lock()


def _features_worker():
    """The one worker process (spawned: the caller may run TensorFlow's or the explorer's threads)
    that runs timbral_models for this process, started on first use and kept."""
    global _worker
    with _worker_lock:
        if _worker is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            _worker = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        return _worker


def _in_worker(function, *args):
    """`function(*args)` in the features worker; a worker that died is replaced for the next call."""
    from concurrent.futures.process import BrokenProcessPool

    global _worker
    executor = _features_worker()
    try:
        return executor.submit(function, *args).result()
    except BrokenProcessPool:
        with _worker_lock:
            if _worker is executor:
                _worker = None
        raise


def _timbral_features_here(source, rate: int) -> np.ndarray:
    """The features computed in this process, numpy and librosa patched while timbral_models runs:
    only ever called in a worker process."""
    import timbral_models

    with _compatible_libraries():
        values = [float(getattr(timbral_models, name)(source, fs=rate)) for name in _FUNCTIONS]
    return np.array(values, dtype=np.float64)


def timbral_features(audio, *, sample_rate: int | None = None) -> np.ndarray:
    """The seven AudioCommons timbral features of one note, computed in the features worker process.

    Parameters
    ----------
    audio : str, Path or np.ndarray
        An audio file, or mono samples (then `sample_rate` is needed).
    sample_rate : int, optional
        Sample rate of `audio` when it is an array.

    Returns
    -------
    features : np.ndarray, shape (7,), float64, in the order of `FEATURES`.
    """
    if isinstance(audio, (str, Path)):
        source, rate = str(Path(audio).resolve()), 0  # the worker keeps the directory it started in
    else:
        source, rate = np.asarray(audio, dtype=np.float64), int(sample_rate or 0)
        if not rate:
            raise ValueError("sample_rate is needed for an array of samples")
    return _in_worker(_timbral_features_here, source, rate)


def window_features(samples: np.ndarray, sample_rate: int, *, name="the note") -> np.ndarray:
    """The timbral features of the window a model encodes (a user's note: the 0.74 s from its onset,
    at the file's own rate), or PerceptualFeaturesError naming `name` when timbral_models cannot
    analyse it (too short or too quiet a note) or gives non-finite values."""
    try:
        features = timbral_features(np.asarray(samples, dtype=np.float64), sample_rate=sample_rate)
    except Exception as error:  # noqa: BLE001  timbral_models fails on some notes with many exception types
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise PerceptualFeaturesError(f"the timbral features of {name} cannot be computed ({type(error).__name__}: "
                                      f"{detail[:120]}): give a longer, louder note") from None
    if not np.all(np.isfinite(features)):
        raise PerceptualFeaturesError(f"the timbral features of {name} are not finite: give a longer, louder note")
    return features


def _features_of_file(path: str) -> tuple[str, np.ndarray | None, str]:
    """One file's features or the error, in a worker process (the pool's, or the features worker)."""
    try:
        return path, _timbral_features_here(path, 0), ""
    except Exception as error:  # noqa: BLE001  (reported per file by the caller)
        return path, None, f"{type(error).__name__}: {error}"


def _groups(audio_dir) -> list[Path]:
    root = Path(audio_dir)
    return sorted(path for path in root.iterdir() if path.is_dir()) if root.is_dir() else []


def audio_path(note: layout.Note, audio_dir=layout.AUDIO_DIR, groups=None) -> Path | None:
    """The audio file of `note` under `audio_dir` (its group folder found by looking), or None."""
    relative = Path(note.descriptor) / str(note.magnitude) / note.subfolder / note.file_name
    for group in _groups(audio_dir) if groups is None else groups:
        candidate = group / relative
        if candidate.is_file():
            return candidate
    return None


def load_cache(minmax_dir=layout.MINMAX_DIR) -> dict[str, tuple[np.ndarray, tuple[int, int]]]:
    """{spectrogram name: (features, (audio size, audio mtime_ns))} of the cache; empty when none."""
    def check(arrays):
        names = safe_io.expect(arrays, "names", (None,), "U")
        safe_io.expect(arrays, "features", (len(names), len(FEATURES)))
        safe_io.expect(arrays, "stamps", (len(names), 2), "i")

    cache = safe_io.load_npz_cache(cache_path(minmax_dir), cache_fingerprint(), check=check)
    if cache is None:
        return {}
    return {str(name): (features, (int(stamp[0]), int(stamp[1])))
            for name, features, stamp in zip(cache["names"], cache["features"], cache["stamps"])}


def _save_cache(minmax_dir, entries: dict) -> None:
    names = sorted(entries)
    safe_io.save_npz_cache(cache_path(minmax_dir), {
        "names": np.array(names, dtype=str),
        "features": np.array([entries[name][0] for name in names], dtype=np.float64).reshape(-1, len(FEATURES)),
        "stamps": np.array([entries[name][1] for name in names], dtype=np.int64).reshape(-1, 2)}, cache_fingerprint())


def note_features(notes, *, audio_dir=layout.AUDIO_DIR, minmax_dir=layout.MINMAX_DIR, workers: int | None = None,
                  progress: bool = True, log=print) -> np.ndarray:
    """The timbral features of `notes` (N, 7), from the cache or computed from their audio (and cached).

    A note's cached row is used when its audio file is absent or unchanged since (same size and
    modification time); otherwise it is computed, in `workers` processes (default: every CPU).

    Raises
    ------
    PerceptualFeaturesError
        Notes that are not in the cache and have no audio under `audio_dir` (named), or audio
        that timbral_models cannot analyse.
    """
    notes = list(notes)
    entries = load_cache(minmax_dir)
    todo = _check_available(notes, entries, audio_dir, minmax_dir)
    if todo:
        _compute(todo, entries, minmax_dir, workers, progress, log)
    return np.array([entries[note.spectrogram_name][0] for note in notes], dtype=np.float64).reshape(-1, len(FEATURES))


def check_available(notes, *, audio_dir=layout.AUDIO_DIR, minmax_dir=layout.MINMAX_DIR) -> int:
    """Check, computing nothing, that every note's features are cached or can be computed from its
    audio; return how many must be computed. Raises PerceptualFeaturesError as note_features does."""
    return len(_check_available(list(notes), load_cache(minmax_dir), audio_dir, minmax_dir))


def _check_available(notes, entries: dict, audio_dir, minmax_dir) -> dict:
    """{audio path: (spectrogram name, stamp)} of the notes to compute; raises for notes that cannot be."""
    todo, missing = {}, []
    groups = _groups(audio_dir)
    for note in notes:
        name = note.spectrogram_name
        path = audio_path(note, audio_dir, groups)
        if path is None:
            if name not in entries:
                missing.append("/".join(part for part in (str(audio_dir), "<GROUP>", note.descriptor,
                                                          str(note.magnitude), note.subfolder, note.file_name) if part))
        elif name not in entries or entries[name][1] != safe_io.size_and_mtime(path):
            todo[str(path)] = (name, safe_io.size_and_mtime(path))
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise PerceptualFeaturesError(
            f"the perceptual features of {len(missing)} note(s) are not in {cache_path(minmax_dir)} and their "
            f"audio is missing ({', '.join(missing[:3])}{more}): put the notes' audio under {audio_dir}/ (or "
            f"give --audio-dir) so that they can be computed")
    return todo


def _compute(todo: dict, entries: dict, minmax_dir, workers, progress, log) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    # Worker processes (each ~4 s of imports) pay off from about fifty notes; they are spawned, not forked, as the
    # caller may already run TensorFlow's threads.
    workers = 1 if len(todo) < 48 else max(1, min(workers or os.cpu_count() or 1, len(todo)))
    log(f"computing the AudioCommons timbral features of {len(todo)} note(s) in {workers} process(es), once: "
        f"they are kept in {cache_path(minmax_dir)}")
    failures = []
    executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) if workers > 1 else None
    # Absolute paths: the long-lived worker keeps the working directory it was started in.
    paths = list(todo)
    absolute = [str(Path(path).resolve()) for path in paths]
    results = executor.map(_features_of_file, absolute, chunksize=4) if executor else \
        (_in_worker(_features_of_file, path) for path in absolute)
    try:
        for done, (_, features, error) in enumerate(tqdm(results, total=len(todo), desc="timbral features",
                                                         unit="note", disable=not progress), start=1):
            path = paths[done - 1]
            if features is None or not np.all(np.isfinite(features)):
                failures.append(f"{path} ({error or 'non-finite values'})")
                continue
            name, stamp = todo[path]
            entries[name] = (features, stamp)
            if done % _SAVE_EVERY == 0:
                _save_cache(minmax_dir, entries)
    finally:
        if executor:
            executor.shutdown(cancel_futures=True)
        _save_cache(minmax_dir, entries)
    if failures:
        more = f" and {len(failures) - 2} more" if len(failures) > 2 else ""
        raise PerceptualFeaturesError(f"timbral_models could not analyse {len(failures)} note(s): "
                                      f"{'; '.join(failures[:2])}{more}: check or replace those files")


def warm_up() -> None:
    """Compute the features of a synthetic note once, so that numba compiles and caches librosa's
    functions that timbral_models calls (about a minute) in one process: processes that compiled
    them at once into the shared cache crashed (a segmentation fault) in a fresh environment.
    `make venv` runs it."""
    rate = 44100
    time = np.arange(rate) / rate
    note = np.exp(-3 * time) * np.sin(2 * np.pi * 330 * time) * np.minimum(1, time * 200)
    timbral_features(note, sample_rate=rate)
