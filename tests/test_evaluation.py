"""The evaluation metrics on synthetic latent codes with known answers, and the evaluation
command on a small real trained model."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import run_script
from semantic_timbre import evaluation
from semantic_timbre.evaluation import MetricUnavailable

ALL_KEYS = evaluation.METRIC_KEYS + ("reconstruction_mse", "descriptor_transfer_recognition")


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


# --- The command on a small real trained model ---------------------------------------------------

FAST = ("--inverted-notes", 3, "--griffin-lim-iters", 4, "--transfer-clean-notes", 3)


def test_the_command_writes_a_report_with_every_key_and_plots(trained_project, tmp_path):
    output = tmp_path / "evaluation"
    result = run_script("evaluate_timbre_generation_vae.py", "--output-dir", output, *FAST, cwd=trained_project)
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
    assert set(report["run"]["plots"]) == {"confusion_matrix.png", "per_descriptor_metrics.png"}
    assert not list(trained_project.glob("evaluation"))


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


def test_missing_model_or_data_names_the_step_to_run(processed_project, tmp_path):
    result = run_script("evaluate_timbre_generation_vae.py", "--output-dir", tmp_path / "e", cwd=processed_project)
    assert result.returncode == 2 and "train_timbre_generation_vae.py" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in result.stderr
    result = run_script("evaluate_timbre_generation_vae.py", "--output-dir", tmp_path / "e", cwd=tmp_path)
    assert result.returncode == 2 and "process_audio_into_spectrograms.py" in result.stderr
    assert not (tmp_path / "e").exists()
