"""Measuring a trained VAE: reconstruction quality, the latent-space study's metrics, and how
often an independent audio-domain judge (judge.py) recognises the intended descriptor in generated notes.

The metric functions take plain arrays (latent codes and their labels; the transfer metric also a
decode/re-encode function) and return numbers. When the data is too small for a metric, or its
codes are not finite, they raise MetricUnavailable, whose message is the reason; `measure` turns
that into a null value with the reason for the report (as it does a value that is not finite). Nothing here knows
about the model: `run_evaluation` and the report writers glue the pieces together.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np

from semantic_timbre import safe_io
from semantic_timbre.evaluation import sampling
from semantic_timbre.evaluation.sampling import DEFAULT_SAMPLE_SIZE

METRIC_KEYS = (
    "silhouette_descriptor",
    "descriptor_compactness",
    "pitch_conditional_separation",
    "trajectory_linearity",
    "cross_pitch_consistency",
    "classifier_accuracy",
    "spectral_convergence",
    "log_spectral_distance_db",
)

DEFINITIONS = {
    "reconstruction_mse": (
        "Mean squared error between each held-out normalised spectrogram (values in [0, 1]) and "
        "its reconstruction decoded from the mean latent code mu, averaged over notes."),
    "spectral_convergence": (
        "||S - |STFT(y)||| / ||S||, where S is the original note's magnitude spectrogram "
        "(de-normalised with its own min/max) and y is the reconstruction inverted to audio with "
        "the default Griffin-Lim inversion; averaged over the inverted held-out notes (lower is better)."),
    "log_spectral_distance_db": (
        "Root mean square over frequency of the dB difference between the de-normalised "
        "reconstruction and the original spectrogram, averaged over frames and held-out notes "
        "(lower is better)."),
    "silhouette_descriptor": (
        "scikit-learn silhouette score (Euclidean) of the latent codes mu of the non-clean notes "
        "labelled by descriptor; from -1 to 1, higher means descriptors form separate clusters."),
    "descriptor_compactness": (
        "Mean distance of a descriptor's non-clean codes to their descriptor centroid, averaged over "
        "the descriptors with at least two notes, divided by the mean distance between descriptor "
        "centroids; lower is more compact."),
    "pitch_conditional_separation": (
        "The silhouette score by descriptor computed separately among the non-clean notes of each "
        "pitch, averaged over the pitches where it is defined; higher means descriptors separate "
        "even when pitch is held fixed."),
    "trajectory_linearity": (
        "For each descriptor and pitch, the codes ordered by magnitude from the clean note (0) up "
        "to the largest magnitude: straight-line distance from first to last point divided by the "
        "length of the path through all of them (1 = a straight line), averaged over trajectories "
        "of at least three points that do not all coincide."),
    "cross_pitch_consistency": (
        "For each descriptor, the direction (code at its largest magnitude minus the clean code of "
        "the same pitch) at every pitch; the mean cosine similarity over all pairs of pitches, "
        "averaged over descriptors (1 = the same direction at every pitch)."),
    "classifier_accuracy": (
        "Accuracy of a logistic-regression classifier on standardised codes mu of the non-clean "
        "notes predicting their descriptor, from stratified k-fold cross-validation "
        "(k = min(5, smallest class size)); compare with the chance level beside it."),
    "descriptor_transfer_recognition": (
        "Each descriptor's direction (mean code at the magnitude minus mean clean code) is added "
        "to the code of clean notes; the results are decoded, re-encoded (mu) and classified by "
        "a classifier trained on the real non-clean notes: the fraction recognised as the "
        "intended descriptor; compare with the chance level, and with the rate for real effected "
        "notes of the same pitches put through the same decode/re-encode round trip, beside it."),
    "audio_descriptor_recognition": (
        "An independent audio-domain judge (standardised logistic regression on spectral, envelope and "
        "modulation features of the real notes' de-normalised dB spectrograms, trained on the processed "
        "non-clean notes, never on latent codes; clean notes are not a class) labels generated notes: "
        "(a) the reconstructions (decoded from mu) of the held-out non-clean notes, each judged by the "
        "cross-validation fold's judge that never saw the original note, and (b) each descriptor's "
        "direction at the transfer magnitude added to clean notes' codes and decoded. The value is the "
        "fraction of all these generated notes labelled with the intended descriptor; each part's rate, "
        "the judge's cross-validated accuracy on real notes and the chance level are beside it. The "
        "decoded spectrograms are judged directly, de-normalised with their source note's min/max (not "
        "re-analysed after Griffin-Lim inversion)."),
    "frame_flicker_db": (
        "Even/odd frame alternation of the frame-mean dB level (the level less the mean of its two "
        "neighbours, signed by the frame's parity, averaged over the frames after the first 50 ms, "
        "absolute): the checkerboard a stride-2 transposed convolution leaves along time, heard as "
        "roughness; of the held-out reconstructions, with the original notes' figure beside it."),
    "loud_bin_error_db": (
        "Mean signed dB error (reconstruction less original) of the bins within 20 dB of each "
        "held-out note's maximum (its harmonics), averaged over notes; the mean absolute error, "
        "their share of the bins and the same error of the floor (more than 60 dB below the maximum) "
        "beside it."),
    "onset_log_spectral_distance_db": (
        "Log-spectral distance of the held-out reconstructions over the frames of the first 50 ms "
        "(the onset); the sustain's (the remaining frames) beside it."),
    "nearest_real_identity": (
        "A judge-free check: for each reconstructed held-out non-clean note, the real note of the "
        "same pitch nearest to it in log-spectral distance (levels relative to each note's maximum; "
        "the note itself excluded; clean notes count as the descriptor 'clean'): the fraction whose "
        "nearest real note has the reconstructed note's descriptor."),
    "judge_robustness": (
        "The audio judge on real held-out non-clean notes damaged by descriptor-agnostic damage "
        "(additive Gaussian noise; Gaussian blur) to the model's own log-spectral distance, each judged "
        "by the fold model that never saw the note: the lower of the two rates, each beside it. A judge "
        "that cannot hear a descriptor through damage of the model's size cannot tell an artefact "
        "from a lost descriptor."),
}

#: At most this many held-out reconstructions enter the judge-free identity check and the judge's
#: robustness check (both keep spectrograms in memory), and at most this many real notes are the
#: identity check's candidates (a seeded random choice of the notes of those pitches).
MAX_IDENTITY_NOTES = 400
MAX_IDENTITY_CANDIDATES = 3000
MAX_ROBUSTNESS_NOTES = 200


NOT_FINITE = "the metric is not a finite number on this data"
NOT_FINITE_CODES = "the latent codes hold NaN or infinite values (the model's encoder output is not finite)"


class MetricUnavailable(ValueError):
    """The data is too small (or of the wrong shape, or not finite) for a metric; the message says why.

    `details` (optional) are kept in the report beside the null value (what was measured all the same).
    """

    def __init__(self, reason: str, details: dict | None = None):
        super().__init__(reason)
        self.details = dict(details or {})


@dataclass
class MetricResult:
    """One entry of the report: a value, or None with the reason, plus details for the report."""

    value: float | None
    reason: str | None = None
    details: dict = field(default_factory=dict)

    def as_dict(self, definition: str | None = None) -> dict:
        value, reason = _plain(self.value), self.reason
        if value is None and not reason:
            reason = NOT_FINITE  # a NaN or infinite value given directly: null, never without a reason
        entry = {"value": value, "reason": reason}
        if definition is not None:
            entry["definition"] = definition
        entry.update({key: _plain(value) for key, value in self.details.items()})
        return entry


def measure(function, *args, **kwargs) -> MetricResult:
    """Call a metric function; a MetricUnavailable becomes a null value with its reason.

    A metric may return a number, or a (number, details dict) pair.
    """
    try:
        outcome = function(*args, **kwargs)
    except MetricUnavailable as error:
        return MetricResult(None, str(error), error.details)
    if isinstance(outcome, tuple):
        value, details = outcome
    else:
        value, details = outcome, {}
    if value is None or not math.isfinite(float(value)):
        return MetricResult(None, NOT_FINITE, details)
    return MetricResult(float(value), None, details)


def _plain(value):
    """Turn numpy scalars and arrays into JSON-ready Python values."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ---------------------------------------------------------------------------------------------
