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


def griffin_lim(
    magnitude: np.ndarray,
    n_iter: int = GRIFFIN_LIM_ITERATIONS,
    restore_nyquist: bool = True,
    random_state=None,
) -> np.ndarray:
    """Invert a 512-row magnitude spectrogram to audio with Griffin-Lim.

    Parameters
    ----------
    magnitude : np.ndarray, shape (512, frames)
        Linear magnitudes, Nyquist row dropped as in the data set.
    restore_nyquist : bool
        True (default): append a zero Nyquist row and invert with the analysis STFT (n_fft 1024).
        False: the thesis's inversion, which hands the 512 rows to librosa as they are, so
        librosa assumes n_fft 1022.
    random_state : int or None
        Seed of Griffin-Lim's random initial phase; None is the thesis's (unseeded) behaviour.
    """
    if restore_nyquist:
        full = np.vstack([magnitude, np.zeros((1, magnitude.shape[1]), dtype=magnitude.dtype)])
        return librosa.griffinlim(full, n_iter=n_iter, hop_length=HOP_LENGTH, n_fft=N_FFT,
                                  random_state=random_state, length=NUM_SAMPLES)
    return librosa.griffinlim(magnitude, n_iter=n_iter, hop_length=HOP_LENGTH, random_state=random_state)


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
    magnitude = librosa.db_to_amplitude(denormalise(normalised, original_min, original_max))
    return griffin_lim(magnitude, n_iter=n_iter, restore_nyquist=not thesis_inversion,
                       random_state=random_state)


def spectral_convergence(audio: np.ndarray, target_magnitude: np.ndarray) -> float:
    """Return ||target - |STFT(audio)||| / ||target|| with the analysis STFT (Nyquist row dropped).

    Audio shorter than the target is zero-padded; frames past the target's are ignored.
    """
    frames = target_magnitude.shape[1]
    audio = np.asarray(audio, dtype=np.float32)
    audio = pad_or_trim(audio, max(len(audio), (frames - 1) * HOP_LENGTH + 1))
    estimate = np.abs(librosa.stft(audio, n_fft=N_FFT, hop_length=HOP_LENGTH))[:-1, :frames]
    return float(np.linalg.norm(target_magnitude - estimate) / np.linalg.norm(target_magnitude))
