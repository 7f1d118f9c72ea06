"""Descriptor-agnostic damage of normalised spectrograms: what a decoder or an inversion does to
any note, whatever its descriptor.

The descriptor judge learns from real notes damaged this way (so that it hears the descriptor
through an artefact, as a listener does), and the evaluation damages real notes to the model's
own log-spectral distance to show that the judge survives damage of that size.

Every function takes and returns plain arrays: normalised spectrograms (512, frames) in [0, 1],
as the data set stores them (dB min-max normalised per note), with keyword-only options. A
function that needs the note's dB range takes it as `range_db` (its max minus its min).
"""

from __future__ import annotations

import numpy as np

#: The kinds `damage` applies.
KINDS = ("noise", "blur", "jitter", "griffin_lim")


def _rng(random_state):
    return random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)


def add_noise(normalised: np.ndarray, *, std_db: float, range_db: float, random_state=None) -> np.ndarray:
    """Add white Gaussian noise of `std_db` dB to every bin, clipped to [0, 1].

    Parameters
    ----------
    normalised : np.ndarray, shape (bins, frames), values in [0, 1]
    std_db : float
        The noise's standard deviation in dB.
    range_db : float
        The note's dB range (the value 1 stands `range_db` dB above 0).
    random_state : int, numpy Generator or None

    Returns
    -------
    np.ndarray, float32, the shape of `normalised`
    """
    normalised = np.asarray(normalised, dtype=np.float32)
    noise = _rng(random_state).standard_normal(normalised.shape).astype(np.float32) * np.float32(std_db / range_db)
    return np.clip(normalised + noise, 0.0, 1.0)


def blur(normalised: np.ndarray, *, sigma_bins: float, sigma_frames: float) -> np.ndarray:
    """Gaussian blur along frequency (`sigma_bins`) and time (`sigma_frames`), in the dB domain.

    Returns
    -------
    np.ndarray, float32, the shape of `normalised`
    """
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(np.asarray(normalised, dtype=np.float32), (float(sigma_bins), float(sigma_frames)),
                           mode="nearest").astype(np.float32)


def frame_jitter(normalised: np.ndarray, *, gain_db: float, range_db: float, max_shift: int = 1,
                 random_state=None) -> np.ndarray:
    """Each frame's level moved by an independent Gaussian gain of `gain_db` dB, and the whole
    note shifted by up to `max_shift` frames (edge frames repeated), clipped to [0, 1].

    Returns
    -------
    np.ndarray, float32, the shape of `normalised`
    """
    rng = _rng(random_state)
    normalised = np.asarray(normalised, dtype=np.float32)
    shift = int(rng.integers(-max_shift, max_shift + 1)) if max_shift > 0 else 0
    frames = normalised.shape[1]
    index = np.clip(np.arange(frames) - shift, 0, frames - 1)
    gains = rng.standard_normal(frames).astype(np.float32) * np.float32(gain_db / range_db)
    return np.clip(normalised[:, index] + gains[None, :], 0.0, 1.0)


def griffin_lim_round_trip(normalised: np.ndarray, *, low: float, high: float, n_iter: int = 16,
                           random_state=None) -> np.ndarray:
    """The note inverted to audio with Griffin-Lim (spectrogram.spectrogram_to_audio) and analysed
    again (the data set's dB spectrogram), normalised with the original's `low` and `high`.

    Returns
    -------
    np.ndarray, float32, the shape of `normalised`
    """
    from semantic_timbre.data import spectrogram

    audio = spectrogram.spectrogram_to_audio(normalised, low, high, n_iter=n_iter, random_state=random_state)
    decibels = spectrogram.log_spectrogram(audio)[:, :np.shape(normalised)[1]]
    return np.clip((decibels - low) / (high - low), 0.0, 1.0).astype(np.float32)


def damage(normalised: np.ndarray, kind: str, strength: float, *, low: float, high: float,
           random_state=None) -> np.ndarray:
    """One kind of damage at `strength` (0: none; about 1: a model's error of 4-5 dB LSD).

    noise: `6 * strength` dB of Gaussian noise; blur: sigma `2 * strength` bins and
    `strength` frames; jitter: `3 * strength` dB frame gains and a shift of up to one frame;
    griffin_lim: a round trip with `max(1, round(32 * (1 - strength / 2)))` iterations (fewer is
    rougher).
    """
    range_db = float(high - low)
    if kind == "noise":
        return add_noise(normalised, std_db=6.0 * strength, range_db=range_db, random_state=random_state)
    if kind == "blur":
        return blur(normalised, sigma_bins=2.0 * strength, sigma_frames=strength)
    if kind == "jitter":
        return frame_jitter(normalised, gain_db=3.0 * strength, range_db=range_db, random_state=random_state)
    if kind == "griffin_lim":
        iterations = max(1, int(round(32 * (1 - min(strength, 1.9) / 2))))
        return griffin_lim_round_trip(normalised, low=low, high=high, n_iter=iterations, random_state=random_state)
    raise ValueError(f"unknown damage '{kind}': choose {', '.join(KINDS)}")


def damage_to_lsd(normalised: np.ndarray, kind: str, target_lsd_db: float, *, low: float, high: float,
                  random_state=0, steps: int = 12) -> tuple[np.ndarray, float]:
    """Damage of one kind ('noise' or 'blur') whose log-spectral distance to the note is
    `target_lsd_db`, found by bisection on the strength.

    Returns
    -------
    damaged : np.ndarray, float32
    lsd_db : float, the distance reached (within a few percent of the target, or the most the
        kind can do: a blur cannot take a flat note anywhere)
    """
    if kind not in ("noise", "blur"):
        raise ValueError(f"damage to a distance is defined for noise and blur, not '{kind}'")
    range_db = float(high - low)
    original = np.asarray(normalised, dtype=np.float64)

    def attempt(strength):
        seed = random_state if not isinstance(random_state, np.random.Generator) else 0
        damaged = damage(normalised, kind, strength, low=low, high=high, random_state=seed)
        difference = (damaged - original) * range_db
        return damaged, float(np.mean(np.sqrt(np.mean(difference ** 2, axis=0))))

    lower, upper = 0.0, 1.0
    damaged, reached = attempt(upper)
    while reached < target_lsd_db and upper < 64:
        lower, upper = upper, upper * 2
        damaged, reached = attempt(upper)
    best = (damaged, reached)
    for _ in range(steps):
        middle = (lower + upper) / 2
        damaged, reached = attempt(middle)
        if abs(reached - target_lsd_db) < abs(best[1] - target_lsd_db):
            best = (damaged, reached)
        if reached < target_lsd_db:
            lower = middle
        else:
            upper = middle
    return best