# Reconstruction quality (plain spectrogram arrays)


def reconstruction_mse(originals: np.ndarray, reconstructions: np.ndarray) -> float:
    """Mean squared error between normalised spectrograms, averaged over notes.

    Parameters
    ----------
    originals, reconstructions : np.ndarray, shape (N, 512, 64) or (N, 512, 64, 1)
    """
    originals = _squeeze_channel(originals)
    reconstructions = _squeeze_channel(reconstructions)
    if originals.shape != reconstructions.shape or originals.size == 0:
        raise MetricUnavailable("no held-out notes to measure reconstruction on")
    return float(np.mean((originals - reconstructions) ** 2))


def log_spectral_distance_db(original_db: np.ndarray, reconstruction_db: np.ndarray) -> float:
    """Log-spectral distance in dB: RMS over frequency of the dB difference, averaged over frames.

    Parameters
    ----------
    original_db, reconstruction_db : np.ndarray, shape (..., frequency, frames)
        dB spectrograms (already de-normalised); leading axes (notes) are averaged too.
    """
    original_db = np.asarray(original_db, dtype=np.float64)
    reconstruction_db = np.asarray(reconstruction_db, dtype=np.float64)
    if original_db.shape != reconstruction_db.shape or original_db.size == 0:
        raise MetricUnavailable("no held-out notes to measure reconstruction on")
    per_frame = np.sqrt(np.mean((original_db - reconstruction_db) ** 2, axis=-2))
    return float(np.mean(per_frame))


def _squeeze_channel(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array, dtype=np.float64)
    return array[..., 0] if array.ndim == 4 else array


# ---------------------------------------------------------------------------------------------
# Latent-space metrics (plain arrays: codes (N, latent) and one label per code)


def silhouette_descriptor(codes: np.ndarray, descriptors) -> float:
    """Silhouette score of latent codes labelled by descriptor (pass the non-clean notes only).

    Raises
    ------
    MetricUnavailable
        With fewer than two descriptors, or no descriptor with two notes.
    """
    from sklearn.metrics import silhouette_score

    codes, descriptors = _as_codes(codes), np.asarray(descriptors)
    labels = np.unique(descriptors)
    if len(labels) < 2:
        raise MetricUnavailable(f"needs at least two descriptors, the data has {len(labels)}")
    if not len(labels) < len(codes):
        raise MetricUnavailable("needs more notes than descriptors (some descriptor with two notes)")
    return float(silhouette_score(codes, descriptors, metric="euclidean"))


def descriptor_compactness(codes: np.ndarray, descriptors) -> float:
    """Mean distance to the own descriptor centroid over the mean distance between centroids.

    Lower is more compact. Pass the non-clean notes only. The spread is averaged over the
    descriptors with at least two notes only: a single note is its own centroid, so its distance
    0 says nothing about compactness. Every descriptor's centroid counts in the separation.

    Raises
    ------
    MetricUnavailable
        With fewer than two descriptors, when no descriptor has two notes (the spread is 0 by
        construction), or when every centroid coincides.
    """
    codes, descriptors = _as_codes(codes), np.asarray(descriptors)
    labels, counts = np.unique(descriptors, return_counts=True)
    if len(labels) < 2:
        raise MetricUnavailable(f"needs at least two descriptors, the data has {len(labels)}")
    if counts.max() < 2:
        raise MetricUnavailable("every descriptor has a single note, so the distance to its centroid is 0 "
                                "by construction; needs a descriptor with two notes")
    centroids = np.stack([codes[descriptors == label].mean(axis=0) for label in labels])
    spread = np.mean([np.linalg.norm(codes[descriptors == label] - centroid, axis=1).mean()
                      for label, centroid, count in zip(labels, centroids, counts) if count >= 2])
    separation = np.mean([np.linalg.norm(a - b) for a, b in combinations(centroids, 2)])
    if separation == 0:
        raise MetricUnavailable("every descriptor centroid is the same point")
    return float(spread / separation)


def pitch_conditional_separation(codes: np.ndarray, descriptors, pitches) -> tuple[float, dict]:
    """Silhouette by descriptor within each pitch, averaged over the pitches where it is defined.

    Returns
    -------
    value : float
    details : dict with 'pitches_used' (how many pitches were averaged)

    Raises
    ------
    MetricUnavailable
        When no pitch holds at least two descriptors and more notes than descriptors.
    """
    from sklearn.metrics import silhouette_score

    codes, descriptors, pitches = _as_codes(codes), np.asarray(descriptors), np.asarray(pitches)
    scores = []
    for pitch in np.unique(pitches):
        chosen = pitches == pitch
        labels = np.unique(descriptors[chosen])
        if 2 <= len(labels) < chosen.sum():
            scores.append(silhouette_score(codes[chosen], descriptors[chosen], metric="euclidean"))
    if not scores:
        raise MetricUnavailable("no pitch has at least two descriptors and more notes than descriptors")
    return float(np.mean(scores)), {"pitches_used": len(scores)}


def trajectory_linearity(codes: np.ndarray, descriptors, magnitudes, pitches) -> tuple[float, dict]:
    """Straightness of each descriptor's path through magnitudes, averaged over descriptors x pitches.

    A trajectory is, for one descriptor at one pitch, the mean code at each magnitude in increasing
    order, starting with the clean note (magnitude 0, whatever its descriptor label) when the data
    has one at that pitch. Its linearity is the end-to-end distance over the path length (1 for a
    straight line, towards 0 for a path that doubles back).

    Returns
    -------
    value : float
    details : dict with 'per_descriptor' {descriptor: mean linearity} and 'trajectories'

    Raises
    ------
    MetricUnavailable
        When no descriptor has at least three magnitudes (clean included) at one pitch, or every
        such path has length 0 (all its points coincide: its straightness is undefined).
    """
    codes = _as_codes(codes)
    descriptors, magnitudes, pitches = np.asarray(descriptors), np.asarray(magnitudes), np.asarray(pitches)
    per_descriptor: dict[str, list[float]] = {}
    long_enough = 0
    for descriptor, pitch, path in _trajectories(codes, descriptors, magnitudes, pitches):
        if len(path) < 3:
            continue
        long_enough += 1
        length = np.sum(np.linalg.norm(np.diff(path, axis=0), axis=1))
        if length == 0:
            continue  # every point is the same code: neither straight nor bent
        per_descriptor.setdefault(str(descriptor), []).append(float(np.linalg.norm(path[-1] - path[0]) / length))
    if not long_enough:
        raise MetricUnavailable("no descriptor has three or more magnitudes (clean included) at one pitch")
    if not per_descriptor:
        raise MetricUnavailable("every trajectory of three or more magnitudes has all its codes at one point")
    values = [value for scores in per_descriptor.values() for value in scores]
    return float(np.mean(values)), {
        "per_descriptor": {name: float(np.mean(scores)) for name, scores in sorted(per_descriptor.items())},
        "trajectories": len(values),
    }


