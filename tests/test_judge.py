"""The audio-domain descriptor judge: features, training, cross-validation and its cache beside
the processed data, on the small real processed notes."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from semantic_timbre import judge, layout, safe_io
from semantic_timbre.data import processed_data


@pytest.fixture
def data_copy(processed_project, tmp_path):
    """A copy of the processed data (spectrograms/ and minmax/), which the judge's cache may change."""
    for folder in (layout.SPECTROGRAMS_DIR, layout.MINMAX_DIR):
        shutil.copytree(processed_project / folder, tmp_path / folder)
    return tmp_path / layout.SPECTROGRAMS_DIR, tmp_path / layout.MINMAX_DIR


def real_notes(spectrograms_dir, minmax_dir, keep=lambda note: True):
    notes = [note for note in processed_data.require_spectrograms(spectrograms_dir) if keep(note)]
    return notes, processed_data.load_min_max(minmax_dir)


def test_features_are_finite_named_and_gain_invariant(processed_project):
    notes, min_max = real_notes(processed_project / "spectrograms", processed_project / "minmax")
    features = judge.notes_features(notes[:4], processed_project / "spectrograms", min_max)
    assert features.shape == (4, len(judge.feature_names())) and 200 <= features.shape[1] <= 400
    assert np.all(np.isfinite(features))
    # The same spectrogram 12 dB louder (min and max both raised) has the same features.
    spectrogram = processed_data.load_spectrogram(processed_project / "spectrograms" / notes[0].spectrogram_name)
    low, high = processed_data.min_max_of(min_max, notes[0])
    np.testing.assert_allclose(judge.spectrogram_features(spectrogram, low + 12, high + 12), features[:1],
                               rtol=1e-9, atol=1e-9)
    # A decoded spectrogram (a trailing channel, values a little outside [0, 1]) is accepted too.
    assert judge.spectrogram_features(np.clip(spectrogram, 0, 1)[None, ..., None] * 1.01, low, high).shape == (1, features.shape[1])


def test_the_plain_array_model_predicts_as_scikit_learn(processed_project):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    for classes in (np.array(["A", "B"]), np.array(["A", "B", "C", "D"])):
        labels = np.repeat(classes, 10)
        features = rng.standard_normal((len(labels), 6)) + np.searchsorted(classes, labels)[:, None] * 0.7
        model = judge.LinearModel.fit(features, labels, classes)
        reference = make_pipeline(StandardScaler(), LogisticRegression(C=judge.REGULARISATION_C,
                                                                       max_iter=judge.MAX_ITERATIONS))
        queries = rng.standard_normal((50, 6)) * 2
        expected = reference.fit(features, labels).predict(queries)
        assert np.array_equal(classes[model.predict_indices(queries)], expected)


def test_the_judge_trains_caches_and_refuses_a_stale_cache(data_copy):
    spectrograms, minmax = data_copy
    trained = judge.load_or_train_judge(spectrograms, minmax)
    assert trained.status.startswith("trained") and "stale" not in trained.status
    cache, readable = minmax / judge.CACHE_FILE_NAME, minmax / judge.FINGERPRINT_FILE_NAME
    assert cache.is_file() and readable.is_file()
    summary = json.loads(readable.read_text())["judge"]
    assert summary["classes"] == ["Crunch", "Dark", "Fluttery"] and summary["notes"] == 18
    assert summary["clean_notes_are_a_class"] is False and summary["folds"] == 5
    assert summary["chance_level"] == pytest.approx(1 / 3)
    assert 0 <= trained.accuracy <= 1 and summary["cross_validated_accuracy"] == trained.accuracy
    notes, min_max = real_notes(spectrograms, minmax)
    assert sorted(trained.names) == sorted(note.spectrogram_name for note in notes if not note.is_clean)
    # Every real note was predicted once, by the model of the one fold that did not see it.
    assert sorted(set(trained.test_fold.tolist())) == list(range(5)) and np.all(trained.out_of_fold >= 0)

    # A second call reads the cache (plain arrays, no pickle) and predicts exactly as the trained judge.
    cached = judge.load_or_train_judge(spectrograms, minmax)
    assert cached.status.startswith("read from")
    features = judge.notes_features(notes, spectrograms, min_max)
    assert np.array_equal(cached.predict_features(features), trained.predict_features(features))
    assert np.array_equal(cached.out_of_fold, trained.out_of_fold) and cached.accuracy == trained.accuracy
    with np.load(cache, allow_pickle=False) as arrays:
        assert all(arrays[name].dtype != object for name in arrays.files)

    # A cache measured on other data is never used: here it predicts the opposite of the judge, but
    # its fingerprint names an older spectrogram; touching a spectrogram makes the real cache stale.
    wrong = judge.load_judge(minmax, trained.fingerprint)
    wrong.model.coef = -wrong.model.coef
    judge.save_judge(minmax, wrong)
    assert np.array_equal(judge.load_or_train_judge(spectrograms, minmax).model.coef, wrong.model.coef)  # same data: used
    status = (spectrograms / notes[0].spectrogram_name).stat()
    os.utime(spectrograms / notes[0].spectrogram_name, ns=(status.st_atime_ns, status.st_mtime_ns + 10**9))
    assert judge.load_judge(minmax, judge.data_fingerprint(spectrograms, minmax)) is None
    retrained = judge.load_or_train_judge(spectrograms, minmax)
    assert retrained.status.startswith("trained") and "stale" in retrained.status
    assert np.allclose(retrained.model.coef, trained.model.coef)
    assert judge.load_or_train_judge(spectrograms, minmax).status.startswith("read from")
    # So does a changed min/max file, or a spectrogram removed.
    values = processed_data.load_min_max(minmax)
    safe_io.save_pickle_atomic(minmax / layout.MINMAX_FILE_NAME, dict(values))
    assert judge.load_or_train_judge(spectrograms, minmax).status.startswith("trained")
    (spectrograms / notes[-1].spectrogram_name).unlink()
    again = judge.load_or_train_judge(spectrograms, minmax)
    assert again.status.startswith("trained") and len(again.names) == 17


