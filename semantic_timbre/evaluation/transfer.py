"""Descriptor transfer in latent space: each descriptor's direction added to the codes of clean notes,
put through a round trip (with a model: decoded, re-encoded to mu) and recognised by the descriptor
classifier trained on the real notes (metrics.py); plain arrays and a round-trip function.
"""

from __future__ import annotations

import numpy as np

from semantic_timbre.evaluation.metrics import MetricUnavailable, _as_codes, descriptor_classifier


# ---------------------------------------------------------------------------------------------
# Descriptor transfer: descriptors applied in latent space, recognised by the classifier


def descriptor_transfer_recognition(codes: np.ndarray, descriptors, magnitudes, pitches, round_trip,
                                    magnitude: float = 100, max_clean_notes: int | None = None,
                                    seed: int = 0) -> tuple[float, dict]:
    """How often the classifier trained on real notes recognises a descriptor applied to clean notes.

    A `descriptor_classifier` is fitted on the codes (mu) of the real non-clean notes. Every
    descriptor's direction at `magnitude` (as `descriptor_control.direction_at`: interpolated
    between the magnitudes the data has, clamped above the largest) is added to the code of each
    clean note (at most `max_clean_notes`, spread evenly over the sorted notes); the results go
    through `round_trip` (with a model: decoded, then re-encoded to mu) and are classified.

    Parameters
    ----------
    codes : np.ndarray, shape (N, latent); descriptors, magnitudes, pitches : one label per code
        (pitches: anything naming where a note is played, e.g. '1-5' for string 1, fret 5)
    round_trip : callable taking codes (n, latent) and returning codes (n, latent);
        `model_round_trip(vae)` for a model
    magnitude : float in 0..100

    Returns
    -------
    rate : float
        Fraction of (clean note, descriptor) trials classified as the intended descriptor.
    details : dict
        'chance_level' (1 / descriptors), 'trials', 'clean_notes', 'magnitude', 'per_descriptor',
        and 'real_notes_round_trip': the rate for the real effected notes of the clean notes'
        pitches put through the same round trip (what the round trip alone allows), or None with
        'real_notes_round_trip_reason' when no effected note shares a pitch with them.

    Raises
    ------
    MetricUnavailable
        Without clean notes, with fewer than two descriptors, with no clean note to use, or when
        the round trip gives codes that are not finite.
    """
    codes = _as_codes(codes)
    descriptors, magnitudes, pitches = np.asarray(descriptors), np.asarray(magnitudes), np.asarray(pitches)
    if not 0 <= magnitude <= 100:
        raise ValueError(f"the magnitude must lie in 0..100, got {magnitude}")
    clean = magnitudes == 0
    classes = np.unique(descriptors[~clean])
    if not clean.any():
        raise MetricUnavailable("the data holds no clean notes (magnitude 0) to apply descriptors to")
    if len(classes) < 2:
        raise MetricUnavailable(f"needs at least two descriptors, the data has {len(classes)}")
    clean_indices = transfer_clean_indices(magnitudes, max_clean_notes)
    classifier = descriptor_classifier(seed).fit(codes[~clean], descriptors[~clean])
    intended, shifted, _ = transfer_trials(codes, descriptors, magnitudes, clean_indices, magnitude, classes)
    hits = _recognised(round_trip, classifier, shifted, intended)
    details = {
        "chance_level": 1.0 / len(classes),
        "trials": int(len(hits)),
        "clean_notes": int(len(clean_indices)),
        "magnitude": magnitude,
        "per_descriptor": {str(name): float(hits[intended == str(name)].mean()) for name in classes},
    }
    # Reference: the real effected notes at the same pitches, through the same round trip, shows
    # how much the round trip alone loses.
    real = np.flatnonzero(~clean & np.isin(pitches, pitches[clean_indices]))
    if len(real):
        details["real_notes_round_trip"] = float(_recognised(round_trip, classifier, codes[real],
                                                             descriptors[real]).mean())
    else:
        details["real_notes_round_trip"] = None
        details["real_notes_round_trip_reason"] = (
            "no effected note shares a pitch with the clean notes the descriptors were applied to")
    return float(hits.mean()), details


def transfer_clean_indices(magnitudes, max_clean_notes: int | None) -> np.ndarray:
    """The clean notes descriptors are applied to: at most `max_clean_notes`, spread evenly over them.

    Raises
    ------
    MetricUnavailable
        Without clean notes, or when `max_clean_notes` is 0.
    """
    clean_indices = np.flatnonzero(np.asarray(magnitudes) == 0)
    if not len(clean_indices):
        raise MetricUnavailable("the data holds no clean notes (magnitude 0) to apply descriptors to")
    if max_clean_notes is not None and len(clean_indices) > max_clean_notes:
        if max_clean_notes < 1:
            raise MetricUnavailable("the number of clean notes to apply descriptors to is 0")
        clean_indices = clean_indices[np.linspace(0, len(clean_indices) - 1, max_clean_notes).round().astype(int)]
    return clean_indices


def transfer_trials(codes, descriptors, magnitudes, clean_indices, magnitude: float, classes):
    """Every descriptor among `classes` applied to every clean note of `clean_indices` at `magnitude`.

    Returns (intended descriptor per trial, shifted codes (trials, latent), clean note index per
    trial), descriptor by descriptor. The direction is `descriptor_control`'s: mean code at the
    magnitude minus mean clean code, interpolated between the magnitudes the data has.
    """
    from semantic_timbre.latent.directions import descriptor_directions, interpolate_direction

    directions = descriptor_directions(codes, descriptors, magnitudes)
    intended = np.array([str(name) for name in classes for _ in clean_indices])
    shifted = np.stack([codes[index] + interpolate_direction(directions[str(name)], magnitude)
                        for name in classes for index in clean_indices])
    sources = np.array([index for _ in classes for index in clean_indices], dtype=int)
    return intended, shifted, sources


def model_round_trip(vae, batch_size: int = 64):
    """The round trip of `descriptor_transfer_recognition` with a model: decode, re-encode, mu."""

    def round_trip(codes: np.ndarray) -> np.ndarray:
        decoded = vae.decode(np.asarray(codes, dtype=np.float32), batch_size=batch_size)
        mu, _, _ = vae.encode(decoded, batch_size=batch_size)
        return mu

    return round_trip


def _recognised(round_trip, classifier, codes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Put codes through the round trip and classify them: True where the label is recognised."""
    recoded = np.asarray(round_trip(codes), dtype=np.float64)
    if recoded.shape != codes.shape:
        raise ValueError(f"the round trip turned codes of shape {codes.shape} into {recoded.shape}")
    if not np.all(np.isfinite(recoded)):
        raise MetricUnavailable("the decoded and re-encoded codes hold NaN or infinite values")
    return classifier.predict(recoded) == labels
