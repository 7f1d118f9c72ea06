"""Benchmark the two inference runtimes, ONNX Runtime and TensorFlow, in one run, from outside.

1. `generate_single_sample.py Crunch 100 E4 --use-mean --seed 0` end to end (interpreter start,
   imports, model load, two Griffin-Lim inversions, writing) with --runtime onnx and --runtime
   tensorflow, --runs times each, interleaved, under /usr/bin/time -v: median wall time and
   median peak resident memory.
2. Encoding every processed note (mu, batches of 64, as visualise_latent_space.py does) with each
   runtime, in a fresh process each, interleaved: the model load and the encoding timed apart.

Targets (issue 11, on a 2-core machine): single sample <= 1.5 s and <= 400 MB with ONNX and
<= 0.25x the TensorFlow path's time; encoding at least as fast with ONNX as with TensorFlow.
Other processes on the machine skew absolute times: the load average is printed at the start
and end, and the ratios are the figures to compare. Uses the project's spectrograms/, minmax/ and
model/ (or --project DIR); the model's ONNX export is made first if it is missing or stale.

    python bench/bench_runtime.py            # after 'make demo'
    python bench/bench_runtime.py --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="2")
RUNTIMES = ("onnx", "tensorflow")


def timed(command, cwd) -> tuple[float, float, float]:
    """Run `command` under /usr/bin/time -v; return (wall seconds, peak RSS in MB, CPU seconds:
    user + system, what a busy machine inflates least)."""
    result = subprocess.run(["/usr/bin/time", "-v", *map(str, command)], cwd=cwd, env=ENV, capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, command))} failed:\n{result.stderr[-3000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", result.stderr)
    hours, minutes, seconds = wall.groups()
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
    cpu = sum(float(re.search(rf"{kind} time \(seconds\): ([\d.]+)", result.stderr).group(1))
              for kind in ("User", "System"))
    return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds), int(rss.group(1)) / 1024, cpu


def encode_all(project: Path, runtime: str) -> dict:
    """In this process: load the model with `runtime` and encode every processed note (mu)."""
    os.chdir(project)
    start = time.perf_counter()
    from semantic_timbre.runtime import inference
    from semantic_timbre import layout
    from semantic_timbre.data import processed_data
    from semantic_timbre.latent import encode_notes

    notes = processed_data.require_spectrograms(layout.SPECTROGRAMS_DIR)
    model = inference.load_model(layout.MODEL_DIR, runtime)
    loaded = time.perf_counter()
    codes = encode_notes(model, notes, layout.SPECTROGRAMS_DIR, progress=False)
    done = time.perf_counter()
    return {"notes": len(codes), "load_s": loaded - start, "encode_s": done - loaded,
            "tensorflow_imported": "tensorflow" in sys.modules}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, default=REPO_ROOT, help="project folder (default: the repository)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each runtime (default: 3)")
    parser.add_argument("--encode-runs", type=int, default=1, help="encodings of all notes per runtime (default: 1)")
    parser.add_argument("--encode-only", choices=RUNTIMES, help=argparse.SUPPRESS)  # the child process's mode
    arguments = parser.parse_args(argv)
    project = arguments.project.resolve()
    if arguments.encode_only:
        print(json.dumps(encode_all(project, arguments.encode_only)))
        return 0

    from semantic_timbre.network import onnx_export

    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"load average at start: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    if not onnx_export.onnx_fresh(project / "model"):
        print("exporting model/ to ONNX first")
        subprocess.run([sys.executable, "-c", "import sys; from semantic_timbre import inference; "
                        "inference.load_model(sys.argv[1], 'onnx')", str(project / "model")],
                       env=ENV, check=True)

    single = {runtime: [] for runtime in RUNTIMES}
    with tempfile.TemporaryDirectory() as output:
        for _ in range(arguments.runs):
            for runtime in RUNTIMES:
                single[runtime].append(timed(
                    [sys.executable, REPO_ROOT / "generate_single_sample.py", "Crunch", "100", "E4", "--use-mean",
                     "--seed", "0", "--runtime", runtime, "--output-dir", output], project))
    print("\ngenerate_single_sample.py Crunch 100 E4 --use-mean --seed 0 "
          f"(median of {arguments.runs}, runs interleaved)")
    median = {runtime: [statistics.median(run[i] for run in runs) for i in range(3)] for runtime, runs in single.items()}
    for runtime, runs in single.items():
        print(f"  {runtime:10s} wall {median[runtime][0]:6.2f} s  CPU {median[runtime][2]:6.2f} s  peak RSS "
              f"{median[runtime][1]:5.0f} MB   (runs: {', '.join(f'{w:.2f} s/{m:.0f} MB' for w, m, _ in runs)})")
    ratio = median["onnx"][0] / median["tensorflow"][0]
    print(f"  onnx / tensorflow CPU: {median['onnx'][2] / median['tensorflow'][2]:.3f}x")
    print(f"  onnx / tensorflow wall: {ratio:.3f}x   targets: onnx <= 1.5 s "
          f"[{'met' if median['onnx'][0] <= 1.5 else 'MISSED'}], <= 400 MB "
          f"[{'met' if median['onnx'][1] <= 400 else 'MISSED'}], <= 0.25x [{'met' if ratio <= 0.25 else 'MISSED'}]")

    encodings = {runtime: [] for runtime in RUNTIMES}
    for _ in range(arguments.encode_runs):
        for runtime in RUNTIMES:
            result = subprocess.run([sys.executable, __file__, "--project", project, "--encode-only", runtime],
                                    env=ENV, capture_output=True, text=True)
            if result.returncode != 0:
                raise SystemExit(f"encoding with {runtime} failed:\n{result.stderr[-3000:]}")
            encodings[runtime].append(json.loads(result.stdout.strip().splitlines()[-1]))
    notes = encodings["onnx"][0]["notes"]
    print(f"\nencoding {notes} notes (mu, batches of 64), median of {arguments.encode_runs}, fresh process each")
    encode = {}
    for runtime, runs in encodings.items():
        encode[runtime] = statistics.median(run["encode_s"] for run in runs)
        load = statistics.median(run["load_s"] for run in runs)
        print(f"  {runtime:10s} encode {encode[runtime]:6.2f} s ({notes / encode[runtime]:6.0f} notes/s)  "
              f"model load {load:5.2f} s  tensorflow imported: {runs[0]['tensorflow_imported']}")
    ratio = encode["onnx"] / encode["tensorflow"]
    print(f"  onnx / tensorflow encode: {ratio:.3f}x   target <= 1x [{'met' if ratio <= 1 else 'MISSED'}]")
    print(f"\nload average at end: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
