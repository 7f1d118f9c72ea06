"""What a listener notices in a generated note, measured on dB spectrograms (plain arrays).

- flicker: the frame-mean level alternating between even and odd frames (a checkerboard of
  stride-2 transposed convolutions along time is heard as roughness);
- the level error of the loudest bins (the harmonics) and of the noise floor;
- log-spectral distance at the onset and in the sustain;
- the judge-free identity check: is the nearest real note of the same pitch one of the intended
  descriptor?

Spectrograms are (..., bins, frames) in dB; a generated note is compared in the dB range of the
note it came from. Nothing here knows the model.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 22050
HOP_LENGTH = 256
#: The onset: the frames that start within the first 50 ms (frames 0-4 at hop 256, 22,050 Hz).
ONSET_SECONDS = 0.05
ONSET_FRAMES = int(np.ceil(ONSET_SECONDS * SAMPLE_RATE / HOP_LENGTH))
#: The loudest bins: within this many dB of the note's maximum (its harmonics).
LOUD_DB = 20.0
#: The noise floor: more than this many dB below the note's maximum.
FLOOR_DB = 60.0


def _as_notes(decibels) -> np.ndarray:
    decibels = np.asarray(decibels, dtype=np.float64)
    if decibels.ndim == 4:
        decibels = decibels[..., 0]
    if decibels.ndim == 2:
        decibels = decibels[None]
    if decibels.ndim != 3:
        raise ValueError(f"expected dB spectrograms (N, bins, frames), got shape {decibels.shape}")
    return decibels


def frame_flicker_db(decibels: np.ndarray, *, skip_frames: int = ONSET_FRAMES) -> np.ndarray:
    """The even/odd alternation of each note's frame-mean level, in dB.

    The frame-mean level m_t (the mean dB over frequency) less the mean of its two neighbours,
    r_t = m_t - (m_{t-1} + m_{t+1}) / 2, signed by the frame's parity and averaged over the
    frames after the onset: |mean_t (-1)^t r_t|, t >= `skip_frames`. A level that alternates by
    +-a (even frames 2a above the odd ones) gives 2a; a straight or slowly curving envelope
    (decay) gives about 0. The onset is left out: its jump from the silent first frame gives
    every note the same large r_1, which is no flicker.

    Parameters
    ----------
    decibels : np.ndarray, shape (bins, frames) or (N, bins, frames); frames >= skip_frames + 2

    Returns
    -------
    np.ndarray, shape (N,), float64
    """
    decibels = _as_notes(decibels)
    start = max(int(skip_frames), 1)
    if decibels.shape[-1] < start + 2:
        raise ValueError(f"the flicker needs at least {start + 2} frames")
    level = decibels.mean(axis=1)
    residual = level[:, start:-1] - (level[:, start - 1:-2] + level[:, start + 1:]) / 2
    signs = np.where(np.arange(start, level.shape[1] - 1) % 2 == 0, 1.0, -1.0)
    return np.abs(np.mean(residual * signs, axis=1))


def level_error_db(original_db: np.ndarray, generated_db: np.ndarray, *, loud_db: float = LOUD_DB,
                   floor_db: float = FLOOR_DB) -> dict:
    """The signed mean dB error (generated less original) of the loudest and the quietest bins.

    The loudest bins are those of the original within `loud_db` of its maximum, the floor those
    more than `floor_db` below it; both are averaged per note, then over the notes.

    Returns
    -------
    dict: 'loud_bias_db', 'loud_abs_db' (mean absolute error), 'loud_share' (the fraction of bins
        that are loud), 'floor_bias_db', 'floor_share'
    """
    original, generated = _as_notes(original_db), _as_notes(generated_db)
    if original.shape != generated.shape or not original.size:
        raise ValueError(f"expected two sets of the same shape, got {original.shape} and {generated.shape}")
    relative = original - original.max(axis=(1, 2), keepdims=True)
    error = generated - original
    loud, floor = relative >= -loud_db, relative < -floor_db

    def mean_over(mask, values):
        counts = mask.sum(axis=(1, 2))
        per_note = np.where(counts > 0, (values * mask).sum(axis=(1, 2)) / np.maximum(counts, 1), np.nan)
        return float(np.nanmean(per_note)) if np.any(counts > 0) else None

    return {"loud_bias_db": mean_over(loud, error), "loud_abs_db": mean_over(loud, np.abs(error)),
            "loud_share": float(loud.mean()), "floor_bias_db": mean_over(floor, error),
            "floor_share": float(floor.mean())}


def segment_lsd_db(original_db: np.ndarray, generated_db: np.ndarray, *, onset_frames: int = ONSET_FRAMES
                   ) -> tuple[float, float]:
    """Log-spectral distance (RMS over frequency of the dB difference, averaged over frames and
    notes) of the onset (the first `onset_frames` frames) and of the sustain (the rest).

    Returns
    -------
    (onset_lsd_db, sustain_lsd_db)
    """
    original, generated = _as_notes(original_db), _as_notes(generated_db)
    if original.shape != generated.shape or not original.size:
        raise ValueError(f"expected two sets of the same shape, got {original.shape} and {generated.shape}")
    if not 0 < onset_frames < original.shape[-1]:
        raise ValueError(f"the onset must be between 1 and {original.shape[-1] - 1} frames, not {onset_frames}")
    per_frame = np.sqrt(np.mean((original - generated) ** 2, axis=1))
    return float(per_frame[:, :onset_frames].mean()), float(per_frame[:, onset_frames:].mean())


def relative_db(normalised: np.ndarray, low, high) -> np.ndarray:
    """dB below the note's maximum of normalised spectrograms (N, bins, frames) with ranges high - low."""
    normalised = _as_notes(normalised)
    ranges = (np.asarray(high, dtype=np.float64) - np.asarray(low, dtype=np.float64)).reshape(-1, 1, 1)
    return (np.clip(normalised, 0.0, 1.0) - 1.0) * ranges