def cross_pitch_consistency(codes: np.ndarray, descriptors, magnitudes, pitches) -> tuple[float, dict]:
    """Mean pairwise cosine similarity across pitches of each descriptor's direction, averaged.

    A descriptor's direction at a pitch is its mean code at the largest magnitude the data has
    for it minus the clean code (magnitude 0) of the same pitch.

    Returns
    -------
    value : float
    details : dict with 'per_descriptor' {descriptor: mean cosine similarity}

    Raises
    ------
    MetricUnavailable
        When no descriptor has a direction at two or more pitches.
    """
    codes = _as_codes(codes)
    descriptors, magnitudes, pitches = np.asarray(descriptors), np.asarray(magnitudes), np.asarray(pitches)
    per_descriptor = {}
    for descriptor in np.unique(descriptors[magnitudes > 0]):
        directions = []
        for pitch in np.unique(pitches):
            clean = (pitches == pitch) & (magnitudes == 0)
            mine = (pitches == pitch) & (descriptors == descriptor) & (magnitudes > 0)
            if not clean.any() or not mine.any():
                continue
            top = magnitudes[mine].max()
            direction = codes[mine & (magnitudes == top)].mean(axis=0) - codes[clean].mean(axis=0)
            norm = np.linalg.norm(direction)
            if norm > 0:
                directions.append(direction / norm)
        if len(directions) >= 2:
            per_descriptor[str(descriptor)] = float(np.mean([a @ b for a, b in combinations(directions, 2)]))
    if not per_descriptor:
        raise MetricUnavailable("no descriptor has a direction (clean and effected note) at two or more pitches")
    return float(np.mean(list(per_descriptor.values()))), {"per_descriptor": per_descriptor}


def _trajectories(codes, descriptors, magnitudes, pitches):
    """Yield (descriptor, pitch, path) with path the mean codes ordered by magnitude, clean first."""
    for descriptor in np.unique(descriptors[magnitudes > 0]):
        for pitch in np.unique(pitches):
            points = []
            clean = (pitches == pitch) & (magnitudes == 0)
            if clean.any():
                points.append(codes[clean].mean(axis=0))
            mine = (pitches == pitch) & (descriptors == descriptor) & (magnitudes > 0)
            for magnitude in np.unique(magnitudes[mine]):
                points.append(codes[mine & (magnitudes == magnitude)].mean(axis=0))
            if points:
                yield descriptor, pitch, np.stack(points)


def _as_codes(codes) -> np.ndarray:
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2:
        raise ValueError(f"latent codes must be a (notes, dimensions) array, got shape {codes.shape}")
    if not np.all(np.isfinite(codes)):
        raise MetricUnavailable(NOT_FINITE_CODES)
    return codes


# ---------------------------------------------------------------------------------------------
# Descriptor classifier


def descriptor_classifier(seed: int = 0):
    """The descriptor classifier used throughout: logistic regression on standardised codes."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))


def classifier_accuracy(codes: np.ndarray, descriptors, seed: int = 0, max_folds: int = 5) -> tuple[float, dict]:
    """Stratified cross-validated accuracy of `descriptor_classifier` predicting descriptor from codes.

    Pass the non-clean notes only. The number of folds is min(max_folds, smallest class size).

    Returns
    -------
    accuracy : float
        Fraction of notes whose out-of-fold prediction is their descriptor.
    details : dict
        'chance_level' (1 / number of descriptors), 'majority_rate', 'folds', 'classes' and
        'confusion_matrix' (rows: true descriptor, columns: predicted, in 'classes' order).

    Raises
    ------
    MetricUnavailable
        With fewer than two descriptors or a descriptor with fewer than two notes.
    """
    from sklearn.metrics import confusion_matrix
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    codes, descriptors = _as_codes(codes), np.asarray(descriptors)
    classes, counts = np.unique(descriptors, return_counts=True)
    if len(classes) < 2:
        raise MetricUnavailable(f"needs at least two descriptors, the data has {len(classes)}")
    folds = int(min(max_folds, counts.min()))
    if folds < 2:
        smallest = classes[counts.argmin()]
        raise MetricUnavailable(f"cross-validation needs two notes of every descriptor; {smallest} has "
                                f"{counts.min()}")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    predicted = cross_val_predict(descriptor_classifier(seed), codes, descriptors, cv=splitter)
    matrix = confusion_matrix(descriptors, predicted, labels=classes)
    return float(np.mean(predicted == descriptors)), {
        "chance_level": 1.0 / len(classes),
        "majority_rate": float(counts.max() / counts.sum()),
        "folds": folds,
        "classes": [str(name) for name in classes],
        "confusion_matrix": matrix.tolist(),
    }


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


# ---------------------------------------------------------------------------------------------
# Audio-domain descriptor recognition: generated notes labelled by the independent judge


@dataclass
class JudgedNotes:
    """Generated notes for the judge: each one's intended descriptor and judge features, and for
    reconstructions the name of the real note it reconstructs (judged by a judge that never saw it)."""

    intended: np.ndarray
    features: np.ndarray
    names: np.ndarray | None = None


def judge_details(judge) -> dict:
    """The judge's own figures on real notes, for the report (flat keys)."""
    summary = judge.summary()
    return {
        "chance_level": summary["chance_level"],
        "judge_accuracy": summary["cross_validated_accuracy"],
        "judge_accuracy_reason": summary["cross_validation_reason"],
        "judge_folds": summary["folds"],
        "judge_notes": summary["notes"],
        "judge_majority_rate": summary["majority_rate"],
        "judge_accuracy_by_magnitude": summary["accuracy_by_magnitude"],
        "classes": summary["classes"],
        "clean_notes_are_a_class": False,
        "judge_features": summary["features"],
        "judge_classifier": summary["classifier"],
        "judge_confusion_matrix": judge.confusion_matrix(),
        "judged": "decoded spectrograms de-normalised with their source note's min/max (no Griffin-Lim)",
        "descriptor_judge": judge.status,
    }


