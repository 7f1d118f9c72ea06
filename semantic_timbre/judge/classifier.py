"""The judge's classifier: a standardised multinomial logistic regression as plain arrays
(LinearModel), the trained judge with its cross-validation (DescriptorJudge) and its training.

- Classes: the descriptors of the non-clean notes (magnitude > 0) in the processed data, at
  every magnitude they have (up to the thesis's 19). Clean notes are not a class: the judge
  answers "which descriptor is this?", as the latent-space classifier does.
- Accuracy: stratified k-fold cross-validation on the real notes, k = min(5, smallest class),
  with a fixed seed (0), so the figure belongs to the data, not to an evaluation run. A fold's
  model learns from its training notes and their damaged copies and is tested on the undamaged
  notes it never saw (nor any copy of them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from semantic_timbre.judge.augmentation import augmentation_settings
from semantic_timbre.judge.features import feature_names, notes_features, spectrogram_features

SEED = 0
MAX_FOLDS = 5
REGULARISATION_C = 1.0
MAX_ITERATIONS = 3000
CLASSIFIER = (f"StandardScaler + multinomial LogisticRegression (C={REGULARISATION_C}, lbfgs, "
              f"max_iter={MAX_ITERATIONS})")


class JudgeUnavailable(ValueError):
    """The processed data cannot train a judge (fewer than two descriptors); the message says why."""


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
