"""Check what `make demo` left: every step's output there, the model finite and as good as stated,
no generated note silent or clipped. CI runs it after `make demo`; exit 1 lists each problem.

    python tools/check_demo.py [--root .] [--max-lsd-db 6]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

# The held-out log-spectral distance a trained demo model stays under (the demo preset's models
# measured 4.3-5.1 dB).
MAX_LSD_DB = 6.0
SILENT_PEAK = 1e-3  # a note whose peak is below this (-60 dBFS) is silent
CLIPPED_FRACTION = 1e-3  # more than this fraction of samples at full scale is clipping
FULL_SCALE = 0.999

STEPS = {
    "process_audio_into_spectrograms.py": ["minmax/min_max_values.pkl"],
    # The demo preset's resize decoder writes no parameters.pkl (the thesis's code could not build it).
    "train_timbre_generation_vae.py": ["model/weights.h5", "model/parameters.json",
                                       "model/training_log.csv", "model/checkpoint/checkpoint.npz"],
    "visualise_latent_space.py": ["Visualise_VAE_Latent_Space_tSNE.png"],
    "visualise_latent_space.py -timbre": ["Visualise_VAE_Latent_Space_tSNE_TimbreLabel.png"],
    "visualise_latent_space.py -magnitude": ["Visualise_VAE_Latent_Space_tSNE_MagnitudeLabel.png"],
    "visualise_latent_space.py -pitch": ["Visualise_VAE_Latent_Space_tSNE_PitchLabel.png"],
    "generate_single_sample.py": ["singlesample/generated/0.wav", "singlesample/original/0.wav"],
    "generate_timbre_interpolation.py": [f"interpolated_samples/generated/{index}.wav" for index in range(5)]
    + ["interpolated_samples/original/0.wav", "interpolated_samples/original/1.wav"],
    "evaluate_timbre_generation_vae.py": ["evaluation/report.json", "evaluation/report.md"],
    "apply_timbre_descriptor.py": ["singlesample/generated/A4_Fuzz75.wav"],
    "generate_from_description.py": ["singlesample/generated/Fuzz60_A4.wav"],
}


def check_wav(path: Path) -> str | None:
    """What is wrong with a generated note (None: nothing)."""
    import numpy as np
    import soundfile

    try:
        audio, _ = soundfile.read(str(path), dtype="float64", always_2d=True)
    except Exception as error:  # any unreadable file is a finding, whatever the library raised
        return f"{path} cannot be read as audio ({error})"
    if audio.size == 0:
        return f"{path} holds no samples"
    if not np.all(np.isfinite(audio)):
        return f"{path} holds NaN or infinite samples"
    peak = float(np.max(np.abs(audio)))
    if peak < SILENT_PEAK:
        return f"{path} is silent (peak {peak:.2g})"
    clipped = float(np.mean(np.abs(audio) >= FULL_SCALE))
    if clipped > CLIPPED_FRACTION:
        return f"{path} is clipped ({clipped:.2%} of its samples at full scale)"
    return None


def check(root: Path, max_lsd_db: float = MAX_LSD_DB) -> list[str]:
    """Every problem found under `root`, one line each (empty: the demo's outputs are all right)."""
    problems = []
    if not any((root / "spectrograms").glob("*.npy")):
        problems.append("process_audio_into_spectrograms.py: spectrograms/ holds no .npy files")
    for step, files in STEPS.items():
        for name in files:
            path = root / name
            if not path.is_file() or path.stat().st_size == 0:
                problems.append(f"{step}: {name} is missing or empty")
            elif path.suffix == ".wav":
                problem = check_wav(path)
                if problem:
                    problems.append(f"{step}: {problem}")
            elif path.suffix == ".png" and path.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
                problems.append(f"{step}: {name} is not a PNG image")
    log = root / "model/training_log.csv"
    if log.is_file():
        with open(log, newline="") as handle:
            rows = list(csv.DictReader(handle))
        values = [value for row in rows for key, value in row.items() if key != "epoch" and value]
        if not rows:
            problems.append("train_timbre_generation_vae.py: model/training_log.csv has no epochs")
        elif not all(math.isfinite(float(value)) for value in values):
            problems.append("train_timbre_generation_vae.py: model/training_log.csv holds a non-finite loss")
    report = root / "evaluation/report.json"
    if report.is_file():
        try:
            lsd = json.loads(report.read_text())["log_spectral_distance_db"]["value"]
        except (ValueError, KeyError, TypeError) as error:
            problems.append(f"evaluate_timbre_generation_vae.py: evaluation/report.json has no held-out LSD ({error})")
        else:
            if not isinstance(lsd, (int, float)) or not math.isfinite(lsd):
                problems.append(f"evaluate_timbre_generation_vae.py: the held-out LSD is not a finite number ({lsd})")
            elif lsd > max_lsd_db:
                problems.append(f"evaluate_timbre_generation_vae.py: the held-out LSD is {lsd:.2f} dB, above the "
                                f"{max_lsd_db:g} dB a trained demo model stays under")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Check the outputs of `make demo`.")
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[1]),
                        help="the project folder make demo ran in (default: this checkout)")
    parser.add_argument("--max-lsd-db", type=float, default=MAX_LSD_DB,
                        help=f"the highest held-out log-spectral distance allowed (default {MAX_LSD_DB:g} dB)")
    arguments = parser.parse_args(argv)
    problems = check(Path(arguments.root), arguments.max_lsd_db)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        print(f"make demo's outputs: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("make demo's outputs: every step's files are there, the model is finite, no note silent or clipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