def audio_descriptor_recognition(judge, reconstructions, applied, magnitude: float | None = None) -> tuple[float, dict]:
    """How often the audio-domain judge labels generated notes with their intended descriptor.

    Parameters
    ----------
    judge : judge.DescriptorJudge, or a str saying why there is none
    reconstructions : JudgedNotes (with `names`) of reconstructed held-out non-clean notes, or a
        str saying why there are none; each is judged by the cross-validation fold's model that
        never saw the real note of that name
    applied : JudgedNotes of decoded clean notes with a descriptor applied, or a str saying why
        there are none; judged by the model fitted on every real note (clean notes are not among them)
    magnitude : the magnitude the descriptors were applied at (for the real-note reference)

    Returns
    -------
    rate : float
        Fraction of all the generated notes (both parts) labelled with the intended descriptor.
    details : dict
        The judge's figures on real notes (`judge_details`), and per part: 'reconstructions'
        (rate), 'reconstructions_notes', 'judge_on_the_originals' (the judge's cross-validated
        accuracy on those same real notes), or 'reconstructions_reason'; 'applied_descriptors',
        'applied_trials', 'applied_magnitude', 'judge_on_real_notes_at_magnitude',
        'per_descriptor', or 'applied_descriptors_reason'; 'generated_confusion_matrix'.

    Raises
    ------
    MetricUnavailable
        Without a judge, or when neither part has a generated note (the judge's details are kept).
    """
    from semantic_timbre.judge import JudgeUnavailable

    if judge is None or isinstance(judge, str):
        raise MetricUnavailable(judge or "no audio-domain descriptor judge was given")
    details = judge_details(judge)
    classes = judge.classes
    intended_all, predicted_all, reasons = [], [], []

    if isinstance(reconstructions, JudgedNotes) and not len(reconstructions.intended):
        reconstructions = "no held-out non-clean note to reconstruct"
    predicted = None
    if isinstance(reconstructions, JudgedNotes):
        try:
            predicted = judge.predict_unseen(reconstructions.names, reconstructions.features)
        except JudgeUnavailable as error:
            reconstructions = str(error)
    if predicted is not None:
        hits = predicted == reconstructions.intended
        details.update({
            "reconstructions": float(hits.mean()), "reconstructions_notes": int(len(hits)),
            "judge_on_the_originals": judge.out_of_fold_accuracy(np.isin(judge.names, reconstructions.names))})
        intended_all.append(reconstructions.intended)
        predicted_all.append(predicted)
    else:
        details.update({"reconstructions": None, "reconstructions_reason": str(reconstructions)})
        reasons.append(f"reconstructions: {reconstructions}")

    if isinstance(applied, JudgedNotes) and not len(applied.intended):
        applied = "no descriptor was applied to a clean note"
    if isinstance(applied, JudgedNotes):
        predicted = judge.predict_features(applied.features)
        hits = predicted == applied.intended
        at_magnitude = None
        if magnitude is not None and np.any(judge.magnitudes == magnitude):
            at_magnitude = judge.out_of_fold_accuracy(judge.magnitudes == magnitude)
        details.update({
            "applied_descriptors": float(hits.mean()), "applied_trials": int(len(hits)),
            "applied_magnitude": magnitude, "judge_on_real_notes_at_magnitude": at_magnitude,
            "per_descriptor": {str(name): float(hits[applied.intended == name].mean())
                               for name in classes if np.any(applied.intended == name)}})
        intended_all.append(applied.intended)
        predicted_all.append(predicted)
    else:
        details.update({"applied_descriptors": None, "applied_descriptors_reason": str(applied)})
        reasons.append(f"descriptors applied to clean notes: {applied}")

    if not intended_all:
        raise MetricUnavailable("; ".join(reasons), details)
    intended_all, predicted_all = np.concatenate(intended_all), np.concatenate(predicted_all)
    matrix = np.zeros((len(classes), len(classes)), dtype=int)
    known = np.isin(intended_all, classes)
    np.add.at(matrix, (np.searchsorted(classes, intended_all[known]), np.searchsorted(classes, predicted_all[known])), 1)
    details["generated_notes"] = int(len(intended_all))
    details["generated_confusion_matrix"] = matrix.tolist()
    return float(np.mean(intended_all == predicted_all)), details


# ---------------------------------------------------------------------------------------------
# Held-out split


def held_out_split(names, fraction: float = 0.2, seed: int = 0) -> list[str]:
    """Return a seeded random `fraction` of `names` (at least one when fraction > 0), sorted.

    The choice depends only on the sorted names, the fraction and the seed.
    """
    if not 0 <= fraction <= 1:
        raise ValueError(f"the held-out fraction must lie in [0, 1], got {fraction}")
    names = sorted(names)
    if fraction == 0 or not names:
        return []
    count = min(len(names), max(1, round(fraction * len(names))))
    chosen = np.random.default_rng(seed).choice(len(names), size=count, replace=False)
    return sorted(names[index] for index in chosen)


# ---------------------------------------------------------------------------------------------
# Report writing


REPORT_ORDER = ("reconstruction_mse", "spectral_convergence", "log_spectral_distance_db",
                "onset_log_spectral_distance_db", "loud_bin_error_db", "frame_flicker_db", "nearest_real_identity",
                "silhouette_descriptor", "descriptor_compactness", "pitch_conditional_separation",
                "trajectory_linearity", "cross_pitch_consistency", "classifier_accuracy",
                "descriptor_transfer_recognition", "audio_descriptor_recognition", "judge_robustness")


def report_dict(results: dict[str, MetricResult], run: dict) -> dict:
    """The report.json content: each metric a top-level key {value, reason, definition, ...}."""
    report = {}
    for key in REPORT_ORDER:
        if key in results:
            report[key] = results[key].as_dict(DEFINITIONS.get(key))
    for key, result in results.items():
        if key not in report:
            report[key] = result.as_dict(DEFINITIONS.get(key))
    report["run"] = _plain(run)
    return report


def write_report_json(path, report: dict) -> None:
    """Write report.json atomically (NaN never reaches the file: it becomes null)."""
    text = json.dumps(_plain(report), indent=2, allow_nan=False) + "\n"
    safe_io.write_bytes_atomic(path, text.encode("utf-8"))


def report_markdown(report: dict, plots: dict[str, str]) -> str:
    """Render the report as Markdown: a table of values, one sentence per metric, the plots."""
    run = report.get("run", {})
    lines = ["# Evaluation of the timbre generation VAE", ""]
    for label, key in (("Model", "model_dir"), ("Spectrograms", "spectrograms_dir"),
                       ("Notes encoded", "notes"), ("Non-clean notes", "non_clean_notes"),
                       ("Descriptors", "descriptors"), ("Pitches", "pitches")):
        if key in run:
            value = run[key]
            if isinstance(value, list):
                value = ", ".join(map(str, value)) if value else "none"
            lines.append(f"- {label}: {value}")
    if "split" in run:
        lines.append(f"- Held-out split: {run['split']}")
    if "quadratic_metrics" in run:
        lines.append(f"- Silhouette-based metrics (quadratic in the notes) and classifiers: "
                     f"{run['quadratic_metrics']}")
    lines += ["", "| metric | value | note |", "|---|---|---|"]
    for key, entry in report.items():
        if key == "run" or not isinstance(entry, dict):
            continue
        lines.append(f"| `{key}` | {_shown(entry.get('value'))} | {_note(key, entry).replace('|', '/')} |")
    lines += ["", "## Definitions", ""]
    for key, entry in report.items():
        if key != "run" and isinstance(entry, dict) and entry.get("definition"):
            lines.append(f"- `{key}`: {entry['definition']}")
    if plots:
        lines += ["", "## Plots", ""]
        for title, file_name in plots.items():
            lines += [f"![{title}]({file_name})", ""]
    return "\n".join(lines).rstrip() + "\n"


def _shown(value) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) and math.isfinite(value) else "null"


