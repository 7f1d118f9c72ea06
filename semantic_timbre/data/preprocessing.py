"""Pre-processing: audio/ -> spectrograms/*.npy and minmax/min_max_values.pkl, as the thesis did it.

Every note gives the thesis's float32 spectrogram (see `spectrogram.note_to_spectrogram`), saved
as spectrograms/<DESCRIPTOR>X<MAGNITUDE>X<file name>.npy, and its dB min/max, kept in one
pickled dict keyed 'spectrograms/<name>.npy'. Compared with the thesis's script this runs in
parallel, skips notes already processed, and survives bad input and interruptions:

- a note counts as processed only when its .npy exists *and* its min/max entry was saved, so a
  run that is killed leaves nothing that a second run would wrongly trust;
- the min/max dict is saved every few seconds during the run, so even a run killed with kill -9
  resumes close to where it stopped;
- every file is written atomically (complete or absent), the min/max dict is merged with the
  entries already saved, and nothing that is not finite is ever written;
- the output folders are checked for writing before any work, and a write that fails stops the
  run with one line naming the file (a full disk is not the data's fault);
- a file that cannot be processed is skipped with a reason, and the run goes on.
"""

from __future__ import annotations

import collections
import math
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from semantic_timbre import layout, safe_io
from semantic_timbre.data import processed_data, spectrogram
from semantic_timbre.errors import UserError

#: Least seconds between saves of the min/max dict during a run (it is also saved at the end).
SAVE_INTERVAL_SECONDS = 2.0
#: Most of the run's time spent saving the min/max dict: after a save that took t seconds the
#: next one waits max(SAVE_INTERVAL_SECONDS, t / SAVE_TIME_SHARE) (the full release's dict of
#: 275,310 entries takes a while to write).
SAVE_TIME_SHARE = 0.1
#: A note shorter than this (half the 0.74 s the thesis reads) is processed, zero-padded, but
#: listed in the summary: it is most likely a truncated file.
SHORT_NOTE_SECONDS = spectrogram.DURATION_SECONDS / 2


class NoAudioError(UserError):
    """audio/ is missing or holds no audio file."""


class OutputWriteError(UserError):
    """An output folder or file cannot be written (permissions, a full disk, a read-only disk)."""


class PreprocessingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) stopped the run; the min/max of every finished note was saved."""

    def __init__(self, summary: "Summary"):
        super().__init__()
        self.summary = summary


@dataclass
class Summary:
    """What a pre-processing run did. Paths are shown as found under the audio folder given."""

    processed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    #: Notes processed although shorter than SHORT_NOTE_SECONDS: (path, seconds).
    short: list[tuple[str, float]] = field(default_factory=list)
    #: How many audio files follow each of layout.LAYOUT_VARIANTS.
    layouts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    jobs: int = 1

    def layout_line(self) -> str | None:
        """'layout: 1,771 file(s) <STRING>-<FRET>.<ext>; 40 file(s) with a suffix ...', or None."""
        parts = [f"{self.layouts[kind]:,} file(s) {description}"
                 for kind, description in layout.LAYOUT_VARIANTS.items() if self.layouts.get(kind)]
        return f"layout: {'; '.join(parts)}" if parts else None

    def lines(self, spectrograms_dir="spectrograms", minmax_file="minmax/min_max_values.pkl",
              max_listed: int = 100) -> list[str]:
        """The end-of-run report, one string per line."""
        rate = len(self.processed) / self.seconds if self.seconds > 0 else 0.0
        if not self.processed and self.skipped and not self.failed:
            out = [f"nothing new to process: {len(self.skipped)} note(s) already in {spectrograms_dir}/ "
                   f"and {minmax_file} (--force redoes them)"]
        else:
            out = [f"processed {len(self.processed)} note(s) into {spectrograms_dir}/ "
                   f"(min/max in {minmax_file}) in {self.seconds:.1f} s "
                   f"({rate:.0f} files/s, {self.jobs} job(s))"]
            if self.skipped:
                out.append(f"skipped {len(self.skipped)} note(s) already processed (--force redoes them)")
        if self.layout_line():
            out.append(self.layout_line())
        if self.ignored:
            out.append(f"ignored {len(self.ignored)} file(s) that are not audio")
        if self.short:
            out.append(f"notice: {len(self.short)} note(s) shorter than {SHORT_NOTE_SECONDS:.2f} s, half "
                       f"the {spectrogram.DURATION_SECONDS} s the thesis reads (truncated files?), "
                       f"processed with zero padding:")
            out.extend(f"  {path}: {seconds:.3f} s" for path, seconds in self.short[:max_listed])
            if len(self.short) > max_listed:
                out.append(f"  ... and {len(self.short) - max_listed} more")
        if self.failed:
            out.append(f"failed {len(self.failed)} file(s), skipped (nothing written for them):")
            out.extend(f"  {path}: {reason}" for path, reason in self.failed[:max_listed])
            if len(self.failed) > max_listed:
                out.append(f"  ... and {len(self.failed) - max_listed} more")
        return out


def is_audio_file_name(name: str) -> bool:
    """True for a visible file with an extension libsndfile reads (case-insensitive)."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in layout.AUDIO_EXTENSIONS


