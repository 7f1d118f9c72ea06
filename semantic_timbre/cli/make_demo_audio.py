"""Write the synthetic demo data set: an audio/ tree in the Semantic Timbre Dataset's layout.

Usage: python make_demo_audio.py [--output audio] [--seed N] [--jobs N] [--force]
           [--descriptors D ...] [--magnitudes M ...] [--strings S ...] [--frets F ... | --pitches P ...]
           [--no-clean] [--full-release]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from semantic_timbre.data import demo_audio
from semantic_timbre import layout
from semantic_timbre.cli import check_seeds, entry_point
from semantic_timbre.errors import UserError


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser (its --help is rendered into the docs)."""
    parser = argparse.ArgumentParser(
        description="Write synthetic stand-ins for the Semantic Timbre Dataset (plucked-string notes "
                    "through real audio effects) in its layout <GROUP>/<DESCRIPTOR>/<MAGNITUDE>/"
                    "<STRING>-<FRET>.wav: mono, 44,100 Hz, 1 s, 24-bit. The default is the thesis's "
                    "selection (1,771 files).")
    parser.add_argument("--output", default=layout.AUDIO_DIR, help="folder to write (default: audio)")
    parser.add_argument("--seed", type=int, default=demo_audio.DEFAULT_SEED,
                        help=f"random seed; the same seed gives the same bytes (default: {demo_audio.DEFAULT_SEED})")
    parser.add_argument("--jobs", type=int, default=None,
                        help="worker processes (default: all cores); the files do not depend on it")
    parser.add_argument("--force", action="store_true",
                        help="write even if the output folder already holds files (same names are overwritten)")
    parser.add_argument("--descriptors", nargs="+", metavar="D",
                        help="only these descriptors (default: all 19)")
    parser.add_argument("--magnitudes", nargs="+", type=int, metavar="M",
                        help="magnitudes 0-100 (default: 25 50 75 100; with --full-release 0 5 ... 100); "
                             "0 puts clean notes under every chosen descriptor")
    parser.add_argument("--strings", nargs="+", type=int, metavar="S",
                        help="strings 1-6 (default: 1; with --full-release 1-6)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--frets", nargs="+", type=int, metavar="F", help="frets 0-22 (default: all)")
    where.add_argument("--pitches", nargs="+", metavar="P",
                       help="note names such as E4 A4 C#5: every fret that plays them on the chosen strings")
    parser.add_argument("--no-clean", action="store_true",
                        help="leave out the clean notes under ModulationFX/Fluttery/0")
    parser.add_argument("--full-release", action="store_true",
                        help="the full release's shape: strings 1-6 and magnitudes 0, 5, ..., 100 "
                             "under every descriptor")
    return parser


def parse_arguments(argv=None) -> argparse.Namespace:
    arguments = build_parser().parse_args(argv)
    check_seeds(arguments)
    return arguments


def _descriptors(names):
    if not names:
        return None
    by_lower = {descriptor.lower(): descriptor for descriptor in layout.DESCRIPTORS}
    unknown = [name for name in names if name.lower() not in by_lower]
    if unknown:
        raise UserError(f"unknown descriptor(s) {', '.join(unknown)}: choose from {', '.join(layout.DESCRIPTORS)}")
    return [by_lower[name.lower()] for name in names]


def _check_range(values, allowed, what):
    if values is None:
        return None
    wrong = [value for value in values if value not in allowed]
    if wrong:
        raise UserError(f"{what} {', '.join(map(str, wrong))} not allowed: use {min(allowed)} to {max(allowed)}")
    return values


def select_notes(arguments) -> list[layout.Note]:
    """Turn the command-line options into the list of notes to write."""
    strings = _check_range(arguments.strings, layout.RELEASE_STRINGS, "string(s)")
    magnitudes = _check_range(arguments.magnitudes, range(101), "magnitude(s)")
    frets = _check_range(arguments.frets, layout.FRETS, "fret(s)")
    positions = None
    if arguments.pitches:
        chosen_strings = strings or (layout.RELEASE_STRINGS if arguments.full_release else layout.THESIS_STRINGS)
        positions = set()
        for pitch in arguments.pitches:
            try:
                places = layout.frets_for_pitch(pitch, chosen_strings)
            except layout.LayoutError as error:
                raise UserError(str(error)) from None
            if not places:
                ranges = ", ".join(f"string {s} plays {layout.pitch_of(s, 0)} to {layout.pitch_of(s, layout.FRETS[-1])}"
                                   for s in chosen_strings)
                raise UserError(f"pitch {pitch} cannot be played on the chosen string(s): {ranges}; "
                                f"choose another pitch or add --strings")
            positions |= set(places.items())
    return demo_audio.demo_selection(
        descriptors=_descriptors(arguments.descriptors), magnitudes=magnitudes, strings=strings, frets=frets,
        positions=positions, clean=not arguments.no_clean, full_release=arguments.full_release)


def _first_visible_file(folder: Path):
    for root, _, files in os.walk(folder):
        for name in files:
            if not name.startswith("."):
                return Path(root, name)
    return None


def main(argv=None) -> int:
    arguments = parse_arguments(argv)
    if arguments.jobs is not None and arguments.jobs < 1:
        raise UserError(f"--jobs {arguments.jobs} is not allowed: give 1 or more worker processes")
    notes = select_notes(arguments)
    output = Path(arguments.output)
    if output.exists() and not output.is_dir():
        raise UserError(f"--output {output} is a file, not a folder: choose a folder")
    existing = _first_visible_file(output) if output.is_dir() else None
    if existing is not None and not arguments.force:
        raise UserError(f"{output} already holds files (e.g. {existing}); nothing was written: "
                        f"add --force to overwrite them, or choose another --output")
    jobs = arguments.jobs or _available_cores()

    print(demo_audio.STAND_IN_NOTICE)
    print(f"writing {len(notes):,} notes to {output}/ with up to {jobs} process(es), seed {arguments.seed}")
    start = time.perf_counter()
    written = demo_audio.write_demo_audio(output, notes, seed=arguments.seed, jobs=jobs)
    seconds = time.perf_counter() - start
    print(f"done: {written:,} synthetic demo files written to {output}/ in {seconds:.1f} s")
    return 0


run = entry_point(main)  # `semantic-timbre-make-demo-audio` (pyproject.toml)
