"""The evaluation metrics on synthetic latent codes with known answers, and the evaluation
command on a small real trained model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import run_script
from semantic_timbre import evaluation
from semantic_timbre.evaluation import MetricUnavailable

ALL_KEYS = evaluation.METRIC_KEYS + ("reconstruction_mse", "descriptor_transfer_recognition",
                                     "audio_descriptor_recognition")


def clusters(separation: float, descriptors=("A", "B", "C"), per_class=8, dimension=6, seed=0):
    """Gaussian clusters, one per descriptor, centred `separation` apart on separate axes."""
    rng = np.random.default_rng(seed)
    codes, labels = [], []
    for index, descriptor in enumerate(descriptors):
        centre = np.zeros(dimension)
        centre[index] = separation
        codes.append(centre + rng.standard_normal((per_class, dimension)))
        labels += [descriptor] * per_class
    return np.vstack(codes), np.array(labels)


def grid(direction_of, pitches=("E4", "A4", "E5"), descriptors=("A", "B"), magnitudes=(0, 25, 50, 75, 100),
         dimension=4, pitch_offset=None):
    """Codes for clean notes plus descriptor x magnitude x pitch, placed by `direction_of`."""
    codes, labels, levels, where = [], [], [], []
    for p, pitch in enumerate(pitches):
        base = np.zeros(dimension) if pitch_offset is None else pitch_offset(p)
        codes.append(base)
        labels.append("Fluttery")
        levels.append(0)
        where.append(pitch)
        for descriptor in descriptors:
            for magnitude in magnitudes[1:]:
                codes.append(base + direction_of(descriptor, magnitude, p))
                labels.append(descriptor)
                levels.append(magnitude)
                where.append(pitch)
    return np.array(codes), np.array(labels), np.array(levels), np.array(where)


def axis(index, dimension=4):
    vector = np.zeros(dimension)
    vector[index] = 1.0
    return vector


def test_separated_clusters_score_high_and_overlapping_ones_low():
    codes, labels = clusters(separation=20)
    assert evaluation.silhouette_descriptor(codes, labels) > 0.7
    assert evaluation.descriptor_compactness(codes, labels) < 0.2
    accuracy, details = evaluation.classifier_accuracy(codes, labels)
    assert accuracy == 1.0
    assert details["chance_level"] == pytest.approx(1 / 3)
    assert details["folds"] == 5
    assert np.trace(details["confusion_matrix"]) == len(labels)

    codes, labels = clusters(separation=0)
    assert abs(evaluation.silhouette_descriptor(codes, labels)) < 0.15
    assert evaluation.descriptor_compactness(codes, labels) > 1.5
    assert evaluation.classifier_accuracy(codes, labels)[0] < 0.7


def test_pitch_conditional_separation_holds_pitch_fixed():
    # Descriptors separate within each pitch, but pitch moves everything far more: the plain
    # silhouette is dragged down by pitch, the per-pitch one is not.
    codes, labels, levels, pitches = grid(lambda d, m, p: 3.0 * axis(0 if d == "A" else 1),
                                          pitch_offset=lambda p: 100.0 * axis(3) * p,
                                          magnitudes=(0, 50, 100))
    effected = levels > 0
    rng = np.random.default_rng(1)
    codes = codes + 0.05 * rng.standard_normal(codes.shape)
    within, details = evaluation.pitch_conditional_separation(codes[effected], labels[effected], pitches[effected])
    assert within > 0.9
    assert details["pitches_used"] == 3
    assert evaluation.silhouette_descriptor(codes[effected], labels[effected]) < 0


def test_straight_trajectories_are_linear_and_consistent():
    codes, labels, levels, pitches = grid(lambda d, m, p: m / 100 * axis(0 if d == "A" else 1))
    linearity, details = evaluation.trajectory_linearity(codes, labels, levels, pitches)
    assert linearity == pytest.approx(1.0)
    assert details["trajectories"] == 6
    consistency, details = evaluation.cross_pitch_consistency(codes, labels, levels, pitches)
    assert consistency == pytest.approx(1.0)
    assert set(details["per_descriptor"]) == {"A", "B"}


def test_a_path_that_doubles_back_is_not_linear():
    # 0 -> 25 -> 50 -> 75 -> 100 goes out one unit and comes back to the start along the same axis.
    out_and_back = {25: 0.5, 50: 1.0, 75: 0.5, 100: 0.0}
    codes, labels, levels, pitches = grid(lambda d, m, p: out_and_back[m] * axis(0), descriptors=("A",))
    assert evaluation.trajectory_linearity(codes, labels, levels, pitches)[0] == pytest.approx(0.0)
    # A right-angle corner: end-to-end sqrt(2) over path 2.
    corner = {25: axis(0) * 0.5, 50: axis(0), 75: axis(0) + 0.5 * axis(1), 100: axis(0) + axis(1)}
    codes, labels, levels, pitches = grid(lambda d, m, p: corner[m], descriptors=("A",))
    assert evaluation.trajectory_linearity(codes, labels, levels, pitches)[0] == pytest.approx(np.sqrt(2) / 2)


def test_opposite_directions_across_pitches_are_inconsistent():
    codes, labels, levels, pitches = grid(lambda d, m, p: (m / 100) * (1 if p % 2 else -1) * axis(0),
                                          pitches=("E4", "F4"), descriptors=("A",))
    assert evaluation.cross_pitch_consistency(codes, labels, levels, pitches)[0] == pytest.approx(-1.0)


def test_too_small_data_gives_null_with_a_reason_never_a_crash():
    codes = np.random.default_rng(0).standard_normal((6, 3))
    one_descriptor = np.array(["Crunch"] * 6)
    for function in (evaluation.silhouette_descriptor, evaluation.descriptor_compactness,
                     evaluation.classifier_accuracy):
        result = evaluation.measure(function, codes, one_descriptor)
        assert result.value is None and "two descriptors" in result.reason
    one_each = np.array(["A", "A", "A", "A", "A", "B"])
    result = evaluation.measure(evaluation.classifier_accuracy, codes, one_each)
    assert result.value is None and "B has 1" in result.reason
    one_pitch = np.array(["E4"] * 6)
    magnitudes = np.array([0, 50, 100, 0, 50, 100])
    result = evaluation.measure(evaluation.cross_pitch_consistency, codes, one_each, magnitudes, one_pitch)
    assert result.value is None and "two or more pitches" in result.reason
    result = evaluation.measure(evaluation.trajectory_linearity, codes[:2], ["A", "A"], [0, 100], ["E4", "E4"])
    assert result.value is None and "three or more magnitudes" in result.reason
    result = evaluation.measure(evaluation.pitch_conditional_separation, codes, one_each, one_pitch + np.arange(6).astype(str))
    assert result.value is None and result.reason
    with pytest.raises(MetricUnavailable):
        evaluation.reconstruction_mse(np.zeros((0, 512, 64)), np.zeros((0, 512, 64)))


def test_reconstruction_measures():
    original = np.zeros((2, 8, 5))
    assert evaluation.reconstruction_mse(original, original + 0.5) == pytest.approx(0.25)
    assert evaluation.reconstruction_mse(original[..., None], original[..., None]) == 0.0
    shifted = original.copy()
    shifted[:, :2, :] = 4.0  # 2 of 8 bins are 4 dB off: RMS over frequency = sqrt(2 * 16 / 8) = 2
    assert evaluation.log_spectral_distance_db(original, shifted) == pytest.approx(2.0)


def test_held_out_split_is_seeded_and_sized():
    names = [f"n{i}" for i in range(20)]
    first = evaluation.held_out_split(names, 0.2, seed=3)
    assert len(first) == 4 and set(first) <= set(names)
    assert evaluation.held_out_split(list(reversed(names)), 0.2, seed=3) == first
    assert evaluation.held_out_split(names, 0.2, seed=4) != first
    assert evaluation.held_out_split(names, 0.0) == []
    assert len(evaluation.held_out_split(names[:3], 0.1)) == 1


def test_report_files_hold_every_key_and_no_nan(tmp_path):
    codes, labels = clusters(separation=10)
    results = {key: evaluation.MetricResult(None, "not measured in this test") for key in ALL_KEYS}
    results["classifier_accuracy"] = evaluation.measure(evaluation.classifier_accuracy, codes, labels)
    results["spectral_convergence"] = evaluation.MetricResult(float("nan"))
    report = evaluation.write_evaluation(tmp_path, results, {"notes": len(codes)})
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk == report
    assert set(ALL_KEYS) <= set(on_disk)
    assert on_disk["classifier_accuracy"]["value"] == 1.0
    assert on_disk["classifier_accuracy"]["chance_level"] == pytest.approx(1 / 3)
    assert on_disk["spectral_convergence"]["value"] is None
    markdown = (tmp_path / "report.md").read_text()
    for key in ALL_KEYS:
        assert f"`{key}`" in markdown
    assert "chance level 0.3333" in markdown
    assert (tmp_path / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "confusion_matrix.png" in markdown


# --- Degenerate data: every metric a finite number, or null with its reason ----------------------

LATENT_METRICS = ("silhouette_descriptor", "descriptor_compactness", "pitch_conditional_separation",
                  "trajectory_linearity", "cross_pitch_consistency", "classifier_accuracy",
                  "descriptor_transfer_recognition")


def identity(codes):
    """The round trip of a perfect autoencoder: every code comes back unchanged."""
    return codes


def latent_metrics(codes, descriptors, magnitudes, pitches) -> dict:
    """Every latent-space metric on hand-made codes, called as evaluate_model calls them."""
    codes, descriptors = np.asarray(codes, dtype=float), np.asarray(descriptors)
    magnitudes, pitches = np.asarray(magnitudes), np.asarray(pitches)
    effected = magnitudes > 0
    return {
        "silhouette_descriptor": evaluation.measure(evaluation.silhouette_descriptor, codes[effected],
                                                    descriptors[effected]),
        "descriptor_compactness": evaluation.measure(evaluation.descriptor_compactness, codes[effected],
                                                     descriptors[effected]),
        "pitch_conditional_separation": evaluation.measure(evaluation.pitch_conditional_separation,
                                                           codes[effected], descriptors[effected], pitches[effected]),
        "trajectory_linearity": evaluation.measure(evaluation.trajectory_linearity, codes, descriptors,
                                                   magnitudes, pitches),
        "cross_pitch_consistency": evaluation.measure(evaluation.cross_pitch_consistency, codes, descriptors,
                                                      magnitudes, pitches),
        "classifier_accuracy": evaluation.measure(evaluation.classifier_accuracy, codes[effected],
                                                  descriptors[effected]),
        "descriptor_transfer_recognition": evaluation.measure(
            evaluation.descriptor_transfer_recognition, codes, descriptors, magnitudes, pitches, identity),
    }


def assert_number_or_reason(results: dict, numbers=(), nulls=()) -> None:
    """Each result is a finite number or null with a reason; `numbers` and `nulls` say which."""
    for key, result in results.items():
        if result.value is None:
            assert isinstance(result.reason, str) and result.reason, key
        else:
            assert np.isfinite(result.value) and result.reason is None, (key, result)
    for key in numbers:
        assert results[key].value is not None, (key, results[key].reason)
    for key, fragment in dict(nulls).items():
        assert results[key].value is None and fragment in results[key].reason, (key, results[key])


def test_one_note_per_descriptor_and_one_clean():
    # The bug report's shape: every descriptor has a single note, the clean note is at another pitch.
    codes = [[0, 0], [3, 0], [0, 3], [-3, -3]]
    results = latent_metrics(codes, ["Fluttery", "A", "B", "C"], [0, 50, 50, 100], ["E5", "E4", "E4", "A4"])
    assert_number_or_reason(results, nulls={
        "silhouette_descriptor": "more notes than descriptors",
        "descriptor_compactness": "single note",  # was 0.0: the distance to its own centroid is 0 by construction
        "pitch_conditional_separation": "no pitch",
        "trajectory_linearity": "three or more magnitudes",
        "cross_pitch_consistency": "two or more pitches",
        "classifier_accuracy": "A has 1",
    })
    # Each descriptor's direction takes the clean code exactly onto its one note: all recognised.
    transfer = results["descriptor_transfer_recognition"]
    assert transfer.value == 1.0 and transfer.details["trials"] == 3
    assert transfer.details["real_notes_round_trip"] is None
    assert "no effected note shares a pitch" in transfer.details["real_notes_round_trip_reason"]


def test_exactly_two_notes():
    two_descriptors = latent_metrics([[0, 0], [1, 1]], ["A", "B"], [50, 100], ["E4", "A4"])
    assert_number_or_reason(two_descriptors, nulls={key: "" for key in LATENT_METRICS})
    assert "single note" in two_descriptors["descriptor_compactness"].reason
    assert "no clean notes" in two_descriptors["descriptor_transfer_recognition"].reason
    clean_and_one = latent_metrics([[0, 0], [1, 1]], ["Fluttery", "A"], [0, 100], ["E4", "E4"])
    assert_number_or_reason(clean_and_one, nulls={key: "" for key in LATENT_METRICS})


def test_a_single_note_and_no_notes():
    for codes, descriptors, magnitudes, pitches in (([[1.0, 2.0]], ["A"], [50], ["E4"]),
                                                    ([[1.0, 2.0]], ["Fluttery"], [0], ["E4"]),
                                                    (np.zeros((0, 2)), [], [], [])):
        results = latent_metrics(codes, descriptors, magnitudes, pitches)
        assert_number_or_reason(results, nulls={key: "" for key in LATENT_METRICS})


def test_a_single_descriptor():
    codes, labels, levels, pitches = grid(lambda d, m, p: m / 100 * axis(0), descriptors=("A",))
    results = latent_metrics(codes, labels, levels, pitches)
    assert_number_or_reason(results, numbers=("trajectory_linearity", "cross_pitch_consistency"), nulls={
        "silhouette_descriptor": "two descriptors", "descriptor_compactness": "two descriptors",
        "pitch_conditional_separation": "no pitch", "classifier_accuracy": "two descriptors",
        "descriptor_transfer_recognition": "two descriptors"})


def test_no_clean_notes():
    codes, labels, levels, pitches = grid(lambda d, m, p: m / 100 * axis(0 if d == "A" else 1),
                                          magnitudes=(0, 50, 100))
    effected = levels > 0
    rng = np.random.default_rng(0)
    codes = codes + 0.01 * rng.standard_normal(codes.shape)
    results = latent_metrics(codes[effected], labels[effected], levels[effected], pitches[effected])
    assert_number_or_reason(results, numbers=("silhouette_descriptor", "descriptor_compactness",
                                              "pitch_conditional_separation", "classifier_accuracy"), nulls={
        "trajectory_linearity": "three or more magnitudes",
        "cross_pitch_consistency": "two or more pitches",
        "descriptor_transfer_recognition": "no clean notes"})


def test_a_descriptor_with_a_single_magnitude():
    codes, labels, levels, pitches = grid(lambda d, m, p: axis(0 if d == "A" else 1), magnitudes=(0, 100))
    results = latent_metrics(codes, labels, levels, pitches)
    assert_number_or_reason(results, numbers=("cross_pitch_consistency", "classifier_accuracy",
                                              "descriptor_transfer_recognition"),
                            nulls={"trajectory_linearity": "three or more magnitudes"})
    assert results["cross_pitch_consistency"].value == pytest.approx(1.0)
    # Magnitude 50 lies between clean (0) and the one magnitude the data has: half the direction.
    half = evaluation.descriptor_transfer_recognition(codes, labels, levels, pitches, identity, magnitude=50)
    assert half[0] == 1.0 and half[1]["real_notes_round_trip"] == 1.0


def test_codes_that_coincide_give_no_made_up_numbers():
    # A collapsed encoder: every note has the same code. Trajectories have length 0 (was 1.0, a
    # perfectly straight line) and every centroid is the same point.
    codes, labels, levels, pitches = grid(lambda d, m, p: np.zeros(4))
    results = latent_metrics(codes, labels, levels, pitches)
    assert_number_or_reason(results, nulls={"trajectory_linearity": "one point",
                                            "descriptor_compactness": "same point"})


def test_codes_that_are_not_finite_give_nulls_with_the_reason():
    codes, labels, levels, pitches = grid(lambda d, m, p: m / 100 * axis(0 if d == "A" else 1))
    codes[3, 1] = np.nan
    results = latent_metrics(codes, labels, levels, pitches)
    assert_number_or_reason(results, nulls={key: "NaN" for key in LATENT_METRICS})
    # A round trip that gives NaN (a diverged decoder) is null too, never a classifier crash.
    codes[3, 1] = 0.0
    result = evaluation.measure(evaluation.descriptor_transfer_recognition, codes, labels, levels, pitches,
                                lambda batch: np.full_like(batch, np.nan))
    assert result.value is None and "NaN" in result.reason


def test_a_non_finite_value_never_reaches_the_report(tmp_path):
    results = {key: evaluation.MetricResult(0.5) for key in ALL_KEYS}
    results["classifier_accuracy"] = evaluation.MetricResult(None, "not measured in this test")
    results["spectral_convergence"] = evaluation.MetricResult(float("nan"), None, {"original_inversion": float("inf")})
    results["trajectory_linearity"] = evaluation.MetricResult(0.5, None, {"per_descriptor": {"A": float("nan")}})
    results["descriptor_transfer_recognition"] = evaluation.MetricResult(0.5, None, {
        "chance_level": 0.5, "real_notes_round_trip": None, "real_notes_round_trip_reason": "no pitch shared"})
    report = evaluation.write_evaluation(tmp_path, results, {"notes": 2, "loss": float("-inf")})
    on_disk = strict_json(tmp_path / "report.json")
    assert on_disk == report
    assert on_disk["spectral_convergence"]["value"] is None and on_disk["spectral_convergence"]["reason"]
    assert on_disk["spectral_convergence"]["original_inversion"] is None
    markdown = (tmp_path / "report.md").read_text()
    assert on_disk["spectral_convergence"]["reason"] in markdown and "no pitch shared" in markdown


def test_held_out_split_of_all_or_none_or_one():
    names = ["b", "a", "c"]
    assert evaluation.held_out_split(names, 1.0) == ["a", "b", "c"]
    assert evaluation.held_out_split(names, 0.0) == [] and evaluation.held_out_split([], 0.5) == []
    assert evaluation.held_out_split(["a"], 0.2) == ["a"]


def strict_json(path):
    """Read a JSON file, failing on NaN, Infinity or -Infinity (which json.loads accepts by default)."""
    def refuse(constant):
        raise AssertionError(f"{path} holds {constant}")
    return json.loads(path.read_text(), parse_constant=refuse)


def check_report(output, stdout: str) -> dict:
    """report.json holds every metric as a finite number or null with a reason that report.md and
    the command's output repeat; returns the report."""
    report = strict_json(output / "report.json")
    markdown = (output / "report.md").read_text()
    for key in ALL_KEYS:
        entry = report[key]
        assert entry["definition"] and key in stdout, key
        if entry["value"] is None:
            assert isinstance(entry["reason"], str) and entry["reason"], key
            assert entry["reason"] in markdown and entry["reason"] in stdout, key
        else:
            assert isinstance(entry["value"], (int, float)) and np.isfinite(entry["value"]), key
            assert entry["reason"] is None, key
    for plot in report["run"]["plots"]:
        assert (output / plot).read_bytes()[:4] == b"\x89PNG"
    return report


