"""Benchmark of the audio judge's robustness: real notes damaged to a log-spectral distance.

Trains the descriptor judge (semantic_timbre/judge/) on the processed notes twice, with its
descriptor-agnostic augmentation (the judge the evaluation uses) and without it, then damages a
seeded random choice of the real non-clean notes with additive noise and with blur
(damage.damage_to_lsd) to each LSD asked for, and judges each damaged note with the
cross-validation fold's model that never heard it. Prints the cross-validated accuracy on the
undamaged notes and the rate at each LSD and kind, for both judges, with the seconds each took
to train (a ratio: the augmented judge against the plain one, in the same run).

Usage: python bench/bench_judge.py [--lsd 2 4 6] [--notes 170] [--spectrograms-dir spectrograms]
       [--minmax-dir minmax]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lsd", type=float, nargs="+", default=[2.0, 4.0, 6.0], help="target LSDs in dB")
    parser.add_argument("--notes", type=int, default=170, help="how many real notes to damage (default 170)")
    parser.add_argument("--spectrograms-dir", default="spectrograms")
    parser.add_argument("--minmax-dir", default="minmax")
    arguments = parser.parse_args(argv)

    from semantic_timbre.data import damage, processed_data
    from semantic_timbre import judge

    spectrograms = Path(arguments.spectrograms_dir)
    notes = processed_data.require_spectrograms(spectrograms)
    min_max = processed_data.load_min_max(arguments.minmax_dir)
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} logical CPUs; {len(notes)} notes")
    judges, seconds = {}, {}
    for label, augment in (("plain", False), ("augmented", True)):
        started = time.perf_counter()
        judges[label] = judge.train_judge(notes, spectrograms, min_max, augment=augment)
        seconds[label] = time.perf_counter() - started
    trained = judges["augmented"]
    if trained.accuracy is None:
        print(f"no cross-validation: {trained.accuracy_reason}", file=sys.stderr)
        return 2
    by_name = {note.spectrogram_name: note for note in notes}
    chosen = np.random.default_rng(0).choice(len(trained.names), min(arguments.notes, len(trained.names)),
                                             replace=False)
    originals = []
    for index in chosen:
        note = by_name[trained.names[index]]
        originals.append((processed_data.load_spectrogram(spectrograms / note.spectrogram_name),
                          *processed_data.min_max_of(min_max, note), note.spectrogram_name, note.descriptor))
    names = [name for *_, name, _ in originals]
    intended = np.array([descriptor for *_, descriptor in originals])
    print(f"training: plain {seconds['plain']:.1f} s, augmented {seconds['augmented']:.1f} s "
          f"({seconds['augmented'] / seconds['plain']:.1f}x); rows {trained.augmented_rows} damaged copies")
    print("judge".ljust(10) + "real (CV)".rjust(10) + "".join(f"{kind} {lsd:g} dB".rjust(14)
                                                             for lsd in arguments.lsd for kind in ("noise", "blur")))
    rows = {label: [f"{model.accuracy:.3f}".rjust(10)] for label, model in judges.items()}
    for lsd in arguments.lsd:
        for kind in ("noise", "blur"):
            features = np.concatenate([judge.spectrogram_features(
                damage.damage_to_lsd(x, kind, lsd, low=low, high=high, random_state=i)[0], low, high)
                for i, (x, low, high, _, _) in enumerate(originals)])
            for label, model in judges.items():
                rate = float(np.mean(model.predict_unseen(names, features) == intended))
                rows[label].append(f"{rate:.3f}".rjust(14))
    for label, cells in rows.items():
        print(label.ljust(10) + "".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
