"""The judge's cache beside the processed data, and the fingerprint of the data it was trained on.

The fitted parameters are plain arrays in an .npz beside the processed data
(`minmax/descriptor_judge.npz`, read with allow_pickle=False, so loading it runs no code) with
the fingerprint of the data embedded, and a readable copy in `descriptor_judge.json`. The
fingerprint covers the spectrograms' names, sizes and modification times, the min/max file and
the judge's own version; a cache whose fingerprint does not match is never used: the judge is
trained again and the cache rewritten.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from semantic_timbre import layout, safe_io
from semantic_timbre.data import processed_data
from semantic_timbre.judge.augmentation import augmentation_settings
from semantic_timbre.judge.classifier import (CLASSIFIER, MAX_FOLDS, SEED, DescriptorJudge, LinearModel,
                                              train_judge)
from semantic_timbre.judge.features import feature_names

CACHE_FILE_NAME = "descriptor_judge.npz"
FINGERPRINT_FILE_NAME = "descriptor_judge.json"
#: Bump when the features, the classifier or the cache's layout change: older caches are then stale.
JUDGE_VERSION = 2


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