def project_with(trained_project, tmp_path, keep) -> Path:
    """A copy of the trained project whose spectrograms/ keeps only the names `keep` accepts."""
    root = tmp_path / "project"
    shutil.copytree(trained_project, root)
    for path in (root / "spectrograms").glob("*.npy"):
        if not keep(path.name):
            path.unlink()
    return root


def test_the_command_on_one_note_per_descriptor_and_one_clean(trained_project, tmp_path):
    # The bug report's shape: it crashed classifying the transfer's reference, 0 real notes at the
    # clean note's pitch (StandardScaler given 0 samples).
    kept = {"CrunchX50X1-0.wav.npy", "DarkX100X1-0.wav.npy", "FlutteryX50X1-5.wav.npy", "FlutteryX0X1-12.wav.npy"}
    root = project_with(trained_project, tmp_path, lambda name: name in kept)
    result = run_script("evaluate_timbre_generation_vae.py", *FAST, cwd=root)
    assert result.returncode == 0, result.stderr
    report = check_report(root / "evaluation", result.stdout)
    assert report["run"]["notes"] == 4 and report["run"]["held_out_notes"] == 1
    for key in ("silhouette_descriptor", "descriptor_compactness", "pitch_conditional_separation",
                "trajectory_linearity", "cross_pitch_consistency", "classifier_accuracy"):
        assert report[key]["value"] is None, key
    assert "single note" in report["descriptor_compactness"]["reason"]
    transfer = report["descriptor_transfer_recognition"]
    assert transfer["value"] is not None and transfer["trials"] == 3
    assert transfer["real_notes_round_trip"] is None
    assert transfer["real_notes_round_trip_reason"] in (root / "evaluation" / "report.md").read_text()
    assert report["reconstruction_mse"]["value"] is not None
    # The audio judge has one note per descriptor: no cross-validated accuracy (null with the
    # reason), but it still judges the three descriptors applied to the clean note.
    audio = report["audio_descriptor_recognition"]
    assert audio["judge_accuracy"] is None and "has 1" in audio["judge_accuracy_reason"]
    assert audio["value"] is not None and audio["applied_trials"] == 3
    assert report["run"]["plots"] == ["audio_judge_confusion_matrix.png", "per_descriptor_metrics.png"]


