"""Generate one note with the trained VAE: encode a note of the data set, decode it and write both
the generated note and the original spectrogram, each inverted to audio.

Writes singlesample/generated/0.wav and singlesample/original/0.wav (24-bit PCM, 22,050 Hz).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from semantic_timbre import layout
from semantic_timbre.cli import entry_point
from semantic_timbre.cli.generation_options import (add_generation_options, allowed_values_help,
                                                        generation_settings, parse_generation_arguments,
                                                        pipeline_of, print_written)


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser (its --help is rendered into the docs)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=allowed_values_help())
    parser.add_argument("descriptor", metavar="DESCRIPTOR", help="semantic descriptor, e.g. Crunch")
    parser.add_argument("magnitude", metavar="MAGNITUDE", help="0 (clean) to 100, e.g. 100")
    parser.add_argument("pitch", metavar="PITCH", help="note name, e.g. E4 or F#5")
    add_generation_options(parser, layout.SINGLE_SAMPLE_DIR)
    return parser


def main(argv=None) -> int:
    arguments = parse_generation_arguments(build_parser(), argv)
    # Everything that can be wrong with the request, the data, the model folder or the output
    # folders is reported before TensorFlow starts and before any file is written.
    pipeline = pipeline_of(arguments)
    note = pipeline.find(arguments.descriptor, arguments.magnitude, arguments.pitch, arguments.string,
                         arguments.pickup)
    written = pipeline.single_sample(note, arguments.output_dir, **generation_settings(arguments))
    return print_written(f"generated from {Path(arguments.spectrograms_dir) / note.spectrogram_name}:", written)


run = entry_point(main)  # `semantic-timbre-generate-sample` (pyproject.toml)
