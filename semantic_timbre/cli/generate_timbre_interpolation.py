"""Interpolate between two notes of the data set in the VAE's latent space.

Writes interpolated_samples/generated/0.wav ... (STEPS-1).wav, from the first note to the second
(end points included), and the two notes' own spectrograms inverted to
interpolated_samples/original/0.wav and 1.wav (24-bit PCM, 22,050 Hz).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from semantic_timbre import layout
from semantic_timbre.cli import entry_point
from semantic_timbre.cli.generation_options import (add_generation_options, allowed_values_help,
                                                        generation_settings, parse_generation_arguments,
                                                        pipeline_of, print_written)
from semantic_timbre.pipeline import INTERPOLATION_STEPS


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser (its --help is rendered into the docs)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=f"{allowed_values_help()} STEPS: {INTERPOLATION_STEPS[0]} to {INTERPOLATION_STEPS[-1]}.")
    for index in (1, 2):
        parser.add_argument(f"descriptor{index}", metavar=f"DESCRIPTOR{index}", help="semantic descriptor")
        parser.add_argument(f"magnitude{index}", metavar=f"MAGNITUDE{index}", help="0 (clean) to 100")
        parser.add_argument(f"pitch{index}", metavar=f"PITCH{index}", help="note name, e.g. E4")
    parser.add_argument("steps", metavar="STEPS",
                        help=f"number of notes written, end points included ({INTERPOLATION_STEPS[0]}-"
                             f"{INTERPOLATION_STEPS[-1]})")
    add_generation_options(parser, layout.INTERPOLATION_DIR)
    return parser


def main(argv=None) -> int:
    from semantic_timbre.pipeline import check_steps

    arguments = parse_generation_arguments(build_parser(), argv)
    steps = check_steps(arguments.steps)
    pipeline = pipeline_of(arguments)
    first = pipeline.find(arguments.descriptor1, arguments.magnitude1, arguments.pitch1, arguments.string,
                          arguments.pickup)
    second = pipeline.find(arguments.descriptor2, arguments.magnitude2, arguments.pitch2, arguments.string,
                           arguments.pickup)
    written = pipeline.interpolation(first, second, steps, arguments.output_dir, progress=True,
                                     **generation_settings(arguments))
    folder = Path(arguments.spectrograms_dir)
    return print_written(f"interpolated from {folder / first.spectrogram_name} to {folder / second.spectrogram_name}:",
                         written)


run = entry_point(main)  # `semantic-timbre-interpolate` (pyproject.toml)