def test_the_command_without_clean_notes_or_held_out_notes(trained_project, tmp_path):
    root = project_with(trained_project, tmp_path, lambda name: "X0X" not in name)
    result = run_script("evaluate_timbre_generation_vae.py", "--held-out-fraction", 0, *FAST, cwd=root)
    assert result.returncode == 0, result.stderr
    report = check_report(root / "evaluation", result.stdout)
    assert report["run"]["notes"] == 18 and report["run"]["held_out_notes"] == 0
    for key in ("reconstruction_mse", "spectral_convergence", "log_spectral_distance_db"):
        assert "no held-out notes" in report[key]["reason"], key
    assert "no clean notes" in report["descriptor_transfer_recognition"]["reason"]
    for key in ("trajectory_linearity", "cross_pitch_consistency"):
        assert report[key]["value"] is None, key
    for key in ("silhouette_descriptor", "descriptor_compactness", "pitch_conditional_separation",
                "classifier_accuracy"):
        assert report[key]["value"] is not None, key
    audio = report["audio_descriptor_recognition"]  # nothing generated to judge, the judge itself measured
    assert "no held-out notes" in audio["reason"] and "no clean notes" in audio["reason"]
    assert audio["judge_notes"] == 18 and audio["judge_accuracy"] is not None
    assert "audio_judge_confusion_matrix.png" in report["run"]["plots"]
    # The training's validation split holds only notes that are not encoded (here: deleted; with
    # --max-notes: not drawn): null reconstruction metrics with that reason (was an error).
    (root / "model" / "validation_split.json").write_text(json.dumps({"validation": ["FlutteryX0X1-0.wav.npy"]}))
    result = run_script("evaluate_timbre_generation_vae.py", "--output-dir", "split", *FAST, cwd=root)
    assert result.returncode == 0, result.stderr
    report = check_report(root / "split", result.stdout)
    assert report["run"]["held_out_notes"] == 0
    for key in ("reconstruction_mse", "spectral_convergence", "log_spectral_distance_db"):
        assert "validation_split.json" in report[key]["reason"], key


