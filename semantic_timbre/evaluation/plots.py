"""The evaluation's figures: confusion matrices and per-descriptor bars, each saved as PNG atomically."""

from __future__ import annotations

import numpy as np

from semantic_timbre import safe_io


def plot_confusion_matrix(path, matrix, classes, title: str = "Descriptor classifier (cross-validated)") -> None:
    """Save a confusion-matrix heat map (rows true, columns predicted) as PNG, atomically."""
    plot_confusion_matrices(path, [(matrix, title)], classes)


def plot_confusion_matrices(path, panels, classes, row_label: str = "true descriptor",
                            column_label: str = "predicted descriptor") -> None:
    """Save confusion-matrix heat maps side by side, one per (matrix, title) of `panels`, as PNG, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(4.0, 0.45 * len(classes) + 2)
    figure, all_axes = plt.subplots(1, len(panels), figsize=((size + 1) * len(panels), size), squeeze=False)
    for axes, (matrix, title) in zip(all_axes[0], panels):
        matrix = np.asarray(matrix, dtype=float)
        image = axes.imshow(matrix, cmap="Blues")
        axes.set_xticks(range(len(classes)), classes, rotation=90)
        axes.set_yticks(range(len(classes)), classes)
        axes.set_xlabel(column_label)
        axes.set_ylabel(row_label)
        axes.set_title(title, fontsize=10)
        for (row, column), count in np.ndenumerate(matrix):
            if count:
                axes.text(column, row, f"{count:g}", ha="center", va="center", fontsize=7,
                          color="white" if count > matrix.max() / 2 else "black")
        figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    safe_io.save_figure_atomic(figure, path, close=True, dpi=110, format="png")


def plot_per_descriptor(path, series: dict[str, dict[str, float]], title: str = "Per-descriptor metrics") -> None:
    """Save grouped bars: one group per descriptor, one bar per named series, as PNG, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    descriptors = sorted({name for values in series.values() for name in values})
    figure, axes = plt.subplots(figsize=(max(6.0, 0.5 * len(descriptors) * max(1, len(series)) + 2), 4))
    width = 0.8 / max(1, len(series))
    for index, (label, values) in enumerate(series.items()):
        positions = np.arange(len(descriptors)) + (index - (len(series) - 1) / 2) * width
        axes.bar(positions, [values.get(name, np.nan) for name in descriptors], width, label=label)
    axes.set_xticks(range(len(descriptors)), descriptors, rotation=60, ha="right")
    axes.axhline(0, color="black", linewidth=0.5)
    axes.set_title(title)
    axes.legend(fontsize=8)
    figure.tight_layout()
    safe_io.save_figure_atomic(figure, path, close=True, dpi=110, format="png")
