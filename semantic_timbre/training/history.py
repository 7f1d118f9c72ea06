"""The training log (training_log.csv, one row per epoch, continued across resumes) and the loss
curve (loss_curve.png)."""

from __future__ import annotations

import csv
import io
from pathlib import Path


from semantic_timbre import safe_io
from semantic_timbre.training.options import LOSS_NAMES


def _columns(history: list) -> list[str]:
    columns = ["epoch", *LOSS_NAMES]
    if any(f"val_{name}" in row for row in history for name in LOSS_NAMES):
        columns += [f"val_{name}" for name in LOSS_NAMES]
    return columns



def write_training_log(path: str | Path, history: list) -> None:
    """Write the per-epoch losses as CSV, atomically."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=_columns(history), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({key: (repr(float(value)) if key != "epoch" else int(value)) for key, value in row.items()
                         if key in writer.fieldnames})
    safe_io.write_bytes_atomic(path, text.getvalue().encode())



def read_training_log(path: str | Path) -> list[dict]:
    """Read a training_log.csv back as a list of dicts (epoch as int, losses as float)."""
    with open(path, newline="") as handle:
        return [{key: (int(value) if key == "epoch" else float(value)) for key, value in row.items() if value != ""}
                for row in csv.DictReader(handle)]



def plot_loss_curve(path: str | Path, history: list) -> None:
    """Plot total, reconstruction and KL losses (training, and validation when present) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for axis, name in zip(axes, LOSS_NAMES):
        axis.plot([row["epoch"] for row in history if name in row], [row[name] for row in history if name in row],
                  marker=".", label="training")
        if any(f"val_{name}" in row for row in history):
            axis.plot([row["epoch"] for row in history if f"val_{name}" in row],
                      [row[f"val_{name}"] for row in history if f"val_{name}" in row], marker=".",
                      linestyle="--", label="validation")
            axis.legend()
        axis.set_title(name.replace("_", " "))
        axis.set_xlabel("epoch")
        if all(row[name] > 0 for row in history if name in row):
            axis.set_yscale("log")
        axis.grid(True, alpha=0.3)
    figure.tight_layout()
    safe_io.save_figure_atomic(figure, path, close=True, dpi=100)

