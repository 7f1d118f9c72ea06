"""Spectrogram maths and inversion, exactly as the thesis's pre-processing defines them.

Plain numpy arrays in and out; nothing here knows about the model or the file layout.
"""

from __future__ import annotations

import functools

import librosa
import numpy as np
import scipy.fft
import scipy.sparse
import scipy.sparse.csgraph

SAMPLE_RATE = 22050
DURATION_SECONDS = 0.74
NUM_SAMPLES = int(SAMPLE_RATE * DURATION_SECONDS)  # 16,317
N_FFT = 1024
HOP_LENGTH = 256
GRIFFIN_LIM_ITERATIONS = 32
SPECTROGRAM_SHAPE = (N_FFT // 2, 1 + NUM_SAMPLES // HOP_LENGTH)  # (512, 64)


class SilentNoteError(ValueError):
    """A note whose dB spectrogram is constant, so min-max normalising would divide by zero."""


# Limits on what a file may ask of a reader, checked from its header before any sample is decoded.
MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 384_000
MAX_CHANNELS = 32
MAX_DURATION_SECONDS = 600.0  # ten minutes: longer is no note (only the first seconds are ever read)


class AudioInputError(ValueError):
    """A file that cannot be read as a note: its message says why, in a few words."""


def open_audio(path):
    """Open `path` (or pass an open soundfile.SoundFile through) and check its header: a sample
    rate of 8-384 kHz, 1-32 channels, at most MAX_DURATION_SECONDS; nothing is decoded yet.

    Raises AudioInputError for a path that is not a regular file (a FIFO would block the reader),
    a file libsndfile cannot read, or a header outside the limits.
    """
    import os

    import soundfile

    if isinstance(path, soundfile.SoundFile):
        sound = path
    else:
        import stat

        try:
            status = os.stat(path)
        except OSError as error:
            raise AudioInputError(f"cannot be opened ({error.strerror or error})") from None
        if not stat.S_ISREG(status.st_mode):
            raise AudioInputError("is not a regular file (a folder, FIFO or device)")
        if status.st_size == 0:
            raise AudioInputError("the file is empty (0 bytes)")
        try:
            sound = soundfile.SoundFile(str(path))
        except Exception as error:  # libsndfile reports unreadable files as several exception types
            message = str(error).strip().splitlines()[0].split(": ")[-1] if str(error).strip() else type(error).__name__
            raise AudioInputError(f"cannot be read as audio ({message})") from None
    try:
        check_header(sound.samplerate, sound.channels, sound.frames)
    except AudioInputError:
        if sound is not path:
            sound.close()
        raise
    return sound


def check_header(sample_rate: int, channels: int, frames: int) -> None:
    """Refuse a header outside the limits (MIN/MAX_SAMPLE_RATE, MAX_CHANNELS, MAX_DURATION_SECONDS)."""
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise AudioInputError(f"its header gives a sample rate of {sample_rate} Hz, outside "
                              f"{MIN_SAMPLE_RATE:,}-{MAX_SAMPLE_RATE:,} Hz (a damaged or mislabelled file?)")
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioInputError(f"its header gives {channels} channels (at most {MAX_CHANNELS} are read)")
    if frames < 0 or frames / sample_rate > MAX_DURATION_SECONDS:
        raise AudioInputError(f"its header gives a duration of {frames / sample_rate:,.0f} s, more than the "
                              f"{MAX_DURATION_SECONDS:.0f} s a note may last: cut the note out of the recording")


def read_frames(path, seconds: float, start_seconds: float = 0.0) -> tuple[np.ndarray, int]:
    """Decode only `seconds` of audio from `start_seconds` on: (mono float32 samples, native rate).

    As librosa.load(offset=..., duration=...) reads them (the same frames, the same mono mix),
    after `open_audio`'s header checks; non-finite samples raise AudioInputError.
    """
    sound = open_audio(path)
    try:
        rate = sound.samplerate
        if start_seconds:
            sound.seek(min(int(start_seconds * rate), sound.frames))
        signal = sound.read(frames=int(seconds * rate), dtype="float32", always_2d=False).T
    except AudioInputError:
        raise
    except Exception as error:  # a file damaged after its header
        raise AudioInputError(f"cannot be decoded ({str(error).strip() or type(error).__name__})") from None
    finally:
        if sound is not path:
            sound.close()
    signal = librosa.to_mono(signal) if signal.ndim > 1 else signal
    if not np.all(np.isfinite(signal)):
        raise AudioInputError("the audio holds NaN or infinite samples")
    return np.ascontiguousarray(signal, dtype=np.float32), rate


def resample(signal: np.ndarray, rate: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """librosa.load's resampling (soxr_hq, librosa's default) from `rate` to `sample_rate`."""
    return librosa.resample(signal, orig_sr=rate, target_sr=sample_rate, res_type="soxr_hq")


def load_note(path, sample_rate: int = SAMPLE_RATE, duration: float = DURATION_SECONDS) -> np.ndarray:
    """Load the first `duration` seconds of an audio file as mono float32 at `sample_rate`.

    Only those seconds are decoded, after the header's checks (`open_audio`); the samples are
    librosa.load(path, sr=sample_rate, mono=True, duration=duration)'s to the byte.

    Parameters
    ----------
    path : str, Path or an open soundfile.SoundFile
        Any file libsndfile reads (wav, flac, aiff, ogg, ...).

    Returns
    -------
    signal : np.ndarray, shape (int(sample_rate * duration),)
        Mixed down to mono, resampled with librosa's default resampler, zero-padded at the end.

    Raises
    ------
    AudioInputError
        A file that cannot be read, a header outside the limits, NaN or infinite samples.
    """
    signal, rate = read_frames(path, duration)
    if signal.size == 0:
        return np.zeros(int(sample_rate * duration), dtype=np.float32)
    return pad_or_trim(resample(signal, rate, sample_rate), int(sample_rate * duration))


def pad_or_trim(signal: np.ndarray, num_samples: int = NUM_SAMPLES) -> np.ndarray:
    """Zero-pad `signal` at the end, or cut it, to exactly `num_samples` samples.

    Cutting only matters for sample rates whose resampled length rounds up by a sample;
    44.1 kHz and 48 kHz files come out at exactly 16,317 samples, as in the thesis.
    """
    if len(signal) < num_samples:
        return np.pad(signal, (0, num_samples - len(signal)), mode="constant")
    return signal[:num_samples]


def log_spectrogram(signal: np.ndarray) -> np.ndarray:
    """Return the thesis's dB magnitude spectrogram (Nyquist row dropped), shape (512, 64) for 0.74 s.

    STFT with n_fft 1024, hop 256, librosa defaults otherwise; librosa.amplitude_to_db defaults.
    """
    stft = librosa.stft(signal, n_fft=N_FFT, hop_length=HOP_LENGTH)[:-1]
    return librosa.amplitude_to_db(np.abs(stft))


def normalise(log_spec: np.ndarray) -> tuple[np.ndarray, np.float32, np.float32]:
    """Min-max normalise to [0, 1] on the spectrogram's own min and max.

    Returns
    -------
    normalised : np.ndarray (float32)
    original_min, original_max : np.float32
        The values to keep in min_max_values.pkl for de-normalising.

    Raises
    ------
    SilentNoteError
        When the spectrogram is constant (a silent note) or not finite.
    """
    original_min, original_max = log_spec.min(), log_spec.max()
    if not (np.isfinite(original_min) and np.isfinite(original_max)):
        raise SilentNoteError("the spectrogram holds non-finite values")
    if original_max == original_min:
        raise SilentNoteError("the note is silent (its dB spectrogram is constant)")
    normalised = (log_spec - original_min) / (original_max - original_min)
    return normalised.astype(np.float32, copy=False), np.float32(original_min), np.float32(original_max)


def denormalise(normalised: np.ndarray, original_min: float, original_max: float) -> np.ndarray:
    """Invert `normalise`: map [0, 1] back to dB with the stored min and max."""
    return normalised * (original_max - original_min) + original_min


def note_to_spectrogram(path) -> tuple[np.ndarray, np.float32, np.float32]:
    """Load an audio file and return (normalised spectrogram, min, max) as the thesis saved them."""
    return normalise(log_spectrogram(load_note(path)))


@functools.lru_cache(maxsize=8)
def _hann(n_fft: int) -> np.ndarray:
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    window.flags.writeable = False
    return window


@functools.lru_cache(maxsize=8)
def _window_sum(n_fft: int, hop_length: int, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """The overlap-added squared window of `frames` frames, and where it may be divided by."""
    window = _hann(n_fft)
    window_sum = np.zeros(n_fft + hop_length * (frames - 1), dtype=np.float32)
    for frame in range(frames):
        window_sum[frame * hop_length:frame * hop_length + n_fft] += window ** 2
    nonzero = window_sum > np.finfo(np.float32).tiny
    window_sum.flags.writeable = nonzero.flags.writeable = False
    return window_sum, nonzero


def _stft_frames(signal: np.ndarray, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH) -> np.ndarray:
    """`_stft`, frames first: shape (frames, 1 + n_fft // 2), complex64."""
    padded = np.pad(np.asarray(signal, dtype=np.float32), n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop_length]
    return scipy.fft.rfft(frames * _hann(n_fft), axis=1).astype(np.complex64, copy=False)


def _istft_frames(stft: np.ndarray, length: int, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH) -> np.ndarray:
    """`_istft`, frames first: `stft` of shape (frames, 1 + n_fft // 2)."""
    frames = stft.shape[0]
    segments = scipy.fft.irfft(stft, n=n_fft, axis=1).astype(np.float32, copy=False) * _hann(n_fft)
    if n_fft % hop_length == 0:  # overlap-add in n_fft / hop_length whole-array additions
        shifts = n_fft // hop_length
        blocks = np.zeros((frames + shifts - 1, hop_length), dtype=np.float32)
        segments = segments.reshape(frames, shifts, hop_length)
        for shift in range(shifts):
            blocks[shift:shift + frames] += segments[:, shift]
        signal = blocks.reshape(-1)
    else:
        signal = np.zeros(n_fft + hop_length * (frames - 1), dtype=np.float32)
        for frame in range(frames):
            signal[frame * hop_length:frame * hop_length + n_fft] += segments[frame]
    window_sum, nonzero = _window_sum(n_fft, hop_length, frames)
    np.divide(signal, window_sum, out=signal, where=nonzero)
    signal = signal[n_fft // 2:]
    return np.pad(signal, (0, max(0, length - len(signal))))[:length]


def _stft(signal: np.ndarray, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH) -> np.ndarray:
    """Centred, zero-padded Hann STFT, as librosa.stft's defaults compute it: (1 + n_fft // 2, frames)."""
    return _stft_frames(signal, n_fft, hop_length).T


def _istft(stft: np.ndarray, length: int, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH) -> np.ndarray:
    """Inverse of `_stft` by windowed overlap-add, as librosa.istft computes it."""
    return _istft_frames(np.ascontiguousarray(np.asarray(stft).T), length, n_fft, hop_length)


def _random_phase(shape, random_state) -> np.ndarray:
    if random_state is None:
        rng = np.random.default_rng()
    elif isinstance(random_state, (np.random.RandomState, np.random.Generator)):
        rng = random_state
    else:
        rng = np.random.RandomState(seed=random_state)  # the same initial phase as librosa's
    return np.exp(2j * np.pi * rng.random(size=shape)).astype(np.complex64)


# Phase-gradient heuristic integration (Prusa, Balazs and Sondergaard 2017, "A noniterative method
# for reconstruction of phase from STFT magnitude"). Hand-written with numpy and scipy because
# pghipy 0.1.1 (PyPI; its frame-local phase convention matches ours once its Gaussian-window gamma
# is set to the Hann one) compiles its numba heap for ~20 s in every new process.
PGHI_GAMMA_HANN = 0.25645  # gamma = 0.25645 * n_fft ** 2 for a Hann window of n_fft samples
PGHI_TOLERANCE = 1e-3  # coefficients below 1e-3 of the largest (-60 dB) get random phase


def pghi_phase(magnitude: np.ndarray, hop_length: int = HOP_LENGTH, tolerance: float = PGHI_TOLERANCE,
               random_state=None) -> np.ndarray:
    """Estimate the phase of a one-sided Hann STFT from its magnitude alone (PGHI).

    The phase's time and frequency derivatives follow from the log-magnitude's frequency and time
    derivatives (exact for a Gaussian window, close for a Hann window with gamma 0.25645 n_fft^2);
    they are integrated (trapezoid rule) from the largest coefficient outwards, as the paper's heap
    does, but along the maximum spanning tree of the time-frequency grid whose edge weights are the
    products of the two coefficients' magnitudes (the strongest path to each coefficient), built
    with scipy's compiled graph routines instead of a Python heap: as good a start for Griffin-Lim,
    several times faster. Deterministic; coefficients below `tolerance` times the largest get
    random phase from `random_state`, as `griffin_lim`'s random start does.

    Parameters
    ----------
    magnitude : np.ndarray, shape (1 + n_fft // 2, frames)
        Linear magnitudes of the `_stft` convention (centred frames, frame-local phase), Nyquist
        row included.
    hop_length : int
    tolerance : float
        Relative magnitude below which no phase is integrated.
    random_state : int, numpy random generator or None
        For the phase of the coefficients below `tolerance`.

    Returns
    -------
    np.ndarray (complex64), the same shape: unit phasors exp(1j * phase).
    """
    magnitude = np.asarray(magnitude, dtype=np.float64)
    bins, frames = magnitude.shape
    n_fft = 2 * (bins - 1)
    gamma = PGHI_GAMMA_HANN * n_fft ** 2
    floor = magnitude.max(initial=0.0) * tolerance
    integrated = magnitude > max(floor, np.finfo(np.float64).tiny)
    if not integrated.any():
        return _random_phase(magnitude.shape, random_state)
    flat_integrated = integrated.ravel()
    log_magnitude = np.log(np.maximum(magnitude, floor))  # floored, so silence has no slope
    # Phase advance per frame (time direction) and per bin (frequency direction).
    along_time = (hop_length * n_fft / gamma) * _gradient(log_magnitude, axis=0) \
        + 2 * np.pi * hop_length * np.arange(bins)[:, None] / n_fft
    along_frequency = -(gamma / (hop_length * n_fft)) * _gradient(log_magnitude, axis=1) + np.pi

    # Grid edges between integrated neighbours.
    nodes = bins * frames
    first, second = _grid_edges(bins, frames)
    keep = flat_integrated[first] & flat_integrated[second]
    first, second = first[keep], second[keep]
    flat_log = log_magnitude.ravel()
    # Minimum spanning tree of (top - log|u|) + (top - log|v|) + 1 > 0: the strongest paths.
    top = flat_log.max()
    weight = (2 * top + 1) - flat_log[first] - flat_log[second]
    # A root node joined to the local maxima by edges heavier than any in the grid, the lightest at
    # the largest coefficient: the tree starts each connected region at its largest coefficient.
    starts = np.flatnonzero(integrated & _local_maxima(log_magnitude))
    heavy = (weight.max(initial=0.0) + 1) + (top - flat_log[starts]) + 1
    root = nodes
    rows = np.concatenate([first, starts])
    columns = np.concatenate([second, np.full(len(starts), root)])
    graph = scipy.sparse.csr_matrix((np.concatenate([weight, heavy]), (rows, columns)), shape=(nodes + 1, nodes + 1))
    tree = scipy.sparse.csgraph.minimum_spanning_tree(graph)
    order, parent = scipy.sparse.csgraph.breadth_first_order(tree, root, directed=False,
                                                             return_predecessors=True)
    child = order[1:]
    ancestor = np.full(nodes + 1, root)
    ancestor[child] = parent[child]
    # Phase step from each coefficient's parent to it; 0 from the root (integration starts at 0).
    increment = np.zeros(nodes + 1)
    time_step, frequency_step = along_time.ravel(), along_frequency.ravel()
    inner = ancestor[child] != root
    c, a = child[inner], ancestor[child][inner]
    along = (np.abs(c - a) == 1) if frames > 1 else np.zeros(len(c), dtype=bool)  # same bin, next frame
    forward = np.where(along, time_step[a] + time_step[c], frequency_step[a] + frequency_step[c]) / 2
    increment[c] = np.where(c > a, forward, -forward)
    # Sum the steps along every path to the root by pointer jumping (log2(depth) vector passes).
    while np.any(ancestor != root):
        increment = increment + increment[ancestor]
        ancestor = ancestor[ancestor]
    phase = np.remainder(increment[:nodes], 2 * np.pi).astype(np.float32)
    phasors = np.empty(nodes, dtype=np.complex64)
    phasors.real, phasors.imag = np.cos(phase), np.sin(phase)
    if not flat_integrated.all():
        below = ~flat_integrated
        phasors[below] = _random_phase(nodes, random_state)[below]  # each coefficient its own draw
    return phasors.reshape(bins, frames)


@functools.lru_cache(maxsize=4)
def _grid_edges(bins: int, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Node pairs (flat indices, row-major) of a bins x frames grid: each node with its next frame,
    then each node with its next bin."""
    index = np.arange(bins * frames).reshape(bins, frames)
    first = np.concatenate([index[:, :-1].ravel(), index[:-1, :].ravel()])
    second = np.concatenate([index[:, 1:].ravel(), index[1:, :].ravel()])
    first.flags.writeable = second.flags.writeable = False
    return first, second


def _local_maxima(values: np.ndarray) -> np.ndarray:
    """Where a 2-D array is at least as large as its four neighbours."""
    peaks = np.ones(values.shape, dtype=bool)
    peaks[1:, :] &= values[1:, :] >= values[:-1, :]
    peaks[:-1, :] &= values[:-1, :] >= values[1:, :]
    peaks[:, 1:] &= values[:, 1:] >= values[:, :-1]
    peaks[:, :-1] &= values[:, :-1] >= values[:, 1:]
    return peaks


def _gradient(values: np.ndarray, axis: int) -> np.ndarray:
    """Centred differences along `axis`, the array continued by its edge values (so half the
    one-sided difference at the ends, as the PGHI paper's reference code and pghipy compute it;
    zero along a single sample).

    The ends matter: frame 0 of a note that starts at once holds its attack, centred on the
    first sample with half its window in the zero padding, and its time derivative sets the phase
    steps across every bin of that frame. The full one-sided difference there over-steps them:
    strongly distorted notes inverted about 30% worse (spectral convergence 0.103 against 0.074
    on a tanh-distorted pluck; bench/bench_inversion.py)."""
    if values.shape[axis] < 2:
        return np.zeros_like(values)
    gradient = np.gradient(values, axis=axis)
    first = [slice(None)] * values.ndim
    last = [slice(None)] * values.ndim
    first[axis], last[axis] = 0, -1
    gradient[tuple(first)] /= 2
    gradient[tuple(last)] /= 2
    return gradient


INITS = ("pghi", "random")


def griffin_lim(
    magnitude: np.ndarray,
    n_iter: int = GRIFFIN_LIM_ITERATIONS,
    restore_nyquist: bool = True,
    random_state=None,
    momentum: float = 0.99,
    init: str | None = None,
) -> np.ndarray:
    """Invert a 512-row magnitude spectrogram to audio with (fast) Griffin-Lim.

    Parameters
    ----------
    magnitude : np.ndarray, shape (512, frames)
        Linear magnitudes, Nyquist row dropped as in the data set.
    restore_nyquist : bool
        True (default): append a zero Nyquist row and invert with the analysis STFT (n_fft 1024),
        in numpy (librosa.griffinlim's fast Griffin-Lim, without its start-up cost). False: the
        thesis's inversion, librosa.griffinlim on the 512 rows as they are, so librosa assumes
        n_fft 1022, from a random phase.
    random_state : int, numpy random generator or None
        Seed of the random phase: the whole initial phase with init='random' and in the thesis's
        inversion, only that of the coefficients below PGHI's tolerance with 'pghi'. None is the
        thesis's (unseeded) behaviour; the same seed gives the same audio.
    momentum : float
        Fast Griffin-Lim's momentum (librosa's default, 0.99).
    init : 'pghi', 'random' or None
        The phase Griffin-Lim starts from, with the Nyquist row restored. 'pghi' (the default):
        phase-gradient heuristic integration (`pghi_phase`; random only where the magnitude is
        below 1e-3 of its largest). 'random': a random phase, as librosa.griffinlim starts (the
        same audio as librosa's for the same integer seed). The thesis's inversion always starts
        from librosa's random phase, so only None or 'random' go with restore_nyquist=False.

    Returns
    -------
    np.ndarray
        float32 audio at 22,050 Hz (16,317 samples with the default inversion).
    """
    if init not in (None, *INITS):
        raise ValueError(f"init must be one of {', '.join(INITS)}, not {init!r}")
    magnitude = np.asarray(magnitude, dtype=np.float32)
    if not restore_nyquist:
        if init == "pghi":
            raise ValueError("the thesis's inversion (restore_nyquist=False) starts from a random phase, "
                             "as librosa.griffinlim does: init='pghi' needs restore_nyquist=True")
        import librosa

        return librosa.griffinlim(magnitude, n_iter=n_iter, hop_length=HOP_LENGTH, random_state=random_state)
    full = np.vstack([magnitude, np.zeros((1, magnitude.shape[1]), dtype=np.float32)])
    if init == "random":
        phasors = _random_phase(full.shape, random_state)
    else:
        phasors = pghi_phase(full, random_state=random_state)
    # Frames first throughout, as the FFTs run along the last axis.
    full = np.ascontiguousarray(full.T)
    angles = full * phasors.T
    previous = 0
    tiny = np.finfo(np.float32).tiny
    for _ in range(n_iter):
        rebuilt = _stft_frames(_istft_frames(angles, NUM_SAMPLES))
        angles = rebuilt - (momentum / (1 + momentum)) * previous
        angles = full * angles / (np.abs(angles) + tiny)
        previous = rebuilt
    return _istft_frames(angles, NUM_SAMPLES)


def db_to_amplitude(decibels: np.ndarray) -> np.ndarray:
    """Invert librosa.amplitude_to_db (ref 1.0): 10 ** (dB / 20)."""
    return np.power(np.float32(10.0), np.asarray(decibels, dtype=np.float32) / np.float32(20.0))


def spectrogram_to_audio(
    normalised: np.ndarray,
    original_min: float,
    original_max: float,
    n_iter: int = GRIFFIN_LIM_ITERATIONS,
    thesis_inversion: bool = False,
    random_state=None,
    init: str | None = None,
) -> np.ndarray:
    """De-normalise a [0, 1] spectrogram (512 x frames, optional trailing channel), then invert it.

    The default: fast Griffin-Lim from a PGHI phase on the analysis STFT (`griffin_lim`; `init`
    'random' for a random start). `thesis_inversion`: exactly the thesis's librosa.griffinlim call.
    """
    normalised = np.asarray(normalised, dtype=np.float32)
    if normalised.ndim == 3:
        normalised = normalised[..., 0]
    decibels = denormalise(normalised, original_min, original_max)
    if thesis_inversion:
        import librosa

        magnitude = librosa.db_to_amplitude(decibels)
    else:
        magnitude = db_to_amplitude(decibels)
    return griffin_lim(magnitude, n_iter=n_iter, restore_nyquist=not thesis_inversion,
                       random_state=random_state, init=init)


def limit_peak(audio: np.ndarray, *, ceiling_db: float = -1.0) -> tuple[np.ndarray, float]:
    """Scale audio down so that its peak sits at `ceiling_db` dBFS when it would reach full scale.

    Parameters
    ----------
    audio : np.ndarray
        Samples, full scale at 1.0.
    ceiling_db : float, keyword-only
        The peak level, in dB relative to full scale, that loud audio is scaled to.

    Returns
    -------
    (audio, gain_db) : the audio (float32; unchanged when its peak is below full scale) and the
        gain applied in dB (0.0 when unchanged, negative when scaled down).
    """
    audio = np.asarray(audio, dtype=np.float32)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak < 1.0:
        return audio, 0.0
    gain = 10 ** (ceiling_db / 20) / peak
    return (audio * np.float32(gain)).astype(np.float32), float(20 * np.log10(gain))


def spectral_convergence(audio: np.ndarray, target_magnitude: np.ndarray) -> float:
    """Return ||target - |STFT(audio)||| / ||target|| with the analysis STFT (Nyquist row dropped).

    Audio shorter than the target is zero-padded; frames past the target's are ignored.
    """
    frames = target_magnitude.shape[1]
    audio = np.asarray(audio, dtype=np.float32)
    audio = pad_or_trim(audio, max(len(audio), (frames - 1) * HOP_LENGTH + 1))
    estimate = np.abs(librosa.stft(audio, n_fft=N_FFT, hop_length=HOP_LENGTH))[:-1, :frames]
    return float(np.linalg.norm(target_magnitude - estimate) / np.linalg.norm(target_magnitude))
