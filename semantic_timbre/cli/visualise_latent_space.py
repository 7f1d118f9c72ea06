"""Plot the trained VAE's latent space: every spectrogram encoded (mu), reduced to 2-D with t-SNE
(or PCA) and scatter-plotted, coloured by descriptor, magnitude or pitch.

Writes Visualise_VAE_Latent_Space_tSNE[_TimbreLabel|_MagnitudeLabel|_PitchLabel].png in the
current folder, with a CSV of the 2-D coordinates and an interactive HTML version beside it. The
2-D embedding is cached beside the plot (Visualise_VAE_Latent_Space_embedding_<method>.npz) with a
fingerprint of the model files, the spectrograms and the method's parameters, so the other views
of the same model and data reuse it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from semantic_timbre.cli import check_seeds, entry_point
from semantic_timbre.errors import UserError
from semantic_timbre.runtime.inference import add_model_options


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser (its --help is rendered into the docs)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    labels = parser.add_mutually_exclusive_group()
    labels.add_argument("-timbre", dest="label", action="store_const", const="timbre",
                        help="colour by descriptor only (..._TimbreLabel.png)")
    labels.add_argument("-magnitude", dest="label", action="store_const", const="magnitude",
                        help="colour by magnitude (..._MagnitudeLabel.png)")
    labels.add_argument("-pitch", dest="label", action="store_const", const="pitch",
                        help="colour by pitch (..._PitchLabel.png)")
    parser.set_defaults(label="all")
    parser.add_argument("--method", choices=("tsne", "tsne-sklearn", "pca"), default="tsne",
                        help="2-D reduction: tsne (default): openTSNE, FFT-accelerated, about linear in the notes; "
                             "tsne-sklearn: scikit-learn's TSNE, as the thesis (slow on many notes); pca")
    parser.add_argument("--perplexity", type=float, default=30.0,
                        help="t-SNE perplexity (default: 30, lowered to (notes - 1) / 3 for small sets)")
    parser.add_argument("--random-state", type=int, default=42,
                        help="seed of the reduction (default: 42, as the thesis)")
    parser.add_argument("--output", default=None,
                        help="PNG path (default: the thesis's file name in the current folder); the CSV and "
                             "HTML go beside it with the same name")
    add_model_options(parser, minmax_help="min/max folder, where a perceptual-conditioned model's features are "
                                          "cached (default: minmax)",
                      audio_help="the notes' audio, for perceptual features not yet cached (default: audio)")
    parser.add_argument("--batch-size", type=int, default=64, help="spectrograms encoded at a time (default: 64)")
    parser.add_argument("--dpi", type=int, default=110, help="PNG resolution (default: 110)")
    parser.add_argument("--no-html", action="store_true", help="do not write the interactive HTML version")
    parser.add_argument("--show", action="store_true", help="also open the plot in a window")
    return parser


def parse_arguments(argv):
    parser = build_parser()
    arguments = parser.parse_args(argv)
    check_seeds(arguments)
    if arguments.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {arguments.batch_size}")
    if not arguments.perplexity > 0:
        raise UserError(f"--perplexity must be above 0, got {arguments.perplexity:g}")
    if arguments.output is not None and Path(arguments.output).suffix.lower() != ".png":
        raise UserError(f"--output must end in .png, got {arguments.output}")
    return arguments


def embedding(arguments, notes, png: Path, config, conditions=None):
    """The notes' 2-D points: from the cache beside `png` when it was computed from the same model
    files, spectrograms, method and parameters; otherwise encoded by the model (`config`: its folder's
    checked ModelConfig; a conditioned model: each note with its `conditions` row), reduced and cached."""
    from semantic_timbre.latent import plot as latent_plot

    from importlib.metadata import PackageNotFoundError

    try:
        parameters = latent_plot.embedding_parameters(arguments.method, len(notes), arguments.random_state,
                                                      arguments.perplexity)
    except PackageNotFoundError as error:
        raise UserError(f"{error.name} is not installed: run 'pip install -r requirements.txt' (or use "
                        f"--method tsne-sklearn)") from None
    fingerprint = latent_plot.embedding_fingerprint(arguments.model_dir, arguments.spectrograms_dir, parameters)
    cache = latent_plot.embedding_cache_path(png, arguments.method)
    points = latent_plot.load_embedding(cache, fingerprint, notes)
    if points is not None:
        print(f"reusing the 2-D embedding cached in {cache} (same model, spectrograms and parameters)", file=sys.stderr)
        return points
    from semantic_timbre.runtime.inference import load_model
    from semantic_timbre.latent import encode_notes

    vae = load_model(arguments.model_dir, arguments.runtime, config=config)
    codes = encode_notes(vae, notes, arguments.spectrograms_dir, batch_size=arguments.batch_size, use_mean=True,
                         conditions=conditions)
    print(f"reducing {len(notes)} latent codes to 2-D with {arguments.method}...", file=sys.stderr)
    points = latent_plot.reduce_to_2d(codes, arguments.method, random_state=arguments.random_state,
                                      perplexity=arguments.perplexity)
    try:
        latent_plot.save_embedding(cache, points, notes, fingerprint)
    except OSError as error:
        print(f"warning: the 2-D embedding could not be cached in {cache} ({error.strerror or error})",
              file=sys.stderr)
    return points


def main(argv=None) -> int:
    arguments = parse_arguments(argv)
    import matplotlib

    if not arguments.show:
        matplotlib.use("Agg")
    from semantic_timbre.latent import plot as latent_plot
    from semantic_timbre.data import processed_data

    notes = processed_data.require_spectrograms(arguments.spectrograms_dir)
    if len(notes) < 2:
        raise UserError(f"{arguments.spectrograms_dir}/ holds {len(notes)} spectrogram: at least 2 are needed "
                        f"to plot a latent space")
    from semantic_timbre.network.conditioning import conditions_for_model

    # The model folder and each note's condition (a conditioned model) are checked before TensorFlow starts.
    config, conditions = conditions_for_model(arguments.model_dir, notes, audio_dir=arguments.audio_dir,
                                      minmax_dir=arguments.minmax_dir, progress=True,
                                      log=lambda line: print(line, file=sys.stderr))
    png = Path(arguments.output or latent_plot.plot_file_name(arguments.label, arguments.method))
    points = embedding(arguments, notes, png, config, conditions)
    figure = latent_plot.plot_latent_space(points, notes, arguments.label, arguments.method)
    written = [latent_plot.save_figure(figure, png, dpi=arguments.dpi),
               latent_plot.write_coordinates_csv(png.with_suffix(".csv"), points, notes)]
    if not arguments.no_html:
        written.append(latent_plot.write_html(png.with_suffix(".html"), points, notes, arguments.label,
                                              arguments.method))
    for path in written:
        print(path)
    if arguments.show:
        import matplotlib.image
        import matplotlib.pyplot as plt

        plt.figure(figsize=figure.get_size_inches())
        plt.imshow(matplotlib.image.imread(png))
        plt.axis("off")
        plt.show()
    return 0


run = entry_point(main)  # `semantic-timbre-visualise` (pyproject.toml)