def nearest_real_identity(generated_db: np.ndarray, intended, pitches, real_db: np.ndarray, real_descriptors,
                          real_pitches, *, exclude=None) -> tuple[float, np.ndarray]:
    """The judge-free check: for each generated note, is the real note of the same pitch at the
    smallest log-spectral distance one of the intended descriptor?

    Parameters
    ----------
    generated_db : (N, bins, frames), dB relative to each note's maximum (`relative_db`)
    intended, pitches : N descriptors and pitches of the generated notes
    real_db : (M, bins, frames), the real notes the same way
    real_descriptors, real_pitches : M each
    exclude : N indices into the real notes (the note a reconstruction came from, which is not a
        candidate), or -1 / None for none

    Returns
    -------
    (fraction, nearest): the fraction of generated notes whose nearest real note has the intended
    descriptor (NaN when no generated note has a candidate), and each one's nearest real index
    (-1: no real note of its pitch).
    """
    generated, real = _as_notes(generated_db), _as_notes(real_db)
    intended, pitches = np.asarray(intended).astype(str), np.asarray(pitches).astype(str)
    real_descriptors, real_pitches = np.asarray(real_descriptors).astype(str), np.asarray(real_pitches).astype(str)
    exclude = np.full(len(generated), -1) if exclude is None else np.asarray(exclude, dtype=int)
    nearest = np.full(len(generated), -1)
    for pitch in np.unique(pitches):
        candidates = np.flatnonzero(real_pitches == pitch)
        if not len(candidates):
            continue
        pool = real[candidates].astype(np.float32)
        for row in np.flatnonzero(pitches == pitch):
            distances = np.sqrt(np.mean((pool - generated[row].astype(np.float32)) ** 2, axis=1)).mean(axis=1)
            distances[candidates == exclude[row]] = np.inf
            if np.isfinite(distances).any():
                nearest[row] = candidates[int(np.argmin(distances))]
    found = nearest >= 0
    if not found.any():
        return float("nan"), nearest
    return float(np.mean(real_descriptors[nearest[found]] == intended[found])), nearest
