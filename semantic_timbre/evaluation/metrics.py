"""The evaluation's metrics on plain arrays: their definitions (the report's text), MetricResult and
`measure`, reconstruction quality, the latent-space study's metrics and the descriptor classifier.

The metric functions take plain arrays (latent codes and their labels; the transfer metric also a
decode/re-encode function) and return numbers. When the data is too small for a metric, or its
codes are not finite, they raise MetricUnavailable, whose message is the reason; `measure` turns
that into a null value with the reason for the report (as it does a value that is not finite). Nothing here knows
about the model: `evaluate_model` (run.py) and the report writers glue the pieces together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

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