def test_the_command_on_two_notes_all_held_out(trained_project, tmp_path):
    root = project_with(trained_project, tmp_path, lambda name: name in {"CrunchX100X1-0.wav.npy",
                                                                         "DarkX50X1-5.wav.npy"})
    result = run_script("evaluate_timbre_generation_vae.py", "--held-out-fraction", 1, *FAST, cwd=root)
    assert result.returncode == 0, result.stderr
    report = check_report(root / "evaluation", result.stdout)
    assert report["run"]["held_out_notes"] == 2
    for key in ("reconstruction_mse", "spectral_convergence", "log_spectral_distance_db"):
        assert report[key]["value"] is not None, key
    for key in LATENT_METRICS:
        assert report[key]["value"] is None, key  # descriptor_compactness was 0.0
    # The judge has one note of each descriptor: no folds, so no judge that has not heard the
    # originals for their reconstructions, and no clean note to apply descriptors to.
    audio = report["audio_descriptor_recognition"]
    assert audio["value"] is None and "no cross-validation folds" in audio["reason"]
    assert "no clean notes" in audio["reason"]
    assert report["run"]["plots"] == []


def test_a_model_with_nan_weights_gives_nulls_with_reasons(trained_project, tmp_path):
    # A model whose training diverged (save refuses to write one, so it is measured in memory):
    # every code and reconstruction is NaN. This used to crash in the silhouette score.
    from semantic_timbre import judge, layout
    from semantic_timbre.data import processed_data
    from semantic_timbre.network.vae import VAE

    vae = VAE.load(trained_project / "model")
    vae.set_weights([np.full_like(weights, np.nan) for weights in vae.get_weights()])
    spectrograms = trained_project / "spectrograms"
    notes = processed_data.require_spectrograms(spectrograms)
    min_max = processed_data.load_min_max(trained_project / layout.MINMAX_DIR)
    held_out = [next(note.spectrogram_name for note in notes if not note.is_clean)]
    results, _ = evaluation.evaluate_model(vae, notes, spectrograms, min_max, held_out,
                                           griffin_lim_iterations=4, transfer_clean_notes=1, progress=False,
                                           judge=judge.train_judge(notes, spectrograms, min_max))
    assert_number_or_reason(results, nulls={key: "NaN" for key in ALL_KEYS})
    evaluation.write_evaluation(tmp_path, results, {"notes": len(notes)})
    report = strict_json(tmp_path / "report.json")
    markdown = (tmp_path / "report.md").read_text()
    for key in ALL_KEYS:
        assert report[key]["value"] is None and report[key]["reason"] in markdown, key


