"""An independent audio-domain descriptor judge: a classifier of real notes' spectrograms.

The dataset paper judged generated notes with a descriptor classifier trained on audio. This is
that judge for the processed data: it knows nothing of the VAE. It reads a normalised 512 x 64
spectrogram with the min/max that de-normalises it, turns it into a few hundred features that
describe distortion, filtering, dynamics and modulation, and a standardised multinomial logistic
regression predicts the descriptor.

- Classes: the descriptors of the non-clean notes (magnitude > 0) in the processed data, at
  every magnitude they have (up to the thesis's 19). Clean notes are not a class: the judge
  answers "which descriptor is this?", as the latent-space classifier does.
- Features are gain-invariant: every level is taken relative to the note's own maximum, because
  a generated note keeps the level range of the note it came from (the system de-normalises with
  that note's min/max) and could not be recognised by its loudness anyway.
- Augmentation: the judge hears a descriptor through an artefact, as a listener does. Beside each
  real note it learns from `AUGMENTED_COPIES` copies damaged by descriptor-agnostic damage
  (damage.py: additive noise, blur, frame-level jitter, blur and noise together, at random
  strengths up to a model's error of about 5 dB LSD) and, for up to `GRIFFIN_LIM_NOTES` notes, a
  Griffin-Lim round trip. It never sees a model's output. Without it, damage of a model's size
  (noise or blur to 4.7 dB LSD) took the judge from 0.98 to 0.12-0.47 on the real notes.
- Accuracy: stratified k-fold cross-validation on the real notes, k = min(5, smallest class),
  with a fixed seed (0), so the figure belongs to the data, not to an evaluation run. A fold's
  model learns from its training notes and their damaged copies and is tested on the undamaged
  notes it never saw (nor any copy of them).
- Cache: the fitted parameters are plain arrays in an .npz beside the processed data
  (`minmax/descriptor_judge.npz`, read with allow_pickle=False, so loading it runs no code) with
  the fingerprint of the data embedded, and a readable copy in `descriptor_judge.json`. The
  fingerprint covers the spectrograms' names, sizes and modification times, the min/max file and
  the judge's own version; a cache whose fingerprint does not match is never used: the judge is
  trained again and the cache rewritten.
"""

from __future__ import annotations

import functools
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from semantic_timbre import layout, safe_io
from semantic_timbre.data import processed_data

CACHE_FILE_NAME = "descriptor_judge.npz"
FINGERPRINT_FILE_NAME = "descriptor_judge.json"
#: Bump when the features, the classifier or the cache's layout change: older caches are then stale.
JUDGE_VERSION = 2
SEED = 0
MAX_FOLDS = 5
REGULARISATION_C = 1.0
MAX_ITERATIONS = 3000
CLASSIFIER = (f"StandardScaler + multinomial LogisticRegression (C={REGULARISATION_C}, lbfgs, "
              f"max_iter={MAX_ITERATIONS})")

# Analysis constants of the data set's spectrograms (spectrogram.py): 22,050 Hz, n_fft 1024, hop 256.
SAMPLE_RATE = 22050
N_FFT = 1024
HOP_LENGTH = 256
N_MELS = 40
#: Power floor relative to the note's maximum: the data set's dB spectrograms stop 80 dB below it.
FLOOR_DB = -100.0


#: Damaged copies of each real note the judge learns from (damage.py), and their recipe: each copy
#: draws one kind and a strength uniformly from its range (damage.damage's strength: noise 6 dB,
#: blur 2 bins and 1 frame, jitter 3 dB per unit).
AUGMENTED_COPIES = 2
AUGMENTATION = {
    "noise": (0.2, 1.2),
    "blur": (0.2, 1.6),
    "jitter": (0.3, 1.5),
    "blur+noise": (0.2, 1.0),
}
#: How many real notes (a seeded random choice) also get a Griffin-Lim round trip (8 iterations):
#: it costs about 0.1 s a note, so it is capped.
GRIFFIN_LIM_NOTES = 128
GRIFFIN_LIM_ITERATIONS = 8
#: At most this many real notes get damaged copies (a seeded random choice) on a large data set.
MAX_AUGMENTED_NOTES = 4000