def _figure_or_reason(parts: list, entry: dict, key: str, figure, missing: str) -> None:
    """Append to `parts` the note `figure()` when entry[key] was measured, else, when the entry says
    why it was not (entry[key + "_reason"]), `missing: <why>`."""
    if entry.get(key) is not None:
        parts.append(figure())
    elif entry.get(f"{key}_reason"):
        parts.append(f"{missing}: {entry[f'{key}_reason']}")


def _note(key: str, entry: dict) -> str:
    """The table's note on a metric: why it is null, or what to compare its value with."""
    if not isinstance(entry.get("value"), (int, float)) or not math.isfinite(entry["value"]):
        note = f"not measured: {entry.get('reason') or NOT_FINITE}"
        return f"{note}; {_judge_note(entry)}" if "judge_accuracy" in entry else note
    parts = []
    if entry.get("chance_level") is not None:
        parts.append(f"chance level {_shown(entry['chance_level'])}" + (
            f", majority rate {_shown(entry['majority_rate'])}" if entry.get("majority_rate") is not None else "")
            + (f", {entry['folds']}-fold" if entry.get("folds") else ""))
    _figure_or_reason(parts, entry, "real_notes_round_trip",
                      lambda: f"real effected notes after the same decode/re-encode round trip: "
                              f"{_shown(entry['real_notes_round_trip'])}", "no figure for real effected notes")
    if entry.get("sampled"):
        parts.append(entry["sampling"])
    if key == "frame_flicker_db" and entry.get("originals") is not None:
        parts.append(f"the original notes: {_shown(entry['originals'])} dB")
    if key == "loud_bin_error_db":
        parts.append(f"mean absolute {_shown(entry.get('loud_abs_db'))} dB over {_shown(entry.get('loud_share'))} of "
                     f"the bins; the floor: {_shown(entry.get('floor_bias_db'))} dB over "
                     f"{_shown(entry.get('floor_share'))} of the bins")
    if key == "onset_log_spectral_distance_db":
        parts.append(f"the sustain: {_shown(entry.get('sustain_lsd_db'))} dB")
    if key == "nearest_real_identity":
        parts.append(f"{entry.get('notes')} reconstructions, {entry.get('candidates')} real candidates")
    if key == "judge_robustness":
        parts.append(f"noise: {_shown(entry.get('noise'))}, blur: {_shown(entry.get('blur'))} at "
                     f"{_shown(entry.get('target_lsd_db'))} dB LSD ({entry.get('notes')} notes); the judge on the "
                     f"undamaged notes: {_shown(entry.get('undamaged'))}")
    if key == "spectral_convergence" and entry.get("original_inversion") is not None:
        parts.append(f"inverting the original spectrogram itself: {_shown(entry['original_inversion'])}")
    if "judge_accuracy" in entry:
        parts.append(_judge_note(entry))
        _figure_or_reason(parts, entry, "reconstructions",
                          lambda: f"reconstructions of held-out notes: {_shown(entry['reconstructions'])} "
                                  f"({entry.get('reconstructions_notes')} notes; the judge on those real notes: "
                                  f"{_shown(entry.get('judge_on_the_originals'))})", "no reconstruction judged")
        _figure_or_reason(parts, entry, "applied_descriptors",
                          lambda: f"descriptors applied to clean notes at {_shown(entry.get('applied_magnitude'))}: "
                                  f"{_shown(entry['applied_descriptors'])} ({entry.get('applied_trials')} trials; the "
                                  f"judge on real notes of that magnitude: "
                                  f"{_shown(entry.get('judge_on_real_notes_at_magnitude'))})",
                          "no applied descriptor judged")
    return "; ".join(parts)


def _judge_note(entry: dict) -> str:
    """The audio judge's own accuracy on real notes, for the table's note."""
    if entry.get("judge_accuracy") is not None:
        return (f"the judge's cross-validated accuracy on real notes: {_shown(entry['judge_accuracy'])} "
                f"({entry.get('judge_folds')}-fold, {entry.get('judge_notes')} notes)")
    return f"the judge has no cross-validated accuracy: {entry.get('judge_accuracy_reason')}"


def write_report_markdown(path, report: dict, plots: dict[str, str]) -> None:
    safe_io.write_bytes_atomic(path, report_markdown(report, plots).encode("utf-8"))


def plot_confusion_matrix(path, matrix, classes, title: str = "Descriptor classifier (cross-validated)") -> None:
    """Save a confusion-matrix heat map (rows true, columns predicted) as PNG, atomically."""
    plot_confusion_matrices(path, [(matrix, title)], classes)


def plot_confusion_matrices(path, panels, classes, row_label: str = "true descriptor",
                            column_label: str = "predicted descriptor") -> None:
    """Save confusion-matrix heat maps side by side, one per (matrix, title) of `panels`, as PNG, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(4.0, 0.45 * len(classes) + 2)
    figure, all_axes = plt.subplots(1, len(panels), figsize=((size + 1) * len(panels), size), squeeze=False)
    for axes, (matrix, title) in zip(all_axes[0], panels):
        matrix = np.asarray(matrix, dtype=float)
        image = axes.imshow(matrix, cmap="Blues")
        axes.set_xticks(range(len(classes)), classes, rotation=90)
        axes.set_yticks(range(len(classes)), classes)
        axes.set_xlabel(column_label)
        axes.set_ylabel(row_label)
        axes.set_title(title, fontsize=10)
        for (row, column), count in np.ndenumerate(matrix):
            if count:
                axes.text(column, row, f"{count:g}", ha="center", va="center", fontsize=7,
                          color="white" if count > matrix.max() / 2 else "black")
        figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    safe_io.save_figure_atomic(figure, path, close=True, dpi=110, format="png")


def plot_per_descriptor(path, series: dict[str, dict[str, float]], title: str = "Per-descriptor metrics") -> None:
    """Save grouped bars: one group per descriptor, one bar per named series, as PNG, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    descriptors = sorted({name for values in series.values() for name in values})
    figure, axes = plt.subplots(figsize=(max(6.0, 0.5 * len(descriptors) * max(1, len(series)) + 2), 4))
    width = 0.8 / max(1, len(series))
    for index, (label, values) in enumerate(series.items()):
        positions = np.arange(len(descriptors)) + (index - (len(series) - 1) / 2) * width
        axes.bar(positions, [values.get(name, np.nan) for name in descriptors], width, label=label)
    axes.set_xticks(range(len(descriptors)), descriptors, rotation=60, ha="right")
    axes.axhline(0, color="black", linewidth=0.5)
    axes.set_title(title)
    axes.legend(fontsize=8)
    figure.tight_layout()
    safe_io.save_figure_atomic(figure, path, close=True, dpi=110, format="png")


# ---------------------------------------------------------------------------------------------
# The whole evaluation of a model (glue: the model, the files and the metrics above)