# --- The command on a small real trained model ---------------------------------------------------

FAST = ("--inverted-notes", 3, "--griffin-lim-iters", 4, "--transfer-clean-notes", 3)


def test_the_command_writes_a_report_with_every_key_and_plots(trained_project, tmp_path):
    root = project_with(trained_project, tmp_path, lambda name: True)  # the judge's cache goes into minmax/
    output = tmp_path / "evaluation"
    result = run_script("evaluate_timbre_generation_vae.py", "--output-dir", output, *FAST, cwd=root)
    assert result.returncode == 0, result.stderr
    report = json.loads((output / "report.json").read_text())
    for key in ALL_KEYS:
        entry = report[key]
        assert entry["value"] is not None, (key, entry["reason"])
        assert entry["definition"]
        assert key in result.stdout
    assert report["run"]["notes"] == 21 and report["run"]["held_out_notes"] == 4
    assert "only truly held out if" in report["run"]["split"]
    assert report["classifier_accuracy"]["chance_level"] == pytest.approx(1 / 3)
    assert report["descriptor_transfer_recognition"]["trials"] == 9
    assert 0 <= report["descriptor_transfer_recognition"]["real_notes_round_trip"] <= 1
    assert 0 <= report["spectral_convergence"]["value"] and report["log_spectral_distance_db"]["value"] > 0
    assert 0 <= report["reconstruction_mse"]["value"] < 1
    markdown = (output / "report.md").read_text()
    assert "![" in markdown and "chance level" in markdown
    for plot in report["run"]["plots"]:
        assert (output / plot).read_bytes()[:4] == b"\x89PNG"
    assert set(report["run"]["plots"]) == {"confusion_matrix.png", "per_descriptor_metrics.png",
                                           "audio_judge_confusion_matrix.png"}
    assert "audio_judge_confusion_matrix.png" in markdown
    assert not list(root.glob("evaluation"))
    # The audio-domain judge: trained on the 18 real non-clean notes, cached beside them.
    audio = report["audio_descriptor_recognition"]
    assert audio["chance_level"] == pytest.approx(1 / 3) and audio["classes"] == ["Crunch", "Dark", "Fluttery"]
    assert audio["judge_notes"] == 18 and audio["judge_folds"] == 5 and 0 <= audio["judge_accuracy"] <= 1
    assert audio["clean_notes_are_a_class"] is False
    held_out_effected = 4 - sum("X0X" in name for name in evaluation.held_out_split(
        [path.name for path in (root / "spectrograms").glob("*.npy")], 0.2, seed=0))
    assert audio["reconstructions_notes"] == held_out_effected and audio["applied_trials"] == 9
    assert audio["generated_notes"] == held_out_effected + 9
    assert 0 <= audio["reconstructions"] <= 1 and 0 <= audio["applied_descriptors"] <= 1
    assert "judge's cross-validated accuracy on real notes" in markdown
    assert "trained on the processed notes" in report["run"]["descriptor_judge"]
    assert (root / "minmax" / "descriptor_judge.npz").is_file()
    # A second run reads the judge from its cache and judges the same notes the same way.
    again = run_script("evaluate_timbre_generation_vae.py", "--output-dir", tmp_path / "again", *FAST, cwd=root)
    assert again.returncode == 0, again.stderr
    second = json.loads((tmp_path / "again" / "report.json").read_text())["audio_descriptor_recognition"]
    assert "read from" in second["descriptor_judge"] and "read from" in again.stdout
    assert second["judge_accuracy"] == audio["judge_accuracy"]
    assert second["generated_confusion_matrix"] == audio["generated_confusion_matrix"]