def augmentation_settings() -> dict:
    """The augmentation the judge learns with, as plain data (in its fingerprint and summary)."""
    return {"copies_per_note": AUGMENTED_COPIES, "kinds": {kind: list(span) for kind, span in AUGMENTATION.items()},
            "griffin_lim_notes": GRIFFIN_LIM_NOTES, "griffin_lim_iterations": GRIFFIN_LIM_ITERATIONS,
            "max_augmented_notes": MAX_AUGMENTED_NOTES, "trained_on_model_outputs": False}


def augment(normalised: np.ndarray, low: float, high: float, rng: np.random.Generator) -> np.ndarray:
    """One damaged copy of a normalised spectrogram (512, frames): a kind of AUGMENTATION drawn
    at random, at a random strength in its range."""
    from semantic_timbre.data import damage

    kinds = list(AUGMENTATION)
    kind = kinds[int(rng.integers(len(kinds)))]
    strength = float(rng.uniform(*AUGMENTATION[kind]))
    if kind == "blur+noise":
        blurred = damage.damage(normalised, "blur", strength, low=low, high=high, random_state=rng)
        return damage.damage(blurred, "noise", float(rng.uniform(0.2, 0.8)), low=low, high=high, random_state=rng)
    return damage.damage(normalised, kind, strength, low=low, high=high, random_state=rng)


class JudgeUnavailable(ValueError):
    """The processed data cannot train a judge (fewer than two descriptors); the message says why."""


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


# ---------------------------------------------------------------------------------------------
# A fitted judge as plain arrays


@dataclass
class LinearModel:
    """Standardisation and a logistic regression, as plain arrays (what the cache stores)."""

    mean: np.ndarray        # (features,)
    scale: np.ndarray       # (features,)
    coef: np.ndarray        # (classes, features), or (1, features) with two classes
    intercept: np.ndarray   # (classes,) or (1,)

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, classes: np.ndarray, seed: int = SEED) -> "LinearModel":
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(features)
        model = LogisticRegression(C=REGULARISATION_C, max_iter=MAX_ITERATIONS, random_state=seed)
        model.fit(scaler.transform(features), labels)
        if list(model.classes_) != list(classes):
            raise ValueError(f"the classifier learnt classes {list(model.classes_)}, expected {list(classes)}")
        return cls(scaler.mean_.copy(), scaler.scale_.copy(), model.coef_.copy(), model.intercept_.copy())

    def predict_indices(self, features: np.ndarray) -> np.ndarray:
        """Class indices predicted for features (N, F), as scikit-learn's LogisticRegression.predict."""
        scores = ((np.asarray(features, dtype=np.float64) - self.mean) / self.scale) @ self.coef.T + self.intercept
        if scores.shape[1] == 1:  # two classes: one decision function, positive means the second class
            return (scores[:, 0] > 0).astype(int)
        return scores.argmax(axis=1)


