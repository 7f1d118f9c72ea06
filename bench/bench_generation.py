"""Benchmark generation: inversion quality and single-sample latency, as a user runs it.

1. Inversion: spectral convergence of Griffin-Lim audio against its target magnitude, over a
   random sample of the processed notes, with the default inversion (Nyquist row restored,
   n_fft 1024) and the thesis's (512 rows as they are, so n_fft 1022), 32 iterations each.
2. Latency: generate_single_sample.py end to end (interpreter start, TensorFlow import, model
   load, two inversions, writing) as a subprocess, median of --runs runs, on the processed set
   and on a set --scale times larger made of hard links to the same spectrograms under other
   valid names (other magnitudes), with their min/max entries.

Uses spectrograms/, minmax/ and model/ of the project (or --project DIR); with no model/ it
trains a demo model for one epoch into the work folder first. With no spectrograms/ it makes a
small demo set (make_demo_audio.py + process_audio_into_spectrograms.py) with --make-small.

    python bench/bench_generation.py                      # after 'make demo'
    python bench/bench_generation.py --make-small --inversion-notes 10 --runs 1 --scale 3   # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent

from semantic_timbre import layout, safe_io  # noqa: E402
from semantic_timbre.data import processed_data, spectrogram  # noqa: E402
from semantic_timbre.pipeline import invert  # noqa: E402

ENV = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="2")


def run(script: str, *args, cwd=None) -> float:
    """Run a project script; return its wall time in seconds (raises on failure)."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, str(REPO_ROOT / script), *map(str, args)], cwd=cwd, env=ENV,
                            capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{script} {' '.join(map(str, args))} failed:\n{result.stderr[-2000:]}")
    return elapsed


def make_small_set(work: Path) -> tuple[Path, Path]:
    audio = work / "audio"
    run("make_demo_audio.py", "--output", audio, "--descriptors", "Crunch", "Dark", "Bright",
        "--pitches", "E4", "A4", "E5", "--magnitudes", "50", "100")
    spectrograms, minmax = work / "spectrograms", work / "minmax"
    run("process_audio_into_spectrograms.py", "--audio-dir", audio, "--spectrograms-dir", spectrograms,
        "--minmax-dir", minmax, "--quiet")
    return spectrograms, minmax


