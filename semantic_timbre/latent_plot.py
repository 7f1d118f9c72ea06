"""The latent-space plot: 2-D reduction (t-SNE or PCA) cached for the four views, the thesis's
scatter plots, a CSV of the coordinates and an interactive HTML version."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from . import layout, safe_io

LABELS = ("all", "timbre", "magnitude", "pitch")
METHODS = {"tsne": "tSNE", "tsne-sklearn": "tSNE", "pca": "PCA"}
#: openTSNE iterations after its 250 of early exaggeration (openTSNE's default: 750 in all, where
#: scikit-learn runs 1,000; the last ones cost the most and barely move the points).
OPENTSNE_ITERATIONS = 500
_SUFFIXES = {"all": "", "timbre": "_TimbreLabel", "magnitude": "_MagnitudeLabel", "pitch": "_PitchLabel"}
_TITLES = {"all": "descriptor (colour), pitch (marker), magnitude (size)", "timbre": "descriptor",
           "magnitude": "magnitude", "pitch": "pitch"}
CLEAN_LABEL = "clean (0)"
_MARKERS = ("o", "s", "^", "v", "<", ">", "D", "p", "*", "h", "X", "P", "d", "8", "H",
            "1", "2", "3", "4", "+", "x", "|", "_")


def plot_file_name(label: str = "all", method: str = "tsne") -> str:
    """The thesis's file name, e.g. 'Visualise_VAE_Latent_Space_tSNE_PitchLabel.png'."""
    return f"Visualise_VAE_Latent_Space_{METHODS[method]}{_SUFFIXES[label]}.png"


def order_pitches(pitches) -> list[str]:
    """Distinct note names in pitch order (E2 < ... < B3 < C4 < ... < D6), not alphabetical."""
    return sorted(set(pitches), key=layout.note_name_to_midi)


def order_magnitudes(magnitudes) -> list[int]:
    """Distinct magnitudes in numeric order (5 < 25 < 100, not '100' < '25')."""
    return sorted({int(m) for m in magnitudes})


def tsne_perplexity(count: int, perplexity: float = 30.0) -> float:
    """`perplexity` (30 by default, scikit-learn's and openTSNE's) lowered to (count - 1) / 3 for
    small sets, since it must stay below the number of points."""
    perplexity = float(min(perplexity, max(1.0, (count - 1) / 3)))
    if perplexity >= count:
        perplexity = count - 1.0 if count > 2 else 0.5
    return perplexity


def reduce_to_2d(codes: np.ndarray, method: str = "tsne", random_state: int = 42,
                 perplexity: float = 30.0) -> np.ndarray:
    """Reduce latent codes (N, latent) to (N, 2).

    Parameters
    ----------
    method : str
        'tsne': openTSNE (exact neighbours and a Barnes-Hut gradient below 1,000 and 10,000
        points, approximate neighbours and an FFT-interpolated gradient above: about linear
        cost) with its defaults, which are scikit-learn's but for the number of iterations (PCA
        start, early exaggeration 12 for 250 iterations, 750 in all, not 1,000); one thread, so
        the points do not depend on the machine; 'tsne-sklearn': scikit-learn's TSNE with its defaults, as the thesis
        (about N log N, but slow: 91 s for 1,771 notes on 2 cores); 'pca': principal components.
    perplexity : float
        t-SNE's perplexity, lowered by `tsne_perplexity` for small sets.
    """
    codes = np.asarray(codes, dtype=np.float64)
    if len(codes) < 2:
        raise ValueError("at least 2 notes are needed to reduce to 2-D")
    if method == "pca":
        from sklearn.decomposition import PCA

        components = min(2, codes.shape[1], len(codes))
        points = PCA(n_components=components, random_state=random_state).fit_transform(codes)
    elif method == "tsne-sklearn":
        from sklearn.manifold import TSNE

        points = TSNE(n_components=2, perplexity=tsne_perplexity(len(codes), perplexity),
                      random_state=random_state,
                      init="pca" if codes.shape[1] >= 2 else "random").fit_transform(codes)
    elif method == "tsne":
        from openTSNE import TSNE

        # n_jobs=1: the same points on every machine and run (threads would sum in any order).
        points = np.asarray(TSNE(n_components=2, perplexity=tsne_perplexity(len(codes), perplexity),
                                 n_iter=OPENTSNE_ITERATIONS, random_state=random_state, n_jobs=1,
                                 initialization="pca" if codes.shape[1] >= 2 else "random").fit(codes))
    else:
        raise ValueError(f"unknown method '{method}': use one of {', '.join(METHODS)}")
    if points.shape[1] < 2:
        points = np.hstack([points, np.zeros((len(points), 2 - points.shape[1]))])
    return points.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# The 2-D embedding, cached beside the plots for the four views


def embedding_cache_path(png: str | Path, method: str) -> Path:
    """Where the embedding of `method` is cached: beside the plot, shared by the four views."""
    return Path(png).parent / f"Visualise_VAE_Latent_Space_embedding_{method}.npz"


