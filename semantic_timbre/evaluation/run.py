"""The whole evaluation of a model: the held-out split, `evaluate_model` (glue: the model, the processed
files and the metrics of metrics.py, transfer.py, audio_judge.py and quality.py) and `write_evaluation`
(report.json, report.md and the plots).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from semantic_timbre.evaluation import sampling
from semantic_timbre.evaluation.audio_judge import JudgedNotes, audio_descriptor_recognition, judge_robustness
from semantic_timbre.evaluation.metrics import (NOT_FINITE_CODES, MetricResult, MetricUnavailable,
                                                classifier_accuracy, cross_pitch_consistency,
                                                descriptor_compactness, log_spectral_distance_db, measure,
                                                pitch_conditional_separation, silhouette_descriptor,
                                                trajectory_linearity)
from semantic_timbre.evaluation.plots import plot_confusion_matrices, plot_confusion_matrix, plot_per_descriptor
from semantic_timbre.evaluation.report import report_dict, write_report_json, write_report_markdown
from semantic_timbre.evaluation.sampling import DEFAULT_SAMPLE_SIZE
from semantic_timbre.evaluation.transfer import (descriptor_transfer_recognition, model_round_trip,
                                                 transfer_clean_indices, transfer_trials)

#: At most this many held-out reconstructions enter the judge-free identity check and the judge's
#: robustness check (both keep spectrograms in memory), and at most this many real notes are the
#: identity check's candidates (a seeded random choice of the notes of those pitches).
MAX_IDENTITY_NOTES = 400
MAX_IDENTITY_CANDIDATES = 3000
MAX_ROBUSTNESS_NOTES = 200


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
# The whole evaluation of a model (glue: the model, the files and the metrics)


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
    from semantic_timbre.judge.features import spectrogram_features as judge_features
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


def _applied_for_judge(vae, codes, notes, min_max, judge, magnitude, max_clean_notes, batch_size):
    """Each descriptor the judge knows applied to clean notes (the trials of the transfer metric),
    decoded and turned into judge features with the clean note's min/max: JudgedNotes, or why not."""
    from semantic_timbre.data import processed_data
    from semantic_timbre.judge.features import spectrogram_features

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