@dataclass
class DescriptorJudge:
    """A trained judge: the model fitted on every real non-clean note, the cross-validation's fold
    models and out-of-fold predictions, and where it came from.

    `names`, `labels`, `magnitudes` describe the real notes it was trained on; `test_fold[i]` is
    the cross-validation fold in which note i was predicted (its model never saw note i), -1 for
    all when cross-validation was not possible (`accuracy_reason` says why).
    """

    classes: np.ndarray
    model: LinearModel
    names: np.ndarray
    labels: np.ndarray
    magnitudes: np.ndarray
    fold_models: list[LinearModel]
    test_fold: np.ndarray
    out_of_fold: np.ndarray          # predicted class index per note, -1 without cross-validation
    accuracy_reason: str | None
    fingerprint: dict = field(default_factory=dict)
    status: str = ""                 # where it came from: trained now, read from the cache, ...
    augmented_rows: int = 0          # damaged copies of real notes it learnt from besides them

    # -- predictions -------------------------------------------------------------------------

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        """Descriptor names predicted for feature rows (N, F) by the model fitted on every real note."""
        return self.classes[self.model.predict_indices(features)]

    def predict(self, normalised: np.ndarray, low, high) -> np.ndarray:
        """Descriptor names predicted for normalised spectrograms de-normalised with (low, high)."""
        return self.predict_features(spectrogram_features(normalised, low, high))

    def predict_unseen(self, names, features: np.ndarray) -> np.ndarray:
        """Predict each row with the fold model that never saw the real note of the same name.

        For judging something derived from a real note (its reconstruction), so the judge has not
        learnt that very note. Names the judge was not trained on use the model fitted on every note.

        Raises
        ------
        JudgeUnavailable
            When the judge has no cross-validation folds and a name is among its training notes.
        """
        features = np.asarray(features, dtype=np.float64)
        index_of = {str(name): index for index, name in enumerate(self.names)}
        predicted = np.empty(len(features), dtype=int)
        for row, name in enumerate(names):
            index = index_of.get(str(name))
            if index is None:
                predicted[row] = self.model.predict_indices(features[row:row + 1])[0]
            elif self.test_fold[index] < 0:
                raise JudgeUnavailable(f"the judge has no cross-validation folds ({self.accuracy_reason}), so no "
                                       f"judge that has not seen the original notes")
            else:
                predicted[row] = self.fold_models[self.test_fold[index]].predict_indices(features[row:row + 1])[0]
        return self.classes[predicted]

    # -- its own accuracy on the real notes --------------------------------------------------

    @property
    def accuracy(self) -> float | None:
        """Cross-validated accuracy on the real non-clean notes, or None (see accuracy_reason)."""
        if self.accuracy_reason is not None:
            return None
        return float(np.mean(self.classes[self.out_of_fold] == self.labels))

    @property
    def folds(self) -> int:
        return len(self.fold_models)

    @property
    def chance_level(self) -> float:
        return 1.0 / len(self.classes)

    def out_of_fold_accuracy(self, chosen: np.ndarray) -> float | None:
        """Cross-validated accuracy on the notes where `chosen` (a mask over `names`) is True."""
        chosen = np.asarray(chosen, dtype=bool)
        if self.accuracy_reason is not None or not chosen.any():
            return None
        return float(np.mean(self.classes[self.out_of_fold[chosen]] == self.labels[chosen]))

    def confusion_matrix(self) -> list[list[int]] | None:
        """Rows: true descriptor, columns: out-of-fold prediction, in `classes` order."""
        if self.accuracy_reason is not None:
            return None
        matrix = np.zeros((len(self.classes), len(self.classes)), dtype=int)
        truth = np.searchsorted(self.classes, self.labels)
        np.add.at(matrix, (truth, self.out_of_fold), 1)
        return matrix.tolist()

    def summary(self) -> dict:
        """What the judge is and how well it does on real notes, as plain data."""
        counts = {str(name): int(np.sum(self.labels == name)) for name in self.classes}
        return {
            "classes": [str(name) for name in self.classes],
            "notes_per_class": counts,
            "notes": int(len(self.names)),
            "clean_notes_are_a_class": False,
            "features": len(feature_names()),
            "classifier": CLASSIFIER,
            "augmentation": augmentation_settings(),
            "augmented_rows": int(self.augmented_rows),
            "cross_validated_accuracy": self.accuracy,
            "cross_validation_reason": self.accuracy_reason,
            "folds": self.folds,
            "chance_level": self.chance_level,
            "majority_rate": max(counts.values()) / len(self.names),
            "accuracy_by_magnitude": {str(int(m)): self.out_of_fold_accuracy(self.magnitudes == m)
                                      for m in np.unique(self.magnitudes)},
        }


# ---------------------------------------------------------------------------------------------
# Training


