"""Spectrogram maths and inversion, exactly as the thesis's pre-processing defines them.

Plain numpy arrays in and out; nothing here knows about the model or the file layout.
"""

from __future__ import annotations

import librosa
import numpy as np

SAMPLE_RATE = 22050
DURATION_SECONDS = 0.74
NUM_SAMPLES = int(SAMPLE_RATE * DURATION_SECONDS)  # 16,317
N_FFT = 1024
HOP_LENGTH = 256
GRIFFIN_LIM_ITERATIONS = 32
SPECTROGRAM_SHAPE = (N_FFT // 2, 1 + NUM_SAMPLES // HOP_LENGTH)  # (512, 64)


class SilentNoteError(ValueError):
    """A note whose dB spectrogram is constant, so min-max normalising would divide by zero."""


def load_note(path, sample_rate: int = SAMPLE_RATE, duration: float = DURATION_SECONDS) -> np.ndarray:
    """Load the first `duration` seconds of an audio file as mono float32 at `sample_rate`.

    Parameters
    ----------
    path : str or Path
        Any file libsndfile reads (wav, flac, aiff, ogg, ...).

    Returns
    -------
    signal : np.ndarray, shape (int(sample_rate * duration),)
        Mixed down to mono, resampled with librosa's default resampler, zero-padded at the end.
    """
    signal, _ = librosa.load(path, sr=sample_rate, mono=True, duration=duration)
    return pad_or_trim(signal, int(sample_rate * duration))


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


def _hann(n_fft: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)


def _stft(signal: np.ndarray, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH) -> np.ndarray:
    """Centred, zero-padded Hann STFT, as librosa.stft's defaults compute it."""
    padded = np.pad(signal, n_fft // 2)
    frames = 1 + (len(padded) - n_fft) // hop_length
    indices = np.arange(n_fft)[None, :] + hop_length * np.arange(frames)[:, None]
    return np.fft.rfft(padded[indices] * _hann(n_fft), axis=1).T.astype(np.complex64)


def _istft(stft: np.ndarray, length: int, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH) -> np.ndarray:
    """Inverse of `_stft` by windowed overlap-add, as librosa.istft computes it."""
    window = _hann(n_fft)
    frames = stft.shape[1]
    segments = np.fft.irfft(stft.T, n=n_fft, axis=1).astype(np.float32) * window
    total = n_fft + hop_length * (frames - 1)
    signal = np.zeros(total, dtype=np.float32)
    window_sum = np.zeros(total, dtype=np.float32)
    for frame in range(frames):
        start = frame * hop_length
        signal[start:start + n_fft] += segments[frame]
        window_sum[start:start + n_fft] += window ** 2
    nonzero = window_sum > np.finfo(np.float32).tiny
    signal[nonzero] /= window_sum[nonzero]
    signal = signal[n_fft // 2:]
    return np.pad(signal, (0, max(0, length - len(signal))))[:length]


def _random_phase(shape, random_state) -> np.ndarray:
    if random_state is None:
        rng = np.random.default_rng()
    elif isinstance(random_state, (np.random.RandomState, np.random.Generator)):
        rng = random_state
    else:
        rng = np.random.RandomState(seed=random_state)  # the same initial phase as librosa's
    return np.exp(2j * np.pi * rng.random(size=shape)).astype(np.complex64)


def griffin_lim(
    magnitude: np.ndarray,
    n_iter: int = GRIFFIN_LIM_ITERATIONS,
    restore_nyquist: bool = True,
    random_state=None,
    momentum: float = 0.99,
) -> np.ndarray:
    """Invert a 512-row magnitude spectrogram to audio with (fast) Griffin-Lim.

    Parameters
    ----------
    magnitude : np.ndarray, shape (512, frames)
        Linear magnitudes, Nyquist row dropped as in the data set.
    restore_nyquist : bool
        True (default): append a zero Nyquist row and invert with the analysis STFT (n_fft 1024),
        in numpy (the same algorithm and initial phase as librosa.griffinlim, without its start-up
        cost). False: the thesis's inversion, librosa.griffinlim on the 512 rows as they are, so
        librosa assumes n_fft 1022.
    random_state : int, numpy random generator or None
        Seed of the random initial phase; None is the thesis's (unseeded) behaviour.

    Returns
    -------
    np.ndarray
        float32 audio at 22,050 Hz (16,317 samples with the default inversion).
    """
    magnitude = np.asarray(magnitude, dtype=np.float32)
    if not restore_nyquist:
        import librosa

        return librosa.griffinlim(magnitude, n_iter=n_iter, hop_length=HOP_LENGTH, random_state=random_state)
    full = np.vstack([magnitude, np.zeros((1, magnitude.shape[1]), dtype=np.float32)])
    angles = full * _random_phase(full.shape, random_state)
    previous = 0
    for _ in range(n_iter):
        rebuilt = _stft(_istft(angles, NUM_SAMPLES))
        angles = rebuilt - (momentum / (1 + momentum)) * previous
        angles = full * angles / (np.abs(angles) + np.finfo(np.float32).tiny)
        previous = rebuilt
    return _istft(angles, NUM_SAMPLES)


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
) -> np.ndarray:
    """De-normalise a [0, 1] spectrogram (512 x frames, optional trailing channel), then invert it."""
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
                       random_state=random_state)


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