def test_one_descriptor_gives_nulls_with_reasons_and_a_held_out_list(trained_project, tmp_path):
    root = tmp_path / "project"
    shutil.copytree(trained_project, root)
    for path in (root / "spectrograms").glob("*.npy"):
        if not (path.name.startswith("Crunch") or "X0X" in path.name):
            path.unlink()
    names = root / "held_out.txt"
    names.write_text("CrunchX50X1-0.wav.npy\nFlutteryX0X1-5.wav.npy\n")
    result = run_script("evaluate_timbre_generation_vae.py", "--held-out-list", names, *FAST, cwd=root)
    assert result.returncode == 0, result.stderr
    report = json.loads((root / "evaluation" / "report.json").read_text())
    for key in ("silhouette_descriptor", "descriptor_compactness", "pitch_conditional_separation",
                "classifier_accuracy", "descriptor_transfer_recognition"):
        assert report[key]["value"] is None and report[key]["reason"], key
    for key in ("trajectory_linearity", "cross_pitch_consistency", "spectral_convergence"):
        assert report[key]["value"] is not None, key
    assert report["run"]["held_out_notes"] == 2 and "held_out.txt" in report["run"]["split"]
    assert "confusion_matrix.png" not in report["run"]["plots"]
    audio = report["audio_descriptor_recognition"]
    assert audio["value"] is None and "at least two descriptors" in audio["reason"]
    assert "audio_judge_confusion_matrix.png" not in report["run"]["plots"]
    assert not (root / "minmax" / "descriptor_judge.npz").exists()