def evaluate_model(vae, notes, spectrograms_dir, min_max: dict, held_out_names, *, seed: int = 0,
                   griffin_lim_iterations: int = 32, max_inverted_notes: int = 50,
                   transfer_magnitude: float = 100, transfer_clean_notes: int | None = 12,
                   batch_size: int = 64, progress: bool = True,
                   no_held_out_reason: str | None = None, judge=None,
                   conditions=None, sample_size: int | None = DEFAULT_SAMPLE_SIZE
                   ) -> tuple[dict[str, MetricResult], dict]:
    """Measure a model on processed notes; returns ({key: MetricResult}, extras for the plots).

    Parameters
    ----------
    vae : a trained VAE (encode/decode as in semantic_timbre.network.vae)
    notes : list of layout.Note, the notes to encode (their spectrograms sit in `spectrograms_dir`)
    min_max : the min/max dict of the processed data
    held_out_names : spectrogram names of the notes to measure reconstruction on
    max_inverted_notes : how many held-out notes are inverted with Griffin-Lim for spectral convergence
    transfer_clean_notes : how many clean notes receive each descriptor for the recognition figure
    no_held_out_reason : the reason the reconstruction metrics give when no held-out note is among `notes`
    judge : the audio-domain descriptor judge (judge.load_or_train_judge) for
        `audio_descriptor_recognition`, or a str saying why there is none
    conditions : a conditioned model's condition of each note (N, size): notes are encoded and
        decoded with their own; descriptors are generated from a description (the clean note's
        code decoded with the descriptor's condition, `Conditioning.target`) instead of moved
        along a latent direction
    sample_size : the silhouette-based metrics (quadratic in the notes), the cross-validated
        classifier and the transfer's classifier (and its directions) are computed on a stratified
        sample of this many non-clean notes (sampling.py) when there are more; None: all
    """
    import librosa
    from tqdm import tqdm

    from semantic_timbre.data import processed_data, spectrogram
    from semantic_timbre.evaluation import quality
    from semantic_timbre.judge import spectrogram_features as judge_features
    from semantic_timbre.latent import encode_notes

    codes = encode_notes(vae, notes, spectrograms_dir=str(spectrograms_dir), batch_size=batch_size,
                         use_mean=True, seed=seed, progress=progress, conditions=conditions)
    descriptors = np.array([note.descriptor for note in notes])
    magnitudes = np.array([note.magnitude for note in notes])
    pitches = np.array([note.pitch for note in notes])
    effected = magnitudes > 0
    results: dict[str, MetricResult] = {}

    # Reconstruction on the held-out notes, decoded from mu, in batches.
    index_of = {note.spectrogram_name: index for index, note in enumerate(notes)}
    held_out = [index_of[name] for name in held_out_names if name in index_of]
    squared_errors, distances, convergences, floor = [], [], [], []
    flicker, levels, segments, identity_rows, identity_db, undamaged = [], [], [], [], [], []
    not_finite = 0
    judging = judge is not None and not isinstance(judge, str)
    judged_names, judged_features = [], []  # held-out non-clean reconstructions, for the audio judge
    for start in tqdm(range(0, len(held_out), batch_size), desc="reconstructing", unit="batch",
                      disable=not progress or not held_out):
        batch = held_out[start:start + batch_size]
        originals = np.stack([processed_data.load_spectrogram(Path(spectrograms_dir) / notes[i].spectrogram_name)
                              for i in batch])
        reconstructions = np.asarray(vae.decode(codes[batch].astype(np.float32), batch_size=batch_size,
                                                conditions=None if conditions is None else conditions[batch]))[..., 0]
        for original, reconstruction, index in zip(originals, reconstructions, batch):
            if not np.all(np.isfinite(reconstruction)):
                not_finite += 1  # nothing to invert or compare: every reconstruction metric is null
                continue
            low, high = processed_data.min_max_of(min_max, notes[index])
            squared_errors.append(np.mean((original.astype(np.float64) - reconstruction) ** 2))
            original_db = spectrogram.denormalise(original.astype(np.float64), low, high)
            reconstruction_db = spectrogram.denormalise(reconstruction.astype(np.float64), low, high)
            distances.append(log_spectral_distance_db(original_db, reconstruction_db))
            if original_db.shape[-1] >= quality.ONSET_FRAMES + 2:  # what a listener notices (quality.py)
                flicker.append((quality.frame_flicker_db(original_db)[0], quality.frame_flicker_db(reconstruction_db)[0]))
                levels.append(quality.level_error_db(original_db, reconstruction_db))
                segments.append(quality.segment_lsd_db(original_db, reconstruction_db))
            if not notes[index].is_clean and len(identity_rows) < MAX_IDENTITY_NOTES:
                identity_rows.append(index)
                identity_db.append(quality.relative_db(reconstruction, low, high)[0].astype(np.float32))
            if (judging and not notes[index].is_clean and notes[index].descriptor in judge.classes
                    and len(undamaged) < MAX_ROBUSTNESS_NOTES):
                undamaged.append((original, low, high, notes[index].spectrogram_name, notes[index].descriptor))
            if judging and not notes[index].is_clean and notes[index].descriptor in judge.classes:
                judged_names.append(notes[index].spectrogram_name)
                judged_features.append(judge_features(reconstruction, low, high)[0])
            if len(convergences) < max_inverted_notes:
                target = librosa.db_to_amplitude(original_db)
                audio = spectrogram.spectrogram_to_audio(reconstruction, low, high, n_iter=griffin_lim_iterations,
                                                         random_state=seed)
                convergences.append(spectrogram.spectral_convergence(audio, target))
                audio = spectrogram.spectrogram_to_audio(original, low, high, n_iter=griffin_lim_iterations,
                                                         random_state=seed)
                floor.append(spectrogram.spectral_convergence(audio, target))
    reconstruction_keys = ("reconstruction_mse", "spectral_convergence", "log_spectral_distance_db",
                           "onset_log_spectral_distance_db", "loud_bin_error_db", "frame_flicker_db",
                           "nearest_real_identity")
    if not held_out:
        judged_reconstructions = no_held_out_reason or "no held-out notes among the notes encoded"
    elif not_finite:
        judged_reconstructions = f"{not_finite} of the {len(held_out)} held-out reconstructions hold NaN or infinite values"
    elif not judged_names:
        judged_reconstructions = f"none of the {len(held_out)} held-out notes is a non-clean note"
    else:
        judged_reconstructions = JudgedNotes(np.array([notes[index_of[name]].descriptor for name in judged_names]),
                                             np.array(judged_features), np.array(judged_names))
    if not held_out:
        for key in reconstruction_keys:
            results[key] = MetricResult(None, no_held_out_reason or "no held-out notes among the notes encoded")
    elif not_finite:
        for key in reconstruction_keys:
            results[key] = MetricResult(None, f"{not_finite} of the {len(held_out)} held-out reconstructions "
                                              f"hold NaN or infinite values")
    else:
        results["reconstruction_mse"] = measure(_mean, squared_errors, {"notes": len(held_out)})
        results["spectral_convergence"] = measure(_mean, convergences, {
            "notes": len(convergences), "griffin_lim_iterations": griffin_lim_iterations,
            "original_inversion": float(np.mean(floor)) if floor else None}) if convergences else MetricResult(
            None, "no note was inverted (the number of notes to invert is 0)")
        results["log_spectral_distance_db"] = measure(_mean, distances, {"notes": len(held_out)})
        results.update(_listener_metrics(flicker, levels, segments))
        results["nearest_real_identity"] = measure(_nearest_real_identity, notes, identity_rows, identity_db,
                                                   spectrograms_dir, min_max, seed)
    results["judge_robustness"] = measure(
        judge_robustness, judge if judging else (judge or "no audio-domain descriptor judge was given"), undamaged,
        results["log_spectral_distance_db"].value, seed=seed)

    # The latent-space study, on mu of every note (clean notes only where a metric needs them).
    # The silhouettes cost the square of the notes: a stratified sample (by descriptor and pitch) of a large set.
    # The sample depends on the notes and the seed only: the same for every model evaluated on them.
    strata = [f"{descriptor}|{pitch}" for descriptor, pitch in zip(descriptors[effected], pitches[effected])]
    sample = np.flatnonzero(effected)[sampling.stratified_sample(strata, sample_size, seed)]
    sampled = sampling.describe(sample, int(effected.sum()), sample_size, seed, "descriptor and pitch")
    results["silhouette_descriptor"] = measure(silhouette_descriptor, codes[sample], descriptors[sample])
    results["silhouette_descriptor"].details.update(sampled)
    results["descriptor_compactness"] = measure(descriptor_compactness, codes[effected], descriptors[effected])
    results["pitch_conditional_separation"] = measure(pitch_conditional_separation, codes[sample],
                                                      descriptors[sample], pitches[sample])
    results["pitch_conditional_separation"].details.update(sampled)
    results["trajectory_linearity"] = measure(trajectory_linearity, codes, descriptors, magnitudes, pitches)
    results["cross_pitch_consistency"] = measure(cross_pitch_consistency, codes, descriptors, magnitudes, pitches)
    # The classifiers' fits grow with the notes at a high constant (minutes at 17,710): on the sample too.
    results["classifier_accuracy"] = measure(classifier_accuracy, codes[sample], descriptors[sample], seed=seed)
    results["classifier_accuracy"].details.update(sampled)
    # Where a note is played (string and fret): the transfer's reference uses the clean notes' places.
    places = np.array([f"{note.string}-{note.fret}" for note in notes])
    if conditions is None:
        chosen = np.union1d(sample, np.flatnonzero(~effected))  # the sample and every clean note
        results["descriptor_transfer_recognition"] = measure(
            descriptor_transfer_recognition, codes[chosen], descriptors[chosen], magnitudes[chosen], places[chosen],
            model_round_trip(vae, batch_size), magnitude=transfer_magnitude,
            max_clean_notes=transfer_clean_notes, seed=seed)
        results["descriptor_transfer_recognition"].details.update(sampled)
    else:
        results["descriptor_transfer_recognition"] = MetricResult(
            None, "a conditioned model generates a descriptor from its condition, not along a latent direction: "
                  "see audio_descriptor_recognition")
    applied = _applied_for_judge(vae, codes, notes, min_max, judge, transfer_magnitude, transfer_clean_notes,
                                 batch_size) if judging else ""
    results["audio_descriptor_recognition"] = measure(audio_descriptor_recognition, judge, judged_reconstructions,
                                                      applied, magnitude=transfer_magnitude)
    return results, {"codes": codes}


