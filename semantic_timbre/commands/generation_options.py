"""The options and checks generate_single_sample.py and generate_timbre_interpolation.py share."""

from __future__ import annotations

import argparse

from semantic_timbre.cli import check_seeds
from semantic_timbre.generation import MAX_GRIFFIN_LIM_ITERS, PICKUP_HELP, available_values, check_griffin_lim_iters
from semantic_timbre.inference import add_model_options


def add_generation_options(parser: argparse.ArgumentParser, output_dir: str) -> None:
    """Options shared by the single-sample and interpolation commands."""
    parser.add_argument("--string", type=int, default=None,
                        help="string (1-6) for a pitch that sits on several strings (default: string 1 if the "
                             "data has the note there, else the only string that has it)")
    parser.add_argument("--pickup", metavar="NAME", default=None, help=PICKUP_HELP)
    parser.add_argument("--use-mean", action="store_true",
                        help="decode the mean code mu instead of a sample z (the thesis samples z)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed for the latent sample and Griffin-Lim's initial phase (default: unseeded)")
    parser.add_argument("--griffin-lim-iters", type=int, default=32,
                        help=f"Griffin-Lim iterations, 1-{MAX_GRIFFIN_LIM_ITERS} (default: 32)")
    parser.add_argument("--thesis-inversion", action="store_true",
                        help="invert exactly as the thesis did (512 rows as they are, so n_fft 1022)")
    add_model_options(parser)
    parser.add_argument("--output-dir", default=output_dir,
                        help=f"folder that receives generated/ and original/ (default: {output_dir})")


def allowed_values_help() -> str:
    values = available_values()
    return (f"DESCRIPTOR: {', '.join(values.descriptors)}. MAGNITUDE: {', '.join(map(str, values.magnitudes))} "
            f"(0 = the clean note). PITCH: {', '.join(values.pitches)} (string 1). Other magnitudes, pitches and "
            f"strings are allowed when the processed data holds them.")


def check_common(arguments) -> None:
    check_griffin_lim_iters(arguments.griffin_lim_iters)
    check_seeds(arguments)


def note_conditions(arguments, notes):
    """The notes' own conditions for a conditioned model (None for the thesis's), checked with the
    model folder before TensorFlow starts."""
    from semantic_timbre.conditioning import conditions_for_model

    return conditions_for_model(arguments.model_dir, notes, audio_dir=arguments.audio_dir,
                                minmax_dir=arguments.minmax_dir)


def load_model(model_dir, runtime="auto"):
    """The model for inference (inference.load_model: checked before any runtime starts)."""
    from semantic_timbre import inference

    return inference.load_model(model_dir, runtime)