def test_missing_model_or_data_names_the_step_to_run(processed_project, tmp_path):
    result = run_script("evaluate_timbre_generation_vae.py", "--output-dir", tmp_path / "e", cwd=processed_project)
    assert result.returncode == 2 and "train_timbre_generation_vae.py" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in result.stderr
    result = run_script("evaluate_timbre_generation_vae.py", "--output-dir", tmp_path / "e", cwd=tmp_path)
    assert result.returncode == 2 and "process_audio_into_spectrograms.py" in result.stderr
    assert not (tmp_path / "e").exists()


# --- The audio-domain judge's figure on generated notes with known answers -----------------------


def test_audio_recognition_of_perfect_reconstructions_is_the_judges_own_accuracy(processed_project):
    # A perfect autoencoder gives back the real notes: each is judged by the fold that never saw
    # it, so the rate is exactly the judge's cross-validated accuracy on those notes.
    from semantic_timbre import judge
    from semantic_timbre.data import processed_data

    spectrograms = processed_project / "spectrograms"
    notes = processed_data.require_spectrograms(spectrograms)
    min_max = processed_data.load_min_max(processed_project / "minmax")
    trained = judge.train_judge(notes, spectrograms, min_max)
    effected = [note for note in notes if not note.is_clean]
    features = judge.notes_features(effected, spectrograms, min_max)
    names = np.array([note.spectrogram_name for note in effected])
    intended = np.array([note.descriptor for note in effected])
    perfect = evaluation.JudgedNotes(intended, features, names)
    strongest = np.array([note.magnitude == 100 for note in effected])
    applied = evaluation.JudgedNotes(intended[strongest], features[strongest])
    rate, details = evaluation.audio_descriptor_recognition(trained, perfect, applied, magnitude=100)
    assert details["reconstructions"] == pytest.approx(trained.accuracy)
    assert details["judge_on_the_originals"] == pytest.approx(trained.accuracy)
    assert details["reconstructions_notes"] == 18 and details["applied_trials"] == 9
    assert details["chance_level"] == pytest.approx(1 / 3) and details["clean_notes_are_a_class"] is False
    assert rate == pytest.approx((18 * details["reconstructions"] + 9 * details["applied_descriptors"]) / 27)
    assert np.sum(details["generated_confusion_matrix"]) == 27
    assert set(details["per_descriptor"]) == {"Crunch", "Dark", "Fluttery"}
    # Generated notes labelled with a descriptor they do not have are not recognised.
    wrong = evaluation.JudgedNotes(np.roll(intended[strongest], 3), features[strongest])
    assert evaluation.audio_descriptor_recognition(trained, "none held out", wrong)[1]["applied_descriptors"] < 0.5
    # Nothing generated, or no judge: null with the reasons, the judge's own figures kept.
    result = evaluation.measure(evaluation.audio_descriptor_recognition, trained, "no held-out notes",
                                "the data holds no clean notes")
    assert result.value is None and "no held-out notes" in result.reason and "no clean notes" in result.reason
    assert result.details["judge_accuracy"] == trained.accuracy
    result = evaluation.measure(evaluation.audio_descriptor_recognition, "needs two descriptors", perfect, applied)
    assert result.value is None and result.reason == "needs two descriptors"