def find_audio_files(audio_dir: str | Path) -> tuple[list[Path], list[Path]]:
    """Walk `audio_dir` and return (audio files, other files), both sorted.

    Audio files are those with an extension in `layout.AUDIO_EXTENSIONS` (any case). Hidden
    files (.DS_Store, ._1-0.wav) and anything inside hidden folders count as other files.
    """
    audio, other = [], []
    for folder, subfolders, files in os.walk(audio_dir):
        hidden = sorted(name for name in subfolders if name.startswith("."))
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        other.extend(Path(folder, name) for name in hidden)
        for name in sorted(files):
            (audio if is_audio_file_name(name) else other).append(Path(folder, name))
    return audio, other


def _has_entry(min_max: dict, key: str) -> bool:
    entry = min_max.get(key)
    try:
        return math.isfinite(entry["min"]) and math.isfinite(entry["max"])
    except (TypeError, KeyError, IndexError, ValueError):
        return False


def _open_audio(path: Path):
    """Open `path` with libsndfile, its header checked (spectrogram.open_audio: a regular file, a
    sample rate of 8-384 kHz, at most 32 channels and 10 minutes), or raise ValueError saying why
    it cannot be read."""
    return spectrogram.open_audio(path)


def process_file(path: str | Path, spectrograms_dir: str | Path, note: layout.Note):
    """Turn one audio file into its spectrogram file.

    Writes spectrograms_dir/<note.spectrogram_name> atomically, and only when every value is
    finite.

    Returns
    -------
    low, high : np.float32
        The dB spectrogram's min and max (the min/max entry).
    seconds : float
        The audio file's own length.

    Raises
    ------
    ValueError
        The file cannot be processed (a short reason: unreadable, empty, silent, NaN samples).
    OutputWriteError
        The spectrogram cannot be written (not the file's fault).
    """
    path = Path(path)
    # librosa reads the open file exactly as it reads a path, without its audioread fallback.
    with _open_audio(path) as sound:
        if sound.frames == 0:
            raise ValueError("the file holds no audio samples")
        seconds = sound.frames / sound.samplerate
        try:
            signal_ = spectrogram.load_note(sound)
        except spectrogram.AudioInputError:
            raise
        except Exception as error:
            raise ValueError(f"cannot be loaded ({type(error).__name__}: {error})") from None
    if not np.all(np.isfinite(signal_)):
        raise ValueError("the audio holds NaN or infinite samples")
    try:
        normalised, low, high = spectrogram.normalise(spectrogram.log_spectrogram(signal_))
    except spectrogram.SilentNoteError as error:
        raise ValueError(str(error)) from None
    if normalised.shape != spectrogram.SPECTROGRAM_SHAPE or not np.all(np.isfinite(normalised)):
        raise ValueError(f"its spectrogram has shape {normalised.shape} or non-finite values")
    target = Path(spectrograms_dir) / note.spectrogram_name
    try:
        safe_io.save_npy_atomic(target, normalised)
    except OSError as error:
        raise OutputWriteError(f"cannot write {target} ({error.strerror or error})") from None
    return low, high, seconds


# --- the per-file task, run in this process (--jobs 1) or in forked workers --------------------

_task_spectrograms_dir: Path | None = None


def _warm_up() -> None:
    # Loads librosa's lazily imported modules once, so no file pays for it.
    spectrogram.log_spectrogram(np.zeros(spectrogram.NUM_SAMPLES, dtype=np.float32))


def _init_worker(spectrograms_dir: Path) -> None:
    global _task_spectrograms_dir
    _task_spectrograms_dir = spectrograms_dir
    # The main process handles Ctrl-C and kill, and stops the workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _stop_with_parent()
    _warm_up()


def _stop_with_parent() -> None:
    """On Linux, have the kernel send SIGTERM to this worker when the main process dies (kill -9)."""
    try:
        import ctypes

        parent = os.getppid()
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the request took effect
            raise SystemExit(1)
    except (OSError, AttributeError):
        pass


