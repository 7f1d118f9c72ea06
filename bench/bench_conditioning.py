"""Benchmark of the latent-space study's three models on the demo set: none, descriptor, perceptual.

Trains each with the same command (`train_timbre_generation_vae.py --preset demo
--validation-split 0.1 --conditioning C`, the real command in its own process), so all three
hold out the same notes; generates "Fuzz 60 A4" from its description with each
(`generate_from_description.py`); then evaluates the three together
(`evaluate_timbre_generation_vae.py --compare`, on the same notes and held-out notes) and prints
the comparison table, which is written to OUTPUT/evaluation/comparison.{json,md,png}.

Needs the processed demo set (`make demo`, or make_demo_audio.py and the pre-processor) with its
audio (the perceptual features are computed from it once and cached in minmax/).

Usage: python bench/bench_conditioning.py [--output bench/results/conditioning] [--epochs N]
       [--pitch A4] [--only none descriptor perceptual] [--skip-training]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CONDITIONINGS = ("none", "descriptor", "perceptual")


def run(command: list[str], log) -> float:
    """Run a repository script in its own process; return its wall time in seconds."""
    print("$ " + " ".join(command), flush=True)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, *command], cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    seconds = time.perf_counter() - start
    if result.returncode:
        sys.exit(f"'{' '.join(command)}' failed (exit {result.returncode}); see {log.name}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="bench/results/conditioning", help="where the models and reports go")
    parser.add_argument("--epochs", type=int, help="override the demo preset's epochs")
    parser.add_argument("--pitch", default="A4", help="pitch of the generated 'Fuzz 60' (default A4)")
    parser.add_argument("--only", nargs="+", choices=CONDITIONINGS, default=list(CONDITIONINGS))
    parser.add_argument("--skip-training", action="store_true", help="use the models already in OUTPUT")
    arguments = parser.parse_args()
    output = (REPO_ROOT / arguments.output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    relative = Path(os.path.relpath(output, REPO_ROOT))  # the scripts run in the repository: short names in the table
    print(f"load average at start: {os.getloadavg()[0]:.2f} (2-core machine: above 2 means other work shares it)")
    timings = {}
    with open(output / "bench_conditioning.log", "a") as log:
        for kind in arguments.only:
            model_dir = relative / f"model_{kind}"
            if not arguments.skip_training:
                command = ["train_timbre_generation_vae.py", "--preset", "demo", "--validation-split", "0.1",
                           "--conditioning", kind, "--model-dir", str(model_dir), "--restart"]
                if arguments.epochs:
                    command += ["--epochs", str(arguments.epochs)]
                timings[f"train {kind}"] = run(command, log)
            wav = relative / f"Fuzz60_{arguments.pitch}_{kind}.wav"
            timings[f"generate Fuzz 60 {arguments.pitch} ({kind})"] = run(
                ["generate_from_description.py", "Fuzz", "60", arguments.pitch, "--model-dir", str(model_dir),
                 "-o", str(wav), "--overwrite", "--seed", "0"], log)
            print(f"  wrote {wav}")
        timings["evaluate --compare"] = run(
            ["evaluate_timbre_generation_vae.py", "--compare", *[str(relative / f"model_{kind}") for kind in arguments.only],
             "--output-dir", str(relative / "evaluation")], log)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    for step, seconds in timings.items():
        print(f"{step}: {seconds / 60:.1f} min")
    print((output / "evaluation" / "comparison.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