def _listener_metrics(flicker, levels, segments) -> dict[str, MetricResult]:
    """Flicker, loud-bin level error and onset/sustain LSD of the held-out reconstructions
    (per-note figures from quality.py, averaged), or null with the reason."""
    if not flicker:
        reason = "the spectrograms have too few frames for the onset and the flicker"
        return {key: MetricResult(None, reason) for key in
                ("frame_flicker_db", "loud_bin_error_db", "onset_log_spectral_distance_db")}

    def mean(values):
        values = [value for value in values if value is not None]
        return float(np.mean(values)) if values else None

    flicker = np.asarray(flicker, dtype=np.float64)
    segments = np.asarray(segments, dtype=np.float64)
    return {
        "frame_flicker_db": measure(_mean, flicker[:, 1], {"originals": float(flicker[:, 0].mean()),
                                                           "notes": len(flicker)}),
        "loud_bin_error_db": measure(_mean, [level["loud_bias_db"] for level in levels if level["loud_bias_db"] is not None], {
            "loud_abs_db": mean([level["loud_abs_db"] for level in levels]),
            "loud_share": mean([level["loud_share"] for level in levels]),
            "floor_bias_db": mean([level["floor_bias_db"] for level in levels]),
            "floor_share": mean([level["floor_share"] for level in levels]), "notes": len(levels)}),
        "onset_log_spectral_distance_db": measure(_mean, segments[:, 0], {"sustain_lsd_db": float(segments[:, 1].mean()),
                                                                          "notes": len(segments)}),
    }


def _nearest_real_identity(notes, rows, generated_db, spectrograms_dir, min_max, seed) -> tuple[float, dict]:
    """quality.nearest_real_identity for reconstructions of notes[rows], the candidates the real
    notes of their pitches (at most MAX_IDENTITY_CANDIDATES, a seeded random choice)."""
    from semantic_timbre.data import processed_data
    from semantic_timbre.evaluation import quality

    if not rows:
        raise MetricUnavailable("no held-out non-clean note was reconstructed")
    pitches = np.array([note.pitch for note in notes])
    candidates = np.flatnonzero(np.isin(pitches, pitches[rows]))
    if len(candidates) > MAX_IDENTITY_CANDIDATES:
        kept = np.random.default_rng(seed).choice(len(candidates), MAX_IDENTITY_CANDIDATES, replace=False)
        candidates = np.union1d(candidates[kept], rows)  # a reconstruction's own note is never its candidate
    real_db = np.stack([quality.relative_db(processed_data.load_spectrogram(
        Path(spectrograms_dir) / notes[i].spectrogram_name), *processed_data.min_max_of(min_max, notes[i]))[0]
        .astype(np.float32) for i in candidates])
    labels = np.array(["clean" if notes[i].is_clean else notes[i].descriptor for i in candidates])
    position = {int(index): place for place, index in enumerate(candidates)}
    fraction, nearest = quality.nearest_real_identity(
        np.stack(generated_db), [notes[i].descriptor for i in rows], pitches[rows], real_db, labels,
        pitches[candidates], exclude=[position[int(i)] for i in rows])
    if not math.isfinite(fraction):
        raise MetricUnavailable("no reconstructed note has another real note of its pitch")
    found = nearest >= 0
    return fraction, {"notes": int(found.sum()), "candidates": int(len(candidates)),
                      "nearest_is_clean": float(np.mean(labels[nearest[found]] == "clean"))}