def embedding_parameters(method: str, count: int, random_state: int = 42, perplexity: float = 30.0) -> dict:
    """The method and its parameters as they enter the cache's key (the implementation's version too)."""
    from importlib.metadata import version

    parameters = {"method": method, "random_state": random_state}
    if method.startswith("tsne"):
        package = "openTSNE" if method == "tsne" else "scikit-learn"
        parameters.update(perplexity=tsne_perplexity(count, perplexity), implementation=f"{package} {version(package)}")
        if method == "tsne":
            parameters["iterations"] = OPENTSNE_ITERATIONS + 250
    return parameters


def embedding_fingerprint(model_dir, spectrograms_dir, parameters: dict) -> dict:
    """What a cached embedding was computed from: the model files, the spectrograms folder
    (processed_data.spectrograms_stamp) and the method with its parameters."""
    from .model_files import model_stamp
    from .processed_data import spectrograms_stamp

    return {"format": 1, "latent_code": "mu", "model": model_stamp(model_dir),
            "spectrograms": spectrograms_stamp(spectrograms_dir), "reduction": parameters}


def load_embedding(path: str | Path, fingerprint: dict, notes) -> np.ndarray | None:
    """The cached (N, 2) points of `notes` when the cache's fingerprint is `fingerprint`, else None."""
    def check(arrays):
        safe_io.expect(arrays, "names", (len(notes),), "U")
        safe_io.expect(arrays, "points", (len(notes), 2))

    cache = safe_io.load_npz_cache(path, fingerprint, check=check)
    if cache is None:
        return None  # none, damaged (said in a notice) or of another model, data or method
    if [str(name) for name in cache["names"]] != [note.spectrogram_name for note in notes]:
        return None
    return cache["points"].astype(np.float32)


def save_embedding(path: str | Path, points: np.ndarray, notes, fingerprint: dict) -> None:
    safe_io.save_npz_cache(path, {"points": np.asarray(points, np.float32),
                                  "names": np.array([note.spectrogram_name for note in notes])}, fingerprint)


def _timbre_label(note) -> str:
    return CLEAN_LABEL if note.magnitude == 0 else note.descriptor


def _discrete_colours(count: int, colormap: str):
    from matplotlib import colormaps

    cmap = colormaps[colormap]
    if count <= 1:
        return [cmap(0.0)]
    return [cmap(i / (count - 1)) for i in range(count)]


def _categorical_colours(count: int):
    from matplotlib import colormaps

    palette = list(colormaps["tab20"].colors) + list(colormaps["tab20b"].colors)
    return [palette[i % len(palette)] for i in range(count)]


