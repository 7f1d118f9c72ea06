"""Generate one note with the trained VAE: encode a note of the data set, decode it and write both
the generated note and the original spectrogram, each inverted to audio.

Writes singlesample/generated/0.wav and singlesample/original/0.wav (24-bit PCM, 22,050 Hz).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from semantic_timbre import layout
from semantic_timbre.cli import check_seeds, run_main
from semantic_timbre.commands.generation_options import (add_generation_options, allowed_values_help, check_common,
                                                        load_model, note_conditions)


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser (its --help is rendered into the docs)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=allowed_values_help())
    parser.add_argument("descriptor", metavar="DESCRIPTOR", help="semantic descriptor, e.g. Crunch")
    parser.add_argument("magnitude", metavar="MAGNITUDE", help="0 (clean) to 100, e.g. 100")
    parser.add_argument("pitch", metavar="PITCH", help="note name, e.g. E4 or F#5")
    add_generation_options(parser, layout.SINGLE_SAMPLE_DIR)
    return parser


def parse_arguments(argv):
    parser = build_parser()
    arguments = parser.parse_args(argv)
    check_seeds(arguments)
    check_common(arguments)
    return arguments


def main(argv=None) -> int:
    from semantic_timbre.generation import (check_output_folders, find_note_with_pickup, generate_single_sample,
                                            load_notes)

    arguments = parse_arguments(argv)
    # Everything that can be wrong with the request, the data, the model folder or the output
    # folders is reported before TensorFlow starts and before any file is written.
    note = find_note_with_pickup(arguments.descriptor, arguments.magnitude, arguments.pitch, arguments.string,
                                 arguments.spectrograms_dir, arguments.pickup)
    loaded = load_notes([note], arguments.spectrograms_dir, arguments.minmax_dir)
    conditions = note_conditions(arguments, [note])
    check_output_folders(arguments.output_dir)  # last: it creates them
    vae = load_model(arguments.model_dir, arguments.runtime)
    written = generate_single_sample(vae, note, arguments.spectrograms_dir, arguments.minmax_dir,
                                     arguments.output_dir, use_mean=arguments.use_mean, seed=arguments.seed,
                                     n_iter=arguments.griffin_lim_iters,
                                     thesis_inversion=arguments.thesis_inversion, loaded=loaded,
                                     conditions=conditions)
    print(f"generated from {Path(arguments.spectrograms_dir) / note.spectrogram_name}:")
    for path in written:
        print(path)
    return 0


def run() -> int:
    """The console entry point `semantic-timbre-generate-sample` (pyproject.toml): main() with one-line errors."""
    return run_main(main)


if __name__ == "__main__":
    sys.exit(run_main(main))