def judge_robustness(judge, originals, target_lsd_db, seed: int = 0) -> tuple[float, dict]:
    """The judge on real notes damaged (damage.damage_to_lsd: noise, blur) to `target_lsd_db`.

    Parameters
    ----------
    judge : judge.DescriptorJudge, or a str saying why there is none
    originals : list of (normalised spectrogram, low, high, name, descriptor) of real notes the
        judge was cross-validated on; each is judged by the fold model that never saw it
    target_lsd_db : the log-spectral distance to damage them to (the model's), or None

    Returns
    -------
    (the lower of the two kinds' rates, details: 'noise', 'blur', 'undamaged', 'reached_lsd_db',
    'target_lsd_db', 'notes')
    """
    from semantic_timbre.data import damage
    from semantic_timbre.judge import JudgeUnavailable, spectrogram_features

    if judge is None or isinstance(judge, str):
        raise MetricUnavailable(judge or "no audio-domain descriptor judge was given")
    if judge.accuracy_reason is not None:
        raise MetricUnavailable(f"the judge has no cross-validation folds ({judge.accuracy_reason}), so no judge "
                                f"that has not seen the damaged notes")
    if target_lsd_db is None or not math.isfinite(target_lsd_db):
        raise MetricUnavailable("no log-spectral distance of the model to damage the notes to")
    if not originals:
        raise MetricUnavailable("no held-out non-clean note the judge knows")
    names = [name for _, _, _, name, _ in originals]
    intended = np.array([descriptor for *_, descriptor in originals])

    def rate(spectrograms):
        features = np.concatenate([spectrogram_features(x, low, high) for x, (_, low, high, _, _) in
                                   zip(spectrograms, originals)])
        try:
            return float(np.mean(judge.predict_unseen(names, features) == intended))
        except JudgeUnavailable as error:
            raise MetricUnavailable(str(error)) from None

    details = {"undamaged": rate([x for x, *_ in originals]), "target_lsd_db": float(target_lsd_db),
               "notes": len(originals), "reached_lsd_db": {}}
    for kind in ("noise", "blur"):
        damaged = [damage.damage_to_lsd(x, kind, target_lsd_db, low=low, high=high, random_state=seed + i)
                   for i, (x, low, high, _, _) in enumerate(originals)]
        details[kind] = rate([x for x, _ in damaged])
        details["reached_lsd_db"][kind] = float(np.mean([reached for _, reached in damaged]))
    return min(details["noise"], details["blur"]), details


def _applied_for_judge(vae, codes, notes, min_max, judge, magnitude, max_clean_notes, batch_size):
    """Each descriptor the judge knows applied to clean notes (the trials of the transfer metric),
    decoded and turned into judge features with the clean note's min/max: JudgedNotes, or why not."""
    from semantic_timbre.data import processed_data
    from semantic_timbre.judge import spectrogram_features

    descriptors = np.array([note.descriptor for note in notes])
    magnitudes = np.array([note.magnitude for note in notes])
    if not np.all(np.isfinite(codes)):
        return NOT_FINITE_CODES
    try:
        clean_indices = transfer_clean_indices(magnitudes, max_clean_notes)
    except MetricUnavailable as error:
        return str(error)
    classes = [name for name in np.unique(descriptors[magnitudes > 0]) if name in judge.classes]
    conditioning = getattr(vae, "conditioning", None)
    if conditioning is not None and conditioning.kind != "none":
        classes = [name for name in classes if name in conditioning.trained_descriptors()]
    if not classes:
        return "no non-clean note among the notes encoded, so no descriptor direction to apply"
    if conditioning is None or conditioning.kind == "none":
        intended, shifted, sources = transfer_trials(codes.astype(np.float64), descriptors, magnitudes,
                                                     clean_indices, magnitude, classes)
        targets = None
    else:  # generated from the description: the clean note's own code, the descriptor's condition
        intended = np.array([str(name) for name in classes for _ in clean_indices])
        sources = np.array([index for _ in classes for index in clean_indices], dtype=int)
        shifted = codes[sources].astype(np.float64)
        targets = np.stack([conditioning.target(str(name), magnitude) for name in intended])
    features, not_finite = [], 0
    for start in range(0, len(shifted), batch_size):
        decoded = np.asarray(vae.decode(shifted[start:start + batch_size].astype(np.float32), batch_size=batch_size,
                                        conditions=None if targets is None else targets[start:start + batch_size]
                                        ))[..., 0]
        finite = np.all(np.isfinite(decoded), axis=(1, 2))
        not_finite += int(np.sum(~finite))
        if not_finite:
            continue
        bounds = np.array([processed_data.min_max_of(min_max, notes[index])
                           for index in sources[start:start + batch_size]], dtype=np.float64)
        features.append(spectrogram_features(decoded, bounds[:, 0], bounds[:, 1]))
    if not_finite:
        return f"{not_finite} of the {len(shifted)} decoded notes with a descriptor applied hold NaN or infinite values"
    return JudgedNotes(intended, np.concatenate(features))


def _mean(values, details: dict) -> tuple[float, dict]:
    """The mean of per-note measurements, with details, for `measure` (non-finite: null with a reason)."""
    if not len(values):
        raise MetricUnavailable("no held-out notes to measure reconstruction on")
    return float(np.mean(values)), details


AUDIO_JUDGE_PLOT = "audio_judge_confusion_matrix.png"


def write_evaluation(output_dir, results: dict[str, MetricResult], run: dict) -> dict:
    """Write report.json, report.md and the PNG plots into `output_dir` (each file atomically).

    Returns the report dict written to report.json.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    plots = {}
    classifier = results.get("classifier_accuracy")
    if classifier is not None and classifier.value is not None:
        chance = classifier.details["chance_level"]
        plot_confusion_matrix(output_dir / "confusion_matrix.png", classifier.details["confusion_matrix"],
                              classifier.details["classes"],
                              f"Descriptor classifier: accuracy {classifier.value:.2f} (chance {chance:.2f})")
        plots["Confusion matrix of the descriptor classifier"] = "confusion_matrix.png"
    audio = results.get("audio_descriptor_recognition")
    panels = []
    if audio is not None and audio.details.get("judge_confusion_matrix") is not None:
        panels.append((audio.details["judge_confusion_matrix"],
                       f"Audio judge on real notes ({audio.details['judge_folds']}-fold): "
                       f"accuracy {audio.details['judge_accuracy']:.2f}"))
    if audio is not None and audio.value is not None and audio.details.get("generated_confusion_matrix") is not None:
        panels.append((audio.details["generated_confusion_matrix"],
                       f"Audio judge on generated notes: {audio.value:.2f} "
                       f"(chance {audio.details['chance_level']:.2f})"))
    if panels:
        plot_confusion_matrices(output_dir / AUDIO_JUDGE_PLOT, panels, audio.details["classes"],
                                row_label="true (real) or intended (generated) descriptor",
                                column_label="descriptor the judge hears")
        plots["Confusion matrices of the audio-domain descriptor judge"] = AUDIO_JUDGE_PLOT
    series = {}
    if classifier is not None and classifier.value is not None:
        matrix = np.asarray(classifier.details["confusion_matrix"], dtype=float)
        recall = np.diag(matrix) / np.maximum(matrix.sum(axis=1), 1)
        series["classifier recall"] = dict(zip(classifier.details["classes"], recall.tolist()))
    for key, label in (("trajectory_linearity", "trajectory linearity"),
                       ("cross_pitch_consistency", "cross-pitch consistency"),
                       ("descriptor_transfer_recognition", "transfer recognition"),
                       ("audio_descriptor_recognition", "audio judge: applied descriptors")):
        result = results.get(key)
        if result is not None and result.value is not None and result.details.get("per_descriptor"):
            series[label] = result.details["per_descriptor"]
    if series:
        plot_per_descriptor(output_dir / "per_descriptor_metrics.png", series)
        plots["Per-descriptor metrics"] = "per_descriptor_metrics.png"
    for stale in ("confusion_matrix.png", "per_descriptor_metrics.png", AUDIO_JUDGE_PLOT):
        if stale not in plots.values() and (output_dir / stale).exists():
            (output_dir / stale).unlink()  # a plot of an earlier run would not match this report
    report = report_dict(results, dict(run, plots=list(plots.values())))
    write_report_json(output_dir / "report.json", report)
    write_report_markdown(output_dir / "report.md", report, plots)
    return report