def bench_inversion(notes, spectrograms_dir, minmax_dir, count: int, iterations: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    chosen = [notes[i] for i in sorted(rng.choice(len(notes), size=min(count, len(notes)), replace=False))]
    min_max = processed_data.load_min_max(minmax_dir)
    scores = {"default": [], "thesis": []}
    seconds = {"default": 0.0, "thesis": 0.0}
    for index, note in enumerate(chosen):
        normalised = processed_data.load_spectrogram(Path(spectrograms_dir) / note.spectrogram_name)
        low, high = processed_data.min_max_of(min_max, note)
        target = spectrogram.librosa.db_to_amplitude(spectrogram.denormalise(normalised, low, high))
        for name in scores:
            start = time.perf_counter()
            audio = invert(normalised, low, high, iterations, thesis_inversion=name == "thesis", seed=index)
            seconds[name] += time.perf_counter() - start
            scores[name].append(spectrogram.spectral_convergence(audio, target))
    return {"notes": len(chosen), "iterations": iterations,
            **{f"spectral_convergence_{name}": float(np.mean(values)) for name, values in scores.items()},
            **{f"spectral_convergence_{name}_median": float(np.median(values)) for name, values in scores.items()},
            **{f"seconds_per_inversion_{name}": seconds[name] / max(1, len(chosen)) for name in seconds}}


def make_scaled_set(notes, spectrograms_dir: Path, minmax_dir: Path, work: Path, scale: int) -> tuple[Path, Path, int]:
    """Hard-link every spectrogram under scale - 1 extra valid names (other magnitudes)."""
    target, target_minmax = work / f"spectrograms_x{scale}", work / f"minmax_x{scale}"
    target.mkdir(parents=True)
    min_max = processed_data.load_min_max(minmax_dir)
    scaled = {}
    taken = {note.spectrogram_name for note in notes}
    for note in notes:
        names = [note]
        for magnitude in sorted(range(101), key=lambda m: (abs(m - note.magnitude), m)):
            if len(names) == scale:
                break
            copy = layout.Note(note.descriptor, magnitude, note.string, note.fret, note.file_name)
            if copy.spectrogram_name not in taken:
                taken.add(copy.spectrogram_name)
                names.append(copy)
        source = Path(spectrograms_dir) / note.spectrogram_name
        for copy in names:
            try:
                os.link(source, target / copy.spectrogram_name)
            except OSError:
                shutil.copyfile(source, target / copy.spectrogram_name)
            scaled[copy.minmax_key] = min_max[note.minmax_key]
    safe_io.save_pickle_atomic(processed_data.min_max_path(target_minmax), scaled)
    return target, target_minmax, len(scaled)


def bench_latency(note, spectrograms_dir, minmax_dir, model_dir, work: Path, runs: int) -> dict:
    arguments = [note.descriptor, note.magnitude, note.pitch, "--string", note.string, "--seed", 0,
                 "--spectrograms-dir", spectrograms_dir, "--minmax-dir", minmax_dir, "--model-dir", model_dir,
                 "--output-dir", work / "singlesample"]
    times = [run("generate_single_sample.py", *arguments, cwd=work) for _ in range(runs)]
    return {"median_seconds": statistics.median(times), "runs": [round(t, 3) for t in times]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, default=REPO_ROOT, help="project folder (default: the repository)")
    parser.add_argument("--spectrograms-dir", type=Path, default=None)
    parser.add_argument("--minmax-dir", type=Path, default=None)
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--make-small", action="store_true",
                        help="make a small demo set in the work folder when there are no spectrograms")
    parser.add_argument("--inversion-notes", type=int, default=100, help="notes sampled for the inversion figures")
    parser.add_argument("--griffin-lim-iters", type=int, default=32)
    parser.add_argument("--runs", type=int, default=5, help="latency runs per data set (median reported)")
    parser.add_argument("--scale", type=int, default=10, help="size of the large set, in times the processed set")
    parser.add_argument("--skip-inversion", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "bench" / "results" / "generation.json")
    arguments = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_generation_"))
    spectrograms_dir = arguments.spectrograms_dir or arguments.project / layout.SPECTROGRAMS_DIR
    minmax_dir = arguments.minmax_dir or arguments.project / layout.MINMAX_DIR
    model_dir = arguments.model_dir or arguments.project / layout.MODEL_DIR
    if not (Path(spectrograms_dir).is_dir() and any(Path(spectrograms_dir).glob("*.npy"))):
        if not arguments.make_small:
            raise SystemExit(f"no spectrograms in {spectrograms_dir}: run 'make demo' first, or pass --make-small")
        print("making a small demo set...", flush=True)
        spectrograms_dir, minmax_dir = make_small_set(work)
    notes = processed_data.require_spectrograms(spectrograms_dir)
    if not arguments.skip_latency and not (Path(model_dir) / "weights.h5").is_file():
        model_dir = work / "model"
        print(f"no trained model: training a demo model for one epoch into {model_dir}...", flush=True)
        run("train_timbre_generation_vae.py", "--preset", "demo", "--epochs", 1, "--spectrograms-dir",
            spectrograms_dir, "--model-dir", model_dir, cwd=work)

    results = {"spectrograms": len(notes), "cpu_count": os.cpu_count(), "load_average_start": os.getloadavg()[0]}
    print(f"load average at start: {results['load_average_start']:.2f} (other processes slow every figure)")
    if not arguments.skip_inversion:
        print(f"inverting {min(arguments.inversion_notes, len(notes))} notes both ways...", flush=True)
        results["inversion"] = bench_inversion(notes, spectrograms_dir, minmax_dir, arguments.inversion_notes,
                                               arguments.griffin_lim_iters)
        inversion = results["inversion"]
        print(f"  spectral convergence, mean over {inversion['notes']} notes, {inversion['iterations']} iterations: "
              f"default {inversion['spectral_convergence_default']:.4f}, "
              f"thesis {inversion['spectral_convergence_thesis']:.4f}")
    if not arguments.skip_latency:
        note = next((n for n in notes if n.descriptor == "Crunch" and n.magnitude == 100 and n.pitch == "E4"),
                    notes[len(notes) // 2])
        print(f"single sample ({note.descriptor} {note.magnitude} {note.pitch}) on {len(notes)} spectrograms...",
              flush=True)
        small = bench_latency(note, spectrograms_dir, minmax_dir, model_dir, work, arguments.runs)
        big_dir, big_minmax, big_count = make_scaled_set(notes, Path(spectrograms_dir), Path(minmax_dir), work,
                                                         arguments.scale)
        print(f"single sample on {big_count} spectrograms...", flush=True)
        big = bench_latency(note, big_dir, big_minmax, model_dir, work, arguments.runs)
        results["latency"] = {"note": note.spectrogram_name, f"{len(notes)}_spectrograms": small,
                              f"{big_count}_spectrograms": big,
                              "ratio_large_to_small": big["median_seconds"] / small["median_seconds"]}
        print(f"  median end to end: {small['median_seconds']:.2f} s on {len(notes)}, "
              f"{big['median_seconds']:.2f} s on {big_count} (x{results['latency']['ratio_large_to_small']:.2f})")
    results["load_average_end"] = os.getloadavg()[0]
    print(f"load average at the end: {results['load_average_end']:.2f}")
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    safe_io.write_bytes_atomic(arguments.output, (json.dumps(results, indent=1) + "\n").encode())
    print(f"wrote {arguments.output}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