def _task(item):
    """(display path, real path, note) -> one of
    ("done", display path, key, min, max, seconds), ("failed", display path, reason) or
    ("unwritable", display path, message): a write failed, which stops the run."""
    shown, path, note = item
    try:
        low, high, seconds = process_file(path, _task_spectrograms_dir, note)
    except ValueError as error:
        return "failed", shown, str(error)
    except OutputWriteError as error:
        return "unwritable", shown, str(error)
    except Exception as error:  # never let one file stop the run
        return "failed", shown, f"{type(error).__name__}: {error}"
    return "done", shown, note.minmax_key, low, high, seconds


def _chunk_size(pending: int, jobs: int) -> int:
    return max(1, min(16, pending // (jobs * 16)))


def default_jobs() -> int:
    """The number of cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def require_writable_folder(folder: str | Path, option: str) -> None:
    """Create `folder` if it is missing and check that a file can be created in it.

    Run before any work, so a read-only folder (or disk) stops the run at once instead of failing
    every file. `option` is the command-line option that chooses the folder, for the message.

    Raises
    ------
    OutputWriteError
        Naming the folder and what to do.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputWriteError(f"{folder} is not a folder: remove it or choose another folder with {option}")
    try:
        safe_io.check_writable_folder(folder)
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else str(error)
        raise OutputWriteError(f"cannot write in {folder}/ ({reason}): make it writable or choose another folder "
                               f"with {option}; nothing was processed") from None


def process_audio_folder(
    audio_dir: str | Path = layout.AUDIO_DIR,
    spectrograms_dir: str | Path = layout.SPECTROGRAMS_DIR,
    minmax_dir: str | Path = layout.MINMAX_DIR,
    jobs: int | None = None,
    force: bool = False,
    progress: bool = True,
    notice=print,
) -> Summary:
    """Pre-process every note under `audio_dir` that is not processed yet.

    Parameters
    ----------
    jobs : int or None
        Worker processes; None uses every core, 1 runs in this process.
    force : bool
        Re-process notes that already have a spectrogram and a min/max entry.
    progress : bool
        Show a tqdm progress bar (on stderr, when it is a terminal).
    notice : callable
        Receives one-line notices (non-audio files passed over).

    Audio paths follow `layout.parse_audio_path`: the thesis's <STRING>-<FRET>.<ext>, a file name
    with more after <STRING>-<FRET>, or one folder below the magnitude; the summary counts each.

    Returns
    -------
    Summary

    Raises
    ------
    NoAudioError
        `audio_dir` is missing or holds no audio file (the message says where to get data).
    OutputWriteError
        An output folder cannot be written (checked before any work), or a write failed during
        the run (the min/max of every finished note was saved first).
    UnsafePickleError, ProcessedDataError
        The existing min_max_values.pkl is not a plain dict (nothing is processed).
    PreprocessingInterrupted
        Ctrl-C or SIGTERM; the min/max of every finished note was saved first.
    UserError
        A worker process died (the min/max of every finished note was saved first).
    """
    audio_dir, spectrograms_dir = Path(audio_dir), Path(spectrograms_dir)
    minmax_file = processed_data.min_max_path(minmax_dir)
    started = time.perf_counter()
    if not audio_dir.is_dir():
        raise NoAudioError(f"{audio_dir}/ does not exist: {layout.REAL_DATA_HINT}")
    audio_files, other_files = find_audio_files(audio_dir)
    summary = Summary(ignored=[str(p) for p in other_files])
    for shown in summary.ignored[:20]:
        notice(f"ignored (not audio): {shown}")
    if len(summary.ignored) > 20:
        notice(f"ignored {len(summary.ignored) - 20} more file(s) that are not audio")
    if not audio_files:
        raise NoAudioError(f"{audio_dir}/ holds no audio files "
                           f"({', '.join(layout.AUDIO_EXTENSIONS)}): {layout.REAL_DATA_HINT}")

    # Check and read what is already there before any work, so a folder that cannot be written
    # or a refused pickle stops the run at once.
    require_writable_folder(spectrograms_dir, "--spectrograms-dir")
    require_writable_folder(minmax_file.parent, "--minmax-dir")
    min_max = processed_data.load_min_max(minmax_dir) if minmax_file.exists() else {}
    for leftover in spectrograms_dir.glob(".*.npy.*.tmp.npy"):  # safe_io's temporary files
        leftover.unlink(missing_ok=True)  # a killed run's, never a finished spectrogram
    existing = set(os.listdir(spectrograms_dir))

    pending, claimed = [], {}
    layouts = collections.Counter()
    for path in audio_files:
        shown = str(path)
        try:
            note = layout.parse_audio_path(path, audio_dir)
        except layout.LayoutError as error:
            summary.failed.append((shown, f"the path does not fit the layout: {error}"))
            continue
        layouts[note.layout_variant] += 1
        if note.spectrogram_name in claimed:
            summary.failed.append((shown, f"same descriptor, magnitude and file name as "
                                          f"{claimed[note.spectrogram_name]} (both would be "
                                          f"{note.spectrogram_name})"))
            continue
        claimed[note.spectrogram_name] = shown
        if not force and note.spectrogram_name in existing and _has_entry(min_max, note.minmax_key):
            summary.skipped.append(shown)
        else:
            pending.append((shown, path, note))

    summary.layouts = dict(layouts)
    jobs = max(1, min(jobs or default_jobs(), len(pending) or 1))
    summary.jobs = jobs
    if pending:
        _run(pending, spectrograms_dir, minmax_file, min_max, jobs, progress, summary)
    summary.seconds = time.perf_counter() - started
    return summary


def _save(minmax_file: Path, min_max: dict) -> float:
    """Save the min/max dict atomically; return the seconds it took."""
    started = time.monotonic()
    try:
        # Sorted keys: the same notes give the same file bytes, whatever order the workers finished in.
        safe_io.save_pickle_atomic(minmax_file, {key: min_max[key] for key in sorted(min_max)})
    except OSError as error:
        raise OutputWriteError(f"cannot write {minmax_file} ({error.strerror or error})") from None
    return time.monotonic() - started


def _run(pending, spectrograms_dir, minmax_file, min_max, jobs, progress, summary) -> None:
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from tqdm import tqdm

    executor = None
    changed = False  # entries not saved yet
    next_save = time.monotonic() + SAVE_INTERVAL_SECONDS
    previous_sigterm = signal.getsignal(signal.SIGTERM)
    bar = None
    try:
        # `kill` stops the run the same clean way as Ctrl-C.
        signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
        if jobs == 1:
            global _task_spectrograms_dir
            _task_spectrograms_dir = spectrograms_dir
            results = map(_task, pending)
        else:
            # fork: workers start at once, sharing what this process already imported.
            start_methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in start_methods else None)
            _warm_up()  # import librosa once, here; forked workers share it instead of importing it
            executor = ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_worker,
                                           initargs=(spectrograms_dir,))
            results = executor.map(_task, pending, chunksize=_chunk_size(len(pending), jobs))
        bar = tqdm(total=len(pending), unit="file", disable=not progress or None, leave=False)
        for result in results:
            bar.update()
            if result[0] == "failed":
                summary.failed.append(result[1:])
                continue
            if result[0] == "unwritable":
                raise OutputWriteError(result[2])
            _, shown, key, low, high, seconds = result
            min_max[key] = {"min": low, "max": high}
            summary.processed.append(shown)
            if seconds < SHORT_NOTE_SECONDS:
                summary.short.append((shown, seconds))
            changed = True
            if time.monotonic() >= next_save:
                # Often enough that kill -9 loses only the last seconds' entries, rarely enough
                # that saving a large dict never takes more than SAVE_TIME_SHARE of the run.
                took = _save(minmax_file, min_max)
                changed = False
                next_save = time.monotonic() + max(SAVE_INTERVAL_SECONDS, took / SAVE_TIME_SHARE)
    except (KeyboardInterrupt, BrokenProcessPool, OutputWriteError) as error:
        if bar is not None:
            bar.close()
            bar = None
        if executor is not None:
            # Workers ignore Ctrl-C: they finish the few files they hold, then stop.
            executor.shutdown(wait=True, cancel_futures=True)
            executor = None
        if changed:
            _save(minmax_file, min_max)
        done = f"the min/max of the {len(summary.processed)} note(s) done were saved"
        if isinstance(error, BrokenProcessPool):
            raise UserError(f"a worker process died unexpectedly; {done}: run again to go on "
                            f"(with --jobs 1 to see which file causes it)") from None
        if isinstance(error, OutputWriteError):
            raise OutputWriteError(f"{error}: the run stopped; {done}: make room or fix the folder "
                                   f"and run again to go on") from None
        raise PreprocessingInterrupted(summary) from None
    finally:
        if executor is not None:
            executor.shutdown(wait=True)
        if bar is not None:
            bar.close()
        signal.signal(signal.SIGTERM, previous_sigterm)
    if changed:
        _save(minmax_file, min_max)
    summary.failed.sort()
    summary.processed.sort()
    summary.short.sort()


def _interrupt_on_sigterm(signum, frame):
    raise KeyboardInterrupt
