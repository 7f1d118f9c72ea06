"""The first latent view at release-like size: a profile of its parts, then the four views and the
evaluation timed as a user runs them, the code of a baseline commit against the working tree's, in
one run on the same notes.

The set is bench_scale.py's release-shaped one (`--notes`, default 17,710: hard links to the demo's
files under release names, the demo model with its ONNX export). Two parts:

    profile   in this process, the current code: the first view's parts timed one by one (the
              cache's fingerprint, loading the model, encoding every note (reading the files, and
              the encoder alone on 2,048 of them), the t-SNE, caching the embedding, and for each
              of the four views the PNG, the CSV and the HTML)
    commands  visualise_latent_space.py with no flag, -timbre, -magnitude, -pitch, then
              evaluate_timbre_generation_vae.py --held-out-fraction 0.1 (the judge trained, as
              on a new set), first with the scripts of `--baseline` (a `git archive` of that
              commit), then with the working tree's; each one's outputs and caches removed first

The load average (os.getloadavg) is printed beside every figure: other processes on the cores
slow every step, so only ratios measured in the same run compare two versions.

    python bench/bench_latent.py                          # profile, then baseline 48e2908 against now
    python bench/bench_latent.py --parts profile          # the profile alone (about 1 minute)
    python bench/bench_latent.py --baseline HEAD~3 --parts commands
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

import bench_scale  # noqa: E402  (bench/, the script's folder)
from _common import work_folder  # noqa: E402
from semantic_timbre import layout  # noqa: E402

DEFAULT_BASELINE = "48e2908"  # before the latent view's read-ahead encoding and ONNX Runtime settings
VIEWS = bench_scale.VIEWS


def load() -> str:
    return "load " + ", ".join(f"{value:.2f}" for value in os.getloadavg())


def profile(project: Path) -> dict[str, float]:
    """{part: seconds} of the first view's parts (and the other views' outputs), in this process."""
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np

    from semantic_timbre.latent import plot as latent_plot
    from semantic_timbre.data import processed_data
    from semantic_timbre.runtime.inference import load_model
    from semantic_timbre.latent import encode_notes

    timings = {}

    def timed(name, function, *args, **kwargs):
        started = time.perf_counter()
        result = function(*args, **kwargs)
        timings[name] = time.perf_counter() - started
        print(f"  {name:<34} {timings[name]:7.1f} s   ({load()})", flush=True)
        return result

    os.chdir(project)
    notes = timed("list the notes", processed_data.require_spectrograms, layout.SPECTROGRAMS_DIR)
    parameters = latent_plot.embedding_parameters("tsne", len(notes))
    fingerprint = timed("fingerprint of the cache", latent_plot.embedding_fingerprint, layout.MODEL_DIR,
                        layout.SPECTROGRAMS_DIR, parameters)
    vae = timed("load the model", load_model, layout.MODEL_DIR, "auto", log=lambda line: None)
    sample = timed("read 2,048 spectrograms", lambda: np.stack([processed_data.load_spectrogram(
        Path(layout.SPECTROGRAMS_DIR) / note.spectrogram_name) for note in notes[:2048]]))
    timed("run the encoder on 2,048", vae.encode, sample, batch_size=64)
    codes = timed(f"encode all {len(notes):,} (read + run)", encode_notes, vae, notes, layout.SPECTROGRAMS_DIR,
                  progress=False)
    points = timed("t-SNE", latent_plot.reduce_to_2d, codes, "tsne")
    timed("cache the embedding", latent_plot.save_embedding, project / "profile_embedding.npz", points, notes,
          fingerprint)
    for label in latent_plot.LABELS:
        png = project / f"profile_{label}.png"
        timed(f"PNG ({label})", lambda: latent_plot.save_figure(latent_plot.plot_latent_space(points, notes, label),
                                                                png))
        timed(f"CSV ({label})", latent_plot.write_coordinates_csv, png.with_suffix(".csv"), points, notes)
        timed(f"HTML ({label})", latent_plot.write_html, png.with_suffix(".html"), points, notes, label)
    os.chdir(REPO_ROOT)
    return timings


def clear_outputs(project: Path) -> None:
    """Remove what the views and the evaluation wrote or cached, so the next version starts as a user would."""
    for path in project.glob("Visualise_VAE_Latent_Space_*"):
        path.unlink()
    for path in (project / "plotly.min.js", project / layout.MINMAX_DIR / "descriptor_judge.npz"):
        path.unlink(missing_ok=True)
    shutil.rmtree(project / "evaluation", ignore_errors=True)


def run_commands(source: Path, project: Path, log: Path) -> dict[str, float]:
    """{step: seconds} of the four views and the evaluation run with the scripts in `source`."""
    env = dict(os.environ, PYTHONPATH=str(source), TF_CPP_MIN_LOG_LEVEL="2")
    timings = {}
    clear_outputs(project)
    steps = [("view " + (flag[0] if flag else "(no flag)"), ["visualise_latent_space.py", *flag]) for flag in VIEWS]
    steps.append(("evaluation", ["evaluate_timbre_generation_vae.py", "--held-out-fraction", "0.1"]))
    for name, command in steps:
        with open(log, "ab") as output:
            output.write(f"\n$ {' '.join(command)}  ({source})\n".encode())
            output.flush()
            started = time.perf_counter()
            result = subprocess.run([sys.executable, str(source / command[0]), *command[1:]], cwd=project, env=env,
                                    stdout=output, stderr=subprocess.STDOUT)
        timings[name] = time.perf_counter() - started
        if result.returncode != 0:
            sys.exit(f"{' '.join(command)} failed with {source}; its output is in {log}:\n{log.read_text()[-3000:]}")
        print(f"  {name:<22} {timings[name]:7.1f} s   ({load()})", flush=True)
    timings["four views"] = sum(seconds for step, seconds in timings.items() if step.startswith("view"))
    return timings


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notes", type=int, default=17_710, help="notes of the set (default: 17,710)")
    parser.add_argument("--baseline", default=DEFAULT_BASELINE,
                        help=f"the commit whose scripts are the baseline (default: {DEFAULT_BASELINE})")
    parser.add_argument("--parts", nargs="+", choices=("profile", "commands"), default=["profile", "commands"],
                        help="what to run (default: both)")
    parser.add_argument("--project", type=Path, default=REPO_ROOT, help="the demo project (default: the repository)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print it")
    arguments = parser.parse_args(argv)
    source = arguments.project.resolve()
    if not (source / layout.MODEL_DIR / "weights.h5").is_file():
        sys.exit(f"{source} needs the demo's spectrograms/ and model/: run 'make demo' first")
    print(f"{os.cpu_count()} cores; at the start: {load()}", flush=True)
    same = os.stat(tempfile.gettempdir()).st_dev == os.stat(source).st_dev
    with work_folder("bench_latent_", arguments.keep, dir=None if same else source) as work:
        project = work / "set"
        count = bench_scale.build_set(source, project, arguments.notes)
        print(f"{count:,} notes in {project}", flush=True)
        if "profile" in arguments.parts:
            print("profile of the first view (this process, the working tree's code):", flush=True)
            timings = profile(project)
            total = sum(timings.values())
            print(f"  {'all parts':<34} {total:7.1f} s", flush=True)
        if "commands" in arguments.parts:
            baseline = work / "baseline"
            baseline.mkdir()
            archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", arguments.baseline], check=True,
                                     capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive, check=True)
            results = {}
            for label, scripts in ((f"baseline {arguments.baseline}", baseline), ("working tree", REPO_ROOT)):
                print(f"{label}:", flush=True)
                results[label] = run_commands(scripts, project, work / "commands.log")
            (before, old), (after, new) = results.items()
            print(f"\n{'step':<22} {before:>18} {after:>14}  ratio (before / after)")
            for step in new:
                print(f"{step:<22} {old[step]:16.1f} s {new[step]:12.1f} s  {old[step] / new[step]:6.2f}")
        print(f"at the end: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
