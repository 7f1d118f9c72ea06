"""The evaluation's report: report.json (each metric a top-level key with its value or the reason it
is null, its definition and details) and report.md (a table, one sentence per metric, the plots),
each written atomically.
"""

from __future__ import annotations

import json
import math

from semantic_timbre import safe_io
from semantic_timbre.evaluation.metrics import DEFINITIONS, NOT_FINITE, MetricResult, _plain

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