def train_judge(notes, spectrograms_dir, min_max: dict, seed: int = SEED, progress: bool = False,
                augment: bool = True) -> DescriptorJudge:
    """Train the judge on the non-clean notes among `notes` (layout.Note) and cross-validate it.

    `augment=False` trains on the real notes alone (no damaged copies), for comparison.

    Raises
    ------
    JudgeUnavailable
        With fewer than two descriptors among the non-clean notes.
    ProcessedDataError
        For a spectrogram that cannot be read or a note without a min/max entry.
    """
    from sklearn.model_selection import StratifiedKFold

    effected = sorted((note for note in notes if not note.is_clean), key=lambda note: note.spectrogram_name)
    labels = np.array([note.descriptor for note in effected], dtype=str)
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        raise JudgeUnavailable(f"the judge needs non-clean notes of at least two descriptors, the processed data "
                               f"has {len(classes)}")
    if augment:
        features, augmented, sources = notes_features(effected, spectrograms_dir, min_max, progress=progress,
                                                      augment_seed=seed)
    else:
        features = notes_features(effected, spectrograms_dir, min_max, progress=progress)
        augmented, sources = np.zeros((0, features.shape[1])), np.zeros(0, dtype=np.int64)
    judge = DescriptorJudge(
        classes=classes, model=LinearModel.fit(np.concatenate([features, augmented]),
                                               np.concatenate([labels, labels[sources]]), classes, seed),
        names=np.array([note.spectrogram_name for note in effected], dtype=str), labels=labels,
        magnitudes=np.array([note.magnitude for note in effected], dtype=np.int64), fold_models=[],
        test_fold=np.full(len(effected), -1, dtype=np.int64), out_of_fold=np.full(len(effected), -1, dtype=np.int64),
        accuracy_reason=None, augmented_rows=len(augmented))
    folds = int(min(MAX_FOLDS, counts.min()))
    if folds < 2:
        judge.accuracy_reason = (f"cross-validation needs two notes of every descriptor; "
                                 f"{classes[counts.argmin()]} has {counts.min()}")
        return judge
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fold, (train, test) in enumerate(splitter.split(features, labels)):
        copies = np.isin(sources, train)  # the damaged copies of the training notes only
        model = LinearModel.fit(np.concatenate([features[train], augmented[copies]]),
                                np.concatenate([labels[train], labels[sources[copies]]]), classes, seed)
        judge.fold_models.append(model)
        judge.test_fold[test] = fold
        judge.out_of_fold[test] = model.predict_indices(features[test])
    return judge


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


# ---------------------------------------------------------------------------------------------
# Cache beside the processed data


def data_fingerprint(spectrograms_dir, minmax_dir) -> dict:
    """What a trained judge depends on: the judge's version and settings, every spectrogram's
    name, size and modification time (as one sha1), and the min/max file's size and mtime."""
    return {
        "judge_version": JUDGE_VERSION,
        "classifier": CLASSIFIER,
        "features": len(feature_names()),
        "seed": SEED,
        "max_folds": MAX_FOLDS,
        "augmentation": augmentation_settings(),
        "spectrograms": processed_data.spectrograms_stamp(spectrograms_dir),
        "min_max": safe_io.file_stamp(Path(minmax_dir) / layout.MINMAX_FILE_NAME),
    }


def save_judge(minmax_dir, judge: DescriptorJudge) -> Path:
    """Write the judge's arrays (fingerprint embedded) and a readable JSON beside them, atomically."""
    arrays = {
        "classes": judge.classes.astype(str),
        "names": judge.names.astype(str),
        "labels": judge.labels.astype(str),
        "magnitudes": judge.magnitudes,
        "test_fold": judge.test_fold,
        "out_of_fold": judge.out_of_fold,
        "accuracy_reason": np.array(judge.accuracy_reason or ""),
        "folds": np.array(len(judge.fold_models)),
        "augmented_rows": np.array(judge.augmented_rows),
    }
    for prefix, model in [("model", judge.model)] + [(f"fold{i}", m) for i, m in enumerate(judge.fold_models)]:
        for name in ("mean", "scale", "coef", "intercept"):
            arrays[f"{prefix}_{name}"] = getattr(model, name)
    path = Path(minmax_dir) / CACHE_FILE_NAME
    safe_io.save_npz_cache(path, arrays, judge.fingerprint)
    readable = {"fingerprint": judge.fingerprint, "judge": judge.summary()}
    safe_io.write_bytes_atomic(Path(minmax_dir) / FINGERPRINT_FILE_NAME,
                               (json.dumps(readable, indent=2, sort_keys=True) + "\n").encode())
    return path


