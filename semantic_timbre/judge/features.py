"""The judge's features (plain arrays): what a normalised 512 x 64 spectrogram, de-normalised with
its min/max, says of distortion, filtering, dynamics and modulation; and the features of stored notes
(with, for training, those of their damaged copies, augmentation.py).

Features are gain-invariant: every level is taken relative to the note's own maximum, because
a generated note keeps the level range of the note it came from (the system de-normalises with
that note's min/max) and could not be recognised by its loudness anyway.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from semantic_timbre.judge.augmentation import (AUGMENTED_COPIES, GRIFFIN_LIM_ITERATIONS, GRIFFIN_LIM_NOTES,
                                                MAX_AUGMENTED_NOTES, augment)

# Analysis constants of the data set's spectrograms (spectrogram.py): 22,050 Hz, n_fft 1024, hop 256.
SAMPLE_RATE = 22050
N_FFT = 1024
HOP_LENGTH = 256
N_MELS = 40
#: Power floor relative to the note's maximum: the data set's dB spectrograms stop 80 dB below it.
FLOOR_DB = -100.0


# ---------------------------------------------------------------------------------------------
# Features (plain arrays)


@functools.lru_cache(maxsize=1)
def _mel_matrix() -> np.ndarray:
    import librosa

    mel = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=40.0, fmax=SAMPLE_RATE / 2)
    return mel[:, :N_FFT // 2].astype(np.float64)  # the data set drops the Nyquist row


def feature_names() -> list[str]:
    """Names of the columns `spectrogram_features` returns, in order."""
    names = []
    for what in ("mean", "std", "flux"):
        names += [f"mel{band:02d}_{what}" for band in range(N_MELS)]
    names += [f"grid_band{band}_time{time}" for band in range(8) for time in range(8)]
    names += [f"envelope_segment{segment:02d}" for segment in range(16)]
    names += ["envelope_peak_position", "envelope_decay_slope", "envelope_end_level", "envelope_std"]
    names += [f"envelope_modulation{index:02d}" for index in range(1, 33)]
    names += ["envelope_modulation_depth"]
    for what in ("log_centroid", "log_bandwidth", "log_rolloff", "log_flatness", "high_ratio", "low_ratio",
                 "peakiness"):
        names += [f"{what}_mean", f"{what}_std"]
    names += ["spectral_flux_mean", "spectral_flux_std", "dynamic_range_db", "mean_level"]
    return names


def spectrogram_features(normalised: np.ndarray, low, high, chunk: int = 64) -> np.ndarray:
    """Features of normalised dB spectrograms, de-normalised with their min and max.

    Parameters
    ----------
    normalised : np.ndarray, shape (512, frames), (N, 512, frames) or (N, 512, frames, 1)
        Values in [0, 1] (a real note's stored spectrogram or a decoded one).
    low, high : float or array of N floats
        The min and max dB each spectrogram is de-normalised with.

    Returns
    -------
    np.ndarray, shape (N, len(feature_names())) (N = 1 for a single spectrogram), float64

    Every level is relative to the note's maximum (gain-invariant): mel-band level profiles
    (mean, spread and frame-to-frame change over time), a coarse band x time grid, the temporal
    envelope (shape, peak position, decay, modulation spectrum from 1.3 to 43 Hz) and per-frame
    spectral shape (centroid, bandwidth, roll-off, flatness, high/low energy share, harmonic
    peakiness) weighted by frame energy, spectral flux, the dB range and the mean level.
    """
    spectrograms = np.asarray(normalised, dtype=np.float64)
    if spectrograms.ndim == 4:
        spectrograms = spectrograms[..., 0]
    if spectrograms.ndim == 2:
        spectrograms = spectrograms[None]
    if spectrograms.ndim != 3 or spectrograms.shape[1] != N_FFT // 2:
        raise ValueError(f"expected spectrograms of shape (N, {N_FFT // 2}, frames), got {spectrograms.shape}")
    count = len(spectrograms)
    lows = np.broadcast_to(np.asarray(low, dtype=np.float64), (count,))
    highs = np.broadcast_to(np.asarray(high, dtype=np.float64), (count,))
    if count == 0:
        return np.zeros((0, len(feature_names())))
    return np.concatenate([_features(spectrograms[start:start + chunk], lows[start:start + chunk],
                                     highs[start:start + chunk]) for start in range(0, count, chunk)])


def _weighted_stats(values: np.ndarray, weights: np.ndarray) -> list[np.ndarray]:
    mean = np.sum(values * weights, axis=1)
    std = np.sqrt(np.sum((values - mean[:, None]) ** 2 * weights, axis=1))
    return [mean, std]


def _features(spectrograms: np.ndarray, lows: np.ndarray, highs: np.ndarray) -> np.ndarray:
    from scipy.ndimage import uniform_filter1d

    count, bins, frames = spectrograms.shape
    ranges = (highs - lows)[:, None, None]
    relative_db = np.maximum((np.clip(spectrograms, 0.0, 1.0) - 1.0) * ranges, FLOOR_DB)  # dB below the maximum
    power = 10.0 ** (relative_db / 10.0)
    columns = []

    # Mel-band level profiles over time.
    band_db = 10.0 * np.log10(np.einsum("bf,nft->nbt", _mel_matrix(), power) + 10.0 ** (FLOOR_DB / 10))
    columns += [band_db.mean(axis=2), band_db.std(axis=2), np.abs(np.diff(band_db, axis=2)).mean(axis=2)]
    # A coarse band x time grid (8 x 8): how each region of the spectrum evolves.
    time_edges = np.linspace(0, frames, 9).round().astype(int)
    grid = np.stack([band_db[:, :, a:b].mean(axis=2) for a, b in zip(time_edges[:-1], time_edges[1:])], axis=2)
    columns.append(grid.reshape(count, 8, N_MELS // 8, 8).mean(axis=2).reshape(count, 64))

    # The temporal envelope: frame energy in dB relative to its loudest frame.
    frame_power = power.sum(axis=1)
    envelope = 10.0 * np.log10(frame_power + 1e-12)
    envelope = envelope - envelope.max(axis=1, keepdims=True)
    segment_edges = np.linspace(0, frames, 17).round().astype(int)
    columns.append(np.stack([envelope[:, a:b].mean(axis=1) for a, b in zip(segment_edges[:-1], segment_edges[1:])],
                            axis=1))
    peak = envelope.argmax(axis=1)
    time = np.arange(frames, dtype=np.float64)
    after = time[None, :] >= peak[:, None]
    points = after.sum(axis=1)
    mean_time = np.sum(time * after, axis=1) / points
    mean_level = np.sum(envelope * after, axis=1) / points
    spread = np.sum((time - mean_time[:, None]) ** 2 * after, axis=1)
    slope = np.where(spread > 0, np.sum((time - mean_time[:, None]) * (envelope - mean_level[:, None]) * after,
                                        axis=1) / np.maximum(spread, 1e-12), 0.0)
    columns += [peak[:, None] / max(frames - 1, 1), slope[:, None], envelope[:, -4:].mean(axis=1, keepdims=True),
                envelope.std(axis=1, keepdims=True)]
    # Modulation: the envelope less its slow trend, its spectrum (bins of 86.1 / frames Hz).
    residual = envelope - uniform_filter1d(envelope, size=9, axis=1, mode="nearest")
    spectrum = np.abs(np.fft.rfft(residual * np.hanning(frames), n=64, axis=1))[:, 1:33]
    columns += [spectrum, residual.std(axis=1, keepdims=True)]

    # Per-frame spectral shape, averaged over frames weighted by their energy.
    weights = frame_power / frame_power.sum(axis=1, keepdims=True)
    frequencies = np.arange(bins, dtype=np.float64) * SAMPLE_RATE / N_FFT
    total = frame_power + 1e-12
    centroid = np.einsum("f,nft->nt", frequencies, power) / total
    bandwidth = np.sqrt(np.einsum("nft,nft->nt", (frequencies[None, :, None] - centroid[:, None, :]) ** 2, power)
                        / total)
    cumulative = np.cumsum(power, axis=1)
    rolloff = frequencies[np.argmax(cumulative >= 0.85 * cumulative[:, -1:, :], axis=1)]
    flatness = np.exp(np.mean(np.log(power), axis=1)) / power.mean(axis=1)
    high_ratio = power[:, frequencies >= 4000, :].sum(axis=1) / total
    low_ratio = power[:, frequencies < 250, :].sum(axis=1) / total
    peakiness = np.maximum(relative_db - uniform_filter1d(relative_db, size=9, axis=1, mode="nearest"), 0).mean(axis=1)
    for values in (np.log2(centroid + 20.0), np.log2(bandwidth + 20.0), np.log2(rolloff + 20.0),
                   np.log10(flatness + 1e-10), high_ratio, low_ratio, peakiness):
        columns += [stat[:, None] for stat in _weighted_stats(values, weights)]
    flux = np.mean(np.abs(np.diff(relative_db, axis=2)), axis=1)
    columns += [flux.mean(axis=1, keepdims=True), flux.std(axis=1, keepdims=True),
                ranges[:, 0, :], relative_db.mean(axis=(1, 2))[:, None]]
    return np.concatenate(columns, axis=1)


def notes_features(notes, spectrograms_dir, min_max: dict, batch: int = 64, progress: bool = False,
                   augment_seed: int | None = None):
    """Features of the stored spectrograms of `notes`, read `batch` at a time.

    With `augment_seed`, also the features of their damaged copies (`augment`; AUGMENTED_COPIES
    per note for up to MAX_AUGMENTED_NOTES notes, a Griffin-Lim round trip for GRIFFIN_LIM_NOTES)
    and, for each copy, the index of the note it came from: (features, augmented, sources).
    """
    from tqdm import tqdm

    from semantic_timbre.data import damage, processed_data

    folder = Path(spectrograms_dir)
    rng = np.random.default_rng(augment_seed)
    count = len(notes)
    augmented_notes = set(rng.choice(count, size=min(count, MAX_AUGMENTED_NOTES), replace=False).tolist())
    round_trips = set(rng.choice(count, size=min(count, GRIFFIN_LIM_NOTES), replace=False).tolist())
    rows, extra_rows, sources = [], [], []
    for start in tqdm(range(0, count, batch), desc="judge features", unit="batch", disable=not progress):
        chunk = notes[start:start + batch]
        spectrograms = np.stack([processed_data.load_spectrogram(folder / note.spectrogram_name) for note in chunk])
        bounds = np.array([processed_data.min_max_of(min_max, note) for note in chunk], dtype=np.float64)
        rows.append(spectrogram_features(spectrograms, bounds[:, 0], bounds[:, 1]))
        if augment_seed is None:
            continue
        copies, copy_bounds = [], []
        for offset, (spectrogram, (low, high)) in enumerate(zip(spectrograms, bounds)):
            index = start + offset
            made = [augment(spectrogram, low, high, rng) for _ in range(AUGMENTED_COPIES)] \
                if index in augmented_notes else []
            if index in round_trips:
                made.append(damage.griffin_lim_round_trip(spectrogram, low=low, high=high,
                                                          n_iter=GRIFFIN_LIM_ITERATIONS, random_state=index))
            copies += made
            copy_bounds += [(low, high)] * len(made)
            sources += [index] * len(made)
        if copies:
            copy_bounds = np.array(copy_bounds)
            extra_rows.append(spectrogram_features(np.stack(copies), copy_bounds[:, 0], copy_bounds[:, 1]))
    width = len(feature_names())
    features = np.concatenate(rows) if rows else np.zeros((0, width))
    if augment_seed is None:
        return features
    augmented = np.concatenate(extra_rows) if extra_rows else np.zeros((0, width))
    return features, augmented, np.array(sources, dtype=np.int64)
