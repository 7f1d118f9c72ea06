"""The options and checks the commands share: the inversion's (--seed, --griffin-lim-iters,
--thesis-inversion: every command that writes audio) and those of generate_single_sample.py and
generate_timbre_interpolation.py."""

from __future__ import annotations

import argparse

from semantic_timbre.cli import check_seeds
from semantic_timbre.pipeline import MAX_GRIFFIN_LIM_ITERS, PICKUP_HELP, available_values, check_griffin_lim_iters
from semantic_timbre.runtime.inference import add_model_options


def add_inversion_options(parser: argparse.ArgumentParser, *, seed_help: str | None = None,
                          thesis_inversion_help: str | None = None) -> None:
    """--seed (when `seed_help` is given), --griffin-lim-iters, --thesis-inversion (when
    `thesis_inversion_help` is given), in that order; each command keeps its own help texts."""
    if seed_help is not None:
        parser.add_argument("--seed", type=int, default=None, help=seed_help)
    parser.add_argument("--griffin-lim-iters", type=int, default=32,
                        help=f"Griffin-Lim iterations, 1-{MAX_GRIFFIN_LIM_ITERS} (default: 32)")
    if thesis_inversion_help is not None:
        parser.add_argument("--thesis-inversion", action="store_true", help=thesis_inversion_help)


def add_generation_options(parser: argparse.ArgumentParser, output_dir: str) -> None:
    """Options shared by the single-sample and interpolation commands."""
    parser.add_argument("--string", type=int, default=None,
                        help="string (1-6) for a pitch that sits on several strings (default: string 1 if the "
                             "data has the note there, else the only string that has it)")
    parser.add_argument("--pickup", metavar="NAME", default=None, help=PICKUP_HELP)
    parser.add_argument("--use-mean", action="store_true",
                        help="decode the mean code mu instead of a sample z (the thesis samples z)")
    add_inversion_options(parser,
                          seed_help="seed for the latent sample and Griffin-Lim's initial phase (default: unseeded)",
                          thesis_inversion_help="invert exactly as the thesis did (512 rows as they are, so n_fft "
                                                "1022)")
    add_model_options(parser)
    parser.add_argument("--output-dir", default=output_dir,
                        help=f"folder that receives generated/ and original/ (default: {output_dir})")


def allowed_values_help() -> str:
    values = available_values()
    return (f"DESCRIPTOR: {', '.join(values.descriptors)}. MAGNITUDE: {', '.join(map(str, values.magnitudes))} "
            f"(0 = the clean note). PITCH: {', '.join(values.pitches)} (string 1). Other magnitudes, pitches and "
            f"strings are allowed when the processed data holds them.")


def check_common(arguments) -> None:
    """The inversion's options checked: --seed (and --random-state, where a command has them),
    then --griffin-lim-iters."""
    check_seeds(arguments)
    check_griffin_lim_iters(arguments.griffin_lim_iters)


def parse_generation_arguments(parser: argparse.ArgumentParser, argv):
    """`parser`'s arguments from `argv`, the inversion's options checked (check_common)."""
    arguments = parser.parse_args(argv)
    check_common(arguments)
    return arguments


def pipeline_of(arguments):
    """The pipeline.Pipeline over the folders and --runtime the commands' options name. Generating
    with it does, in this order: the notes' spectrograms and min/max read, their conditions checked
    (the model folder's configuration read and checked then, once, without TensorFlow), the output
    folders checked (they are created), then the model loaded."""
    from semantic_timbre.pipeline import Pipeline

    return Pipeline(arguments.model_dir, arguments.spectrograms_dir, arguments.minmax_dir, arguments.audio_dir,
                    arguments.runtime)


def generation_settings(arguments) -> dict:
    """The keyword arguments of Pipeline.single_sample and Pipeline.interpolation that come from
    the shared options."""
    return {"use_mean": arguments.use_mean, "seed": arguments.seed, "n_iter": arguments.griffin_lim_iters,
            "thesis_inversion": arguments.thesis_inversion}


def print_written(heading: str, written) -> int:
    """Print the heading and each written path, one a line; return the exit status 0."""
    print(heading)
    for path in written:
        print(path)
    return 0