def load_judge(minmax_dir, fingerprint: dict) -> DescriptorJudge | None:
    """Return the cached judge if it exists and its embedded fingerprint is `fingerprint`; else None.

    Read with allow_pickle=False: only arrays of numbers and strings, nothing that runs code.
    """
    path = Path(minmax_dir) / CACHE_FILE_NAME

    def check(arrays):
        for name in ("classes", "names", "labels"):
            safe_io.expect(arrays, name, (None,), "U")
        for name in ("magnitudes", "test_fold", "out_of_fold"):
            safe_io.expect(arrays, name, (None,), "i")
        folds = int(safe_io.expect(arrays, "folds", (), "i"))
        for prefix in ["model"] + [f"fold{i}" for i in range(folds)]:
            for name in ("mean", "scale", "coef", "intercept"):
                safe_io.expect(arrays, f"{prefix}_{name}", (None,) * (2 if name == "coef" else 1))

    cache = safe_io.load_npz_cache(path, fingerprint, check=check)
    if cache is None:
        return None  # none, damaged (said in a notice) or of other data: trained again
    try:
        def model(prefix: str) -> LinearModel:
            return LinearModel(*(cache[f"{prefix}_{name}"].astype(np.float64)
                                 for name in ("mean", "scale", "coef", "intercept")))

        reason = str(cache["accuracy_reason"]) or None
        judge = DescriptorJudge(
            classes=cache["classes"].astype(str), model=model("model"), names=cache["names"].astype(str),
            labels=cache["labels"].astype(str), magnitudes=cache["magnitudes"].astype(np.int64),
            fold_models=[model(f"fold{i}") for i in range(int(cache["folds"]))],
            test_fold=cache["test_fold"].astype(np.int64), out_of_fold=cache["out_of_fold"].astype(np.int64),
            accuracy_reason=reason, fingerprint=fingerprint,
            augmented_rows=int(cache["augmented_rows"]) if "augmented_rows" in cache else 0)
    except (ValueError, KeyError, TypeError):
        judge = None
    if judge is None or not _consistent(judge):
        print(f"notice: ignoring the cache {path}: its arrays do not fit together; training the judge again",
              file=sys.stderr)
        return None
    return judge


def _consistent(judge: DescriptorJudge) -> bool:
    """Whether a judge read from a cache has arrays of matching shapes (a damaged file does not)."""
    features, classes, notes = len(feature_names()), len(judge.classes), len(judge.names)
    rows = classes if classes > 2 else 1
    models = [judge.model] + judge.fold_models
    return (classes >= 2 and all(model.mean.shape == model.scale.shape == (features,)
                                 and model.coef.shape == (rows, features) and model.intercept.shape == (rows,)
                                 for model in models)
            and judge.labels.shape == judge.magnitudes.shape == judge.test_fold.shape == judge.out_of_fold.shape
            == (notes,)
            and bool(np.all(judge.test_fold < len(judge.fold_models)))
            and bool(np.all((judge.out_of_fold >= -1) & (judge.out_of_fold < classes))))


def load_or_train_judge(spectrograms_dir=layout.SPECTROGRAMS_DIR, minmax_dir=layout.MINMAX_DIR,
                        progress: bool = False) -> DescriptorJudge:
    """Return the judge from the cache beside the processed data when its fingerprint matches the
    data, otherwise train it on every processed non-clean note and cache it.

    A cache that cannot be written (a read-only folder) is no error: the judge is used all the
    same and its `status` says so.

    Raises
    ------
    JudgeUnavailable
        With fewer than two descriptors among the non-clean notes.
    ProcessedDataError
        If spectrograms/ or the min/max file is missing or malformed.
    """
    from semantic_timbre.data import processed_data

    notes = processed_data.require_spectrograms(spectrograms_dir)
    fingerprint = data_fingerprint(spectrograms_dir, minmax_dir)
    path = Path(minmax_dir) / CACHE_FILE_NAME
    cached = load_judge(minmax_dir, fingerprint)
    if cached is not None:
        cached.status = f"read from {path} (its fingerprint matches the processed data)"
        return cached
    stale = path.is_file()
    judge = train_judge(notes, spectrograms_dir, processed_data.load_min_max(minmax_dir), progress=progress)
    judge.fingerprint = fingerprint
    try:
        save_judge(minmax_dir, judge)
        judge.status = f"trained on the processed notes and cached in {path}" + (
            " (the cache there was stale: it was trained on other data or by another version)" if stale else "")
    except OSError as error:
        judge.status = f"trained on the processed notes; the cache {path} could not be written ({error})"
    return judge