def test_a_cache_that_would_run_code_or_is_damaged_is_trained_again(data_copy):
    spectrograms, minmax = data_copy
    fingerprint = judge.data_fingerprint(spectrograms, minmax)
    cache = minmax / judge.CACHE_FILE_NAME
    # An object array (a pickle inside the npz) with the right fingerprint: refused, never unpickled.
    np.savez(cache, fingerprint=np.array(json.dumps(fingerprint, sort_keys=True)),
             classes=np.array([object(), "Dark"], dtype=object))
    assert judge.load_judge(minmax, fingerprint) is None
    cache.write_bytes(b"not an npz file")
    assert judge.load_judge(minmax, fingerprint) is None
    assert judge.load_or_train_judge(spectrograms, minmax).status.startswith("trained")


def test_too_little_data_gives_no_judge_or_no_accuracy_with_the_reason(processed_project):
    spectrograms, minmax = processed_project / "spectrograms", processed_project / "minmax"
    notes, min_max = real_notes(spectrograms, minmax, keep=lambda n: n.descriptor == "Crunch" or n.is_clean)
    with pytest.raises(judge.JudgeUnavailable, match="at least two descriptors"):
        judge.train_judge(notes, spectrograms, min_max)
    # One note of Dark: the judge is trained, but has no cross-validated accuracy and no fold that
    # did not hear a given real note.
    notes, min_max = real_notes(spectrograms, minmax,
                                keep=lambda n: n.descriptor == "Crunch" or n.spectrogram_name == "DarkX50X1-0.wav.npy")
    small = judge.train_judge(notes, spectrograms, min_max)
    assert small.accuracy is None and "Dark has 1" in small.accuracy_reason and small.folds == 0
    assert small.confusion_matrix() is None and small.summary()["cross_validated_accuracy"] is None
    features = judge.notes_features(notes[:1], spectrograms, min_max)
    assert small.predict_features(features)[0] in ("Crunch", "Dark")
    with pytest.raises(judge.JudgeUnavailable, match="no cross-validation folds"):
        small.predict_unseen([notes[0].spectrogram_name], features)


def test_the_judge_learns_from_damaged_copies_of_the_real_notes_and_never_from_a_model(processed_project):
    spectrograms, minmax = processed_project / "spectrograms", processed_project / "minmax"
    notes, min_max = real_notes(spectrograms, minmax, keep=lambda n: not n.is_clean)
    features, augmented, sources = judge.notes_features(notes, spectrograms, min_max, augment_seed=0)
    copies = judge.AUGMENTED_COPIES * len(notes) + min(len(notes), judge.GRIFFIN_LIM_NOTES)
    assert augmented.shape == (copies, features.shape[1]) and np.all(np.isfinite(augmented))
    assert np.bincount(sources, minlength=len(notes)).tolist() == [judge.AUGMENTED_COPIES + 1] * len(notes)
    # every copy is damaged: none has its original's features
    assert np.all(np.abs(augmented - features[sources]).max(axis=1) > 1e-6)
    # the same seed draws the same copies
    _, again, _ = judge.notes_features(notes, spectrograms, min_max, augment_seed=0)
    np.testing.assert_allclose(again, augmented, rtol=1e-9, atol=1e-9)
    trained = judge.train_judge(notes, spectrograms, min_max)
    summary = trained.summary()
    assert summary["augmented_rows"] == copies and summary["augmentation"]["trained_on_model_outputs"] is False
    assert set(summary["augmentation"]["kinds"]) == set(judge.AUGMENTATION)


def test_the_robustness_key_judges_damaged_real_notes_or_says_why_not(processed_project):
    from semantic_timbre import evaluation

    spectrograms, minmax = processed_project / "spectrograms", processed_project / "minmax"
    notes, min_max = real_notes(spectrograms, minmax, keep=lambda n: not n.is_clean)
    trained = judge.train_judge(notes, spectrograms, min_max)
    originals = [(processed_data.load_spectrogram(spectrograms / note.spectrogram_name),
                  *processed_data.min_max_of(min_max, note), note.spectrogram_name, note.descriptor) for note in notes]
    value, details = evaluation.judge_robustness(trained, originals, 3.0)
    assert value == min(details["noise"], details["blur"]) and 0 <= value <= 1
    assert details["notes"] == len(notes) and details["undamaged"] == pytest.approx(trained.accuracy)
    for kind in ("noise", "blur"):
        assert details["reached_lsd_db"][kind] == pytest.approx(3.0, rel=0.05)
    # Small data: one Dark note, no folds: null with the reason, never a judge that saw the notes.
    few = [note for note in notes if note.descriptor == "Crunch" or note.spectrogram_name == "DarkX50X1-0.wav.npy"]
    small = judge.train_judge(few, spectrograms, min_max)
    result = evaluation.measure(evaluation.judge_robustness, small, originals[:2], 3.0)
    assert result.value is None and "no cross-validation folds" in result.reason and "Dark has 1" in result.reason
    result = evaluation.measure(evaluation.judge_robustness, trained, originals, None)
    assert result.value is None and "log-spectral distance" in result.reason
