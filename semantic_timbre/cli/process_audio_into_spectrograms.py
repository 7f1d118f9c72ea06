"""Turn every note under audio/ into the thesis's spectrogram and its min/max.

With no arguments it does what the thesis's script did: spectrograms/<DESCRIPTOR>X<MAGNITUDE>X
<file name>.npy (float32, 512 x 64, normalised to [0, 1]) and minmax/min_max_values.pkl. It runs
on every core, skips notes already processed, and skips (and lists) files it cannot process.
Besides the thesis's <STRING>-<FRET>.<ext> it accepts the variants the full release may use for
its pickups (more after <STRING>-<FRET> in the file name, or a folder below the magnitude); see
semantic_timbre/layout.py.
"""

from __future__ import annotations

import argparse
import sys

from semantic_timbre import layout
from semantic_timbre.cli import entry_point
from semantic_timbre.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser (its --help is rendered into the docs)."""
    parser = argparse.ArgumentParser(
        description="Turn the notes under audio/ into spectrograms/*.npy and minmax/min_max_values.pkl, "
                    "as the thesis did.")
    parser.add_argument("--audio-dir", default=layout.AUDIO_DIR,
                        help="audio folder in the release layout (default audio)")
    parser.add_argument("--spectrograms-dir", default=layout.SPECTROGRAMS_DIR,
                        help="where to write the spectrograms (default spectrograms)")
    parser.add_argument("--minmax-dir", default=layout.MINMAX_DIR,
                        help=f"where to write {layout.MINMAX_FILE_NAME} (default minmax)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="worker processes (default: every core; 1 runs one file after another)")
    parser.add_argument("--force", action="store_true",
                        help="re-process notes that are already processed")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no notices")
    parser.add_argument("--perceptual-features", action="store_true",
                        help="also compute every note's AudioCommons timbral features (for train_timbre_generation_vae.py "
                             "--conditioning perceptual; otherwise training computes them) into "
                             "minmax/perceptual_features.npz")
    return parser


def parse_arguments(argv=None) -> argparse.Namespace:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    if arguments.jobs is not None and arguments.jobs < 1:
        parser.error("--jobs must be 1 or more")
    return arguments


def main(argv=None) -> int:
    from semantic_timbre.data import preprocessing

    arguments = parse_arguments(argv)
    notice = (lambda line: None) if arguments.quiet else print
    minmax_file = f"{arguments.minmax_dir}/{layout.MINMAX_FILE_NAME}"
    try:
        summary = preprocessing.process_audio_folder(
            arguments.audio_dir, arguments.spectrograms_dir, arguments.minmax_dir, jobs=arguments.jobs,
            force=arguments.force, progress=not arguments.quiet, notice=notice)
    except preprocessing.PreprocessingInterrupted as interrupted:
        print(f"interrupted: saved {len(interrupted.summary.processed)} note(s) processed so far and "
              f"their min/max; run again to process the rest", file=sys.stderr)
        return 130
    for line in summary.lines(arguments.spectrograms_dir, minmax_file):
        print(line)
    if not summary.processed and not summary.skipped:
        raise UserError(f"none of the {len(summary.failed)} audio file(s) could be processed (reasons "
                        f"above); {layout.REAL_DATA_HINT}")
    if arguments.perceptual_features:
        from semantic_timbre.data import perceptual

        notes = layout.list_spectrograms(arguments.spectrograms_dir)
        perceptual.note_features(notes, audio_dir=arguments.audio_dir, minmax_dir=arguments.minmax_dir,
                                 workers=arguments.jobs, progress=not arguments.quiet, log=notice)
        print(f"perceptual features of {len(notes)} notes: {perceptual.cache_path(arguments.minmax_dir)}")
    return 0


run = entry_point(main)  # `semantic-timbre-preprocess` (pyproject.toml)