def plot_latent_space(points: np.ndarray, notes, label: str = "all", method: str = "tsne",
                      figsize=(10, 7)):
    """Scatter-plot 2-D points of `notes`; returns a matplotlib Figure (not shown).

    label 'all': colour by descriptor, marker by pitch, size by magnitude (the thesis's default);
    'timbre', 'magnitude', 'pitch': colour by that alone. Legends sit outside the axes, pitches
    as note names in pitch order, magnitudes in numeric order. Clean notes (magnitude 0) are
    labelled as clean rather than by the descriptor folder they were filed under.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    points = np.asarray(points)
    notes = list(notes)
    figure = Figure(figsize=figsize, layout="constrained")
    grid = figure.add_gridspec(1, 3 if label == "all" else 2,
                               width_ratios=(4.2, 1.0, 1.0) if label == "all" else (4.6, 1.2))
    axes = figure.add_subplot(grid[0, 0])
    legend_axes = [figure.add_subplot(grid[0, i]) for i in range(1, 3 if label == "all" else 2)]
    for legend_axis in legend_axes:
        legend_axis.set_axis_off()
    axes.set_title(f"VAE latent space ({METHODS[method]}), by {_TITLES[label]}")
    axes.set_xlabel(f"{METHODS[method]} 1")
    axes.set_ylabel(f"{METHODS[method]} 2")
    timbres = [_timbre_label(n) for n in notes]
    timbre_order = [d for d in layout.DESCRIPTORS if d in timbres] + \
        sorted(set(timbres) - set(layout.DESCRIPTORS) - {CLEAN_LABEL}) + ([CLEAN_LABEL] if CLEAN_LABEL in timbres else [])
    pitch_order = order_pitches(n.pitch for n in notes)
    magnitude_order = order_magnitudes(n.magnitude for n in notes)
    legend_options = dict(loc="upper left", borderaxespad=0.0, fontsize="small", frameon=False)

    def columns(count):
        return 1 + (count - 1) // 26

    def categorical(values, order, colours, title):
        values = np.asarray(values)
        for value, colour in zip(order, colours):
            mask = values == value
            axes.scatter(points[mask, 0], points[mask, 1], s=18, color=colour, label=str(value),
                         edgecolors="none", alpha=0.85)
        handles, texts = axes.get_legend_handles_labels()
        legend_axes[0].legend(handles, texts, title=title, ncols=columns(len(order)), **legend_options)

    if label == "timbre":
        categorical(timbres, timbre_order, _categorical_colours(len(timbre_order)), "descriptor")
    elif label == "magnitude":
        categorical([n.magnitude for n in notes], magnitude_order,
                    _discrete_colours(len(magnitude_order), "viridis"), "magnitude")
    elif label == "pitch":
        categorical([n.pitch for n in notes], pitch_order, _discrete_colours(len(pitch_order), "turbo"), "pitch")
    else:
        colours = dict(zip(timbre_order, _categorical_colours(len(timbre_order))))
        markers = {p: _MARKERS[i % len(_MARKERS)] for i, p in enumerate(pitch_order)}
        sizes = np.array([8 + 0.5 * n.magnitude for n in notes])
        pitches = np.array([n.pitch for n in notes])
        note_colours = np.array([colours[t] for t in timbres])
        for pitch in pitch_order:
            mask = pitches == pitch
            axes.scatter(points[mask, 0], points[mask, 1], s=sizes[mask], marker=markers[pitch],
                         color=note_colours[mask], alpha=0.8, linewidths=0.6)
        handles = [Line2D([], [], linestyle="", marker="o", color=colours[t], label=t) for t in timbre_order]
        first = legend_axes[0].legend(handles=handles, title="descriptor", **legend_options)
        legend_axes[0].add_artist(first)
        handles = [Line2D([], [], linestyle="", marker="o", color="0.3", label=str(m),
                          markersize=np.sqrt(8 + 0.5 * m)) for m in magnitude_order]
        legend_axes[0].legend(handles=handles, title="magnitude", loc="lower left", borderaxespad=0.0,
                              fontsize="small", frameon=False)
        handles = [Line2D([], [], linestyle="", marker=markers[p], color="0.3", label=p) for p in pitch_order]
        legend_axes[1].legend(handles=handles, title="pitch", ncols=columns(len(pitch_order)), **legend_options)
    return figure


def save_figure(figure, path: str | Path, dpi: int = 110) -> Path:
    return safe_io.save_figure_atomic(figure, path, dpi=dpi, format="png")


def write_coordinates_csv(path: str | Path, points: np.ndarray, notes) -> Path:
    """Write x, y, descriptor, magnitude, pitch, string, fret, file for every note, atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["x", "y", "descriptor", "magnitude", "pitch", "string", "fret", "file"])
    for (x, y), note in zip(np.asarray(points), notes):
        writer.writerow([f"{x:.6g}", f"{y:.6g}", note.descriptor, note.magnitude, note.pitch, note.string,
                         note.fret, note.spectrogram_name])
    safe_io.write_bytes_atomic(path, buffer.getvalue().encode())
    return Path(path)


def write_html(path: str | Path, points: np.ndarray, notes, label: str = "all", method: str = "tsne") -> Path:
    """An interactive plotly scatter plot (hover: descriptor, magnitude, pitch, file) that works
    offline: plotly.js is written once beside it (plotly.min.js, ~4.6 MB, shared by every plot in
    the folder) rather than inlined in each HTML or loaded from a CDN."""
    import plotly.graph_objects as go

    notes = list(notes)
    points = np.asarray(points)
    if label == "magnitude":
        groups = [str(m) for m in order_magnitudes(n.magnitude for n in notes)]
        key = lambda n: str(n.magnitude)  # noqa: E731
    elif label == "pitch":
        groups = order_pitches(n.pitch for n in notes)
        key = lambda n: n.pitch  # noqa: E731
    else:
        timbres = {_timbre_label(n) for n in notes}
        groups = [d for d in layout.DESCRIPTORS if d in timbres] + sorted(timbres - set(layout.DESCRIPTORS))
        key = _timbre_label
    figure = go.Figure()
    keys = np.array([key(n) for n in notes])
    for group in groups:
        members = np.flatnonzero(keys == group).tolist()
        figure.add_trace(go.Scattergl(
            x=points[members, 0], y=points[members, 1], mode="markers", name=group,
            marker=dict(size=[6 + 0.1 * notes[i].magnitude for i in members] if label == "all" else 7),
            customdata=[[notes[i].descriptor, notes[i].magnitude, notes[i].pitch, notes[i].spectrogram_name]
                        for i in members],
            hovertemplate="%{customdata[0]} %{customdata[1]} %{customdata[2]}<br>%{customdata[3]}<extra></extra>"))
    figure.update_layout(title=f"VAE latent space ({METHODS[method]}), by {_TITLES[label]}",
                         xaxis_title=f"{METHODS[method]} 1", yaxis_title=f"{METHODS[method]} 2",
                         legend_title=_TITLES[label] if label != "all" else "descriptor")
    with safe_io.atomic_path(path) as temporary:
        figure.write_html(str(temporary), include_plotlyjs="directory", full_html=True)
    return Path(path)