def test_the_silhouettes_on_a_stratified_sample_say_so(trained_project, tmp_path):
    from semantic_timbre import layout
    from semantic_timbre.evaluation import sampling

    root = project_with(trained_project, tmp_path, lambda name: True)
    result = run_script("evaluate_timbre_generation_vae.py", "--output-dir", tmp_path / "sampled", "--sample-size",
                        "9", "--inverted-notes", "0", "--transfer-clean-notes", "1", "--seed", "1", cwd=root)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "sampled" / "report.json").read_text())
    assert report["run"]["sample_size"] == 9
    assert "stratified sample of 9 of the 18 notes" in report["run"]["quadratic_metrics"]
    for key in ("silhouette_descriptor", "pitch_conditional_separation", "classifier_accuracy",
                "descriptor_transfer_recognition"):
        assert report[key]["sampled"] and report[key]["notes"] == 9 and report[key]["of_notes"] == 18
        assert "stratified sample of 9" in report[key]["sampling"]
    assert "stratified sample of 9 of the 18" in result.stdout
    markdown = (tmp_path / "sampled" / "report.md").read_text()
    assert "quadratic in the notes) and classifiers: a stratified sample" in markdown
    assert report["trajectory_linearity"].get("sampled") is None  # every note
    # The sample is drawn from the notes' names and the seed alone, so every model gets the same one:
    # here the silhouette equals the one computed on that sample of the model's codes.
    notes = [n for n in layout.list_spectrograms(root / "spectrograms") if not n.is_clean]
    chosen = sampling.stratified_sample([f"{n.descriptor}|{n.pitch}" for n in notes], 9, seed=1)
    from semantic_timbre.latent import encode_notes
    from semantic_timbre.network.vae import VAE

    codes = encode_notes(VAE.load(root / "model"), notes, root / "spectrograms", progress=False)
    assert report["silhouette_descriptor"]["value"] == pytest.approx(evaluation.silhouette_descriptor(
        codes[chosen], [notes[i].descriptor for i in chosen]), abs=1e-5)
