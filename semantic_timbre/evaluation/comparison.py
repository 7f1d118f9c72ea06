"""The comparison of several evaluated models (evaluate_timbre_generation_vae.py --compare):
comparison.json, comparison.md and comparison.png, one row per model folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from semantic_timbre import safe_io

#: (report key, column title, True when higher is better), in the table's order.
COLUMNS = (
    ("silhouette_descriptor", "silhouette", True),
    ("descriptor_compactness", "compactness", False),
    ("pitch_conditional_separation", "pitch-cond. separation", True),
    ("trajectory_linearity", "trajectory linearity", True),
    ("cross_pitch_consistency", "cross-pitch consistency", True),
    ("classifier_accuracy", "classifier accuracy", True),
    ("reconstruction_mse", "MSE", False),
    ("log_spectral_distance_db", "LSD (dB)", False),
    ("spectral_convergence", "SC", False),
    ("audio_descriptor_recognition", "judge: from description", True),
)


def comparison_rows(reports: dict) -> list[dict]:
    """One row per model: its folder, conditioning and each column's value (None where the metric is null)."""
    rows = []
    for folder, report in reports.items():
        row = {"model_dir": str(folder), "conditioning": report["run"].get("conditioning", "none")}
        for key, _, _ in COLUMNS:
            entry = report.get(key) or {}
            row[key] = entry.get("value")
            if entry.get("value") is None and entry.get("reason"):
                row[f"{key}_reason"] = entry["reason"]
        rows.append(row)
    return rows


def _cell(value) -> str:
    return "null" if value is None else f"{value:.3g}"


def table_markdown(reports: dict) -> str:
    """The comparison as a Markdown table (higher is better except compactness, MSE, LSD and SC)."""
    rows = comparison_rows(reports)
    header = "| model | conditioning | " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 2)]
    for row in rows:
        lines.append(f"| {row['model_dir']} | {row['conditioning']} | "
                     + " | ".join(_cell(row[key]) for key, _, _ in COLUMNS) + " |")
    return "\n".join(lines)


def plot_comparison(path, reports: dict) -> None:
    """One panel per column, one bar per model, coloured by conditioning."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = comparison_rows(reports)
    palette = {"none": "#7f7f7f", "descriptor": "#1f77b4", "perceptual": "#d62728"}
    figure, axes = plt.subplots(2, (len(COLUMNS) + 1) // 2, figsize=(3.0 * ((len(COLUMNS) + 1) // 2), 6.2))
    for axis, (key, title, higher) in zip(axes.flat, COLUMNS):
        values = [row[key] if row[key] is not None else np.nan for row in rows]
        labels = [Path(row["model_dir"]).name or row["model_dir"] for row in rows]
        axis.bar(range(len(rows)), values, color=[palette.get(row["conditioning"], "#2ca02c") for row in rows])
        axis.set_xticks(range(len(rows)), labels, rotation=30, ha="right", fontsize=8)
        axis.set_title(f"{title} ({'higher' if higher else 'lower'} better)", fontsize=9)
    for axis in list(axes.flat)[len(COLUMNS):]:
        axis.axis("off")
    figure.tight_layout()
    safe_io.save_figure_atomic(figure, path, close=True, dpi=90, format="png")


def write_comparison(output_dir, reports: dict) -> list[Path]:
    """Write comparison.json, comparison.md and comparison.png into `output_dir`; return their paths."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    rows = comparison_rows(reports)
    run = next(iter(reports.values()))["run"]
    shared = {key: run.get(key) for key in ("spectrograms_dir", "notes", "held_out_notes", "split", "seed")}
    json_path, md_path, png_path = (output_dir / name for name in ("comparison.json", "comparison.md",
                                                                    "comparison.png"))
    safe_io.write_bytes_atomic(json_path, (json.dumps({"run": shared, "models": rows}, indent=1) + "\n").encode())
    reasons = [f"- {row['model_dir']}, {key}: {row[key + '_reason']}" for row in rows for key, _, _ in COLUMNS
               if key + "_reason" in row]
    text = (f"# Model comparison\n\nEvery model evaluated on the same {shared['notes']} notes; reconstruction on "
            f"the same {shared['held_out_notes']} held-out notes ({shared['split']}). Latent metrics on mu. "
            f"Higher is better except compactness, MSE, LSD and SC.\n\n{table_markdown(reports)}\n\n![comparison](comparison.png)\n"
            + ("\nNull values:\n" + "\n".join(reasons) + "\n" if reasons else ""))
    safe_io.write_bytes_atomic(md_path, text.encode())
    plot_comparison(png_path, reports)
    return [json_path, md_path, png_path]
