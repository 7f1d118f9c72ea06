"""Benchmark of the demo preset's sound, old against new: what a listener would notice, side by side.

Trains two models with the real command, each in its own process, on the processed demo set in
spectrograms/ (run `make_demo_audio.py` and `process_audio_into_spectrograms.py` first):

- old: the demo preset as it was (`--upsampling transposed --loss thesis --epochs 16`: stride-2
  transposed convolutions, 1e6 x MSE + KL);
- new: the demo preset (`train_timbre_generation_vae.py --preset demo --validation-split 0.1`),

then evaluates each with `evaluate_timbre_generation_vae.py` on the 10% of notes its training
held out (the same notes for both: the split depends on the names and the seed) and prints
every figure of the evaluation report that issue 18 names, for both, beside its target:

- minutes of training (wall clock, the whole command);
- LSD (log-spectral distance, dB), at the onset (first 50 ms) and in the sustain;
- the loudest-20-dB bins' mean error (dB; negative: too quiet) and the noise floor's;
- flicker: the even/odd frame alternation of the frame-mean dB (the originals' beside it);
- nearest-real identity (judge-free): is the nearest real note of the same pitch one of the
  note's own descriptor;
- the audio judge (trained on real notes with descriptor-agnostic augmentation): on the real
  notes (cross-validated), on real notes damaged to the model's LSD (robustness), on the
  reconstructions and on descriptors applied to clean notes.

With --figures DIR it also writes original / old / new spectrograms of one held-out Stuttering
note (a modulation) and one distortion note (Fuzz, else Crunch or another) to
DIR/demo_stuttering.png and DIR/demo_distortion.png.

Usage: python bench/bench_demo_quality.py [--output bench/results/demo_quality] [--figures docs]
       [--only old new] [--skip-training] [-- NEW PRESET'S TRAINING OPTIONS]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
PRESETS = {
    "old": ["--upsampling", "transposed", "--loss", "thesis", "--epochs", "16"],
    "new": [],
}
DISTORTIONS = ("Fuzz", "Crunch", "Distorted", "Saturated", "Overdriven", "Gritty")
#: (label, report key, field in the entry, target as text)
ROWS = (
    ("LSD (dB)", "log_spectral_distance_db", "value", "<= 4"),
    ("onset LSD (dB)", "onset_log_spectral_distance_db", "value", ""),
    ("sustain LSD (dB)", "onset_log_spectral_distance_db", "sustain_lsd_db", ""),
    ("loudest 20 dB: mean error (dB)", "loud_bin_error_db", "value", "within +-3"),
    ("loudest 20 dB: mean |error| (dB)", "loud_bin_error_db", "loud_abs_db", ""),
    ("floor: mean error (dB)", "loud_bin_error_db", "floor_bias_db", ""),
    ("flicker (dB)", "frame_flicker_db", "value", "<= 0.15"),
    ("flicker of the originals (dB)", "frame_flicker_db", "originals", ""),
    ("nearest-real identity", "nearest_real_identity", "value", ">= 0.85"),
    ("judge on real notes (CV)", "audio_descriptor_recognition", "judge_accuracy", ">= 0.95"),
    ("judge on damaged real notes", "judge_robustness", "value", ">= 0.8"),
    ("judge on reconstructions", "audio_descriptor_recognition", "reconstructions", ">= 0.7"),
    ("judge on applied descriptors", "audio_descriptor_recognition", "applied_descriptors", ">= 0.5"),
    ("spectral convergence", "spectral_convergence", "value", ""),
)


def run(command: list[str], log_path: Path) -> float:
    """Run a repository script in its own process; return its wall time in seconds."""
    print("$ " + " ".join(command), flush=True)
    started = time.perf_counter()
    with open(log_path, "w") as log:
        result = subprocess.run([sys.executable, *command], cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if result.returncode:
        sys.exit(f"'{' '.join(command)}' failed (exit {result.returncode}); see {log_path}")
    return time.perf_counter() - started


def figure_value(report: dict, key: str, field: str):
    value = report.get(key, {}).get(field)
    return value if isinstance(value, (int, float)) else None


def example_notes(names: list[str]) -> dict[str, str]:
    """The held-out Stuttering note and distortion note of the largest magnitude (first by name)."""
    from semantic_timbre import layout

    notes = [layout.parse_spectrogram_name(name) for name in names]
    chosen = {}
    for label, wanted in (("stuttering", ("Stuttering",)), ("distortion", DISTORTIONS)):
        for descriptor in wanted:
            candidates = [note for note in notes if note.descriptor == descriptor and not note.is_clean]
            if candidates:
                best = max(candidates, key=lambda note: (note.magnitude, note.spectrogram_name))
                chosen[label] = best.spectrogram_name
                break
    return chosen


def save_figure(path: Path, name: str, panels: list[tuple[str, np.ndarray]]) -> None:
    """Spectrograms side by side in dB (one colour scale), atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from semantic_timbre import safe_io
    from semantic_timbre.data.spectrogram import HOP_LENGTH, N_FFT, SAMPLE_RATE

    frames, rows = panels[0][1].shape[1], panels[0][1].shape[0]
    extent = (0, frames * HOP_LENGTH / SAMPLE_RATE, 0, rows * SAMPLE_RATE / N_FFT / 1000)
    low, high = min(data.min() for _, data in panels), max(data.max() for _, data in panels)
    figure, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.3), sharey=True)
    for axis, (label, data) in zip(axes, panels):
        image = axis.imshow(data, origin="lower", aspect="auto", extent=extent, vmin=low, vmax=high, cmap="magma")
        axis.set_title(label, fontsize=9)
        axis.set_xlabel("time (s)")
    axes[0].set_ylabel("frequency (kHz)")
    figure.colorbar(image, ax=axes, label="dB", shrink=0.9)
    figure.suptitle(f"held-out note {name.removesuffix('.npy')}", fontsize=9, y=1.1)
    path.parent.mkdir(parents=True, exist_ok=True)
    safe_io.save_figure_atomic(figure, path, close=True, dpi=72, bbox_inches="tight")


def write_figures(folder: Path, models: dict[str, Path], spectrograms_dir: Path, minmax_dir: Path) -> list[Path]:
    from semantic_timbre import layout
    from semantic_timbre.data import processed_data, spectrogram
    from semantic_timbre.network.vae import VAE

    titles = {"old": "old: transposed convolutions,\nthe thesis's loss", "new": "new: resize then convolve,\nthe spectral loss"}
    names = json.loads((models["new"] / "validation_split.json").read_text())["validation"]
    min_max = processed_data.load_min_max(minmax_dir)
    loaded = {label: VAE.load(model_dir) for label, model_dir in models.items()}
    written = []
    for label, name in example_notes(names).items():
        original = processed_data.load_spectrogram(spectrograms_dir / name)
        low, high = processed_data.min_max_of(min_max, layout.parse_spectrogram_name(name))
        panels = [("original", spectrogram.denormalise(original, low, high))]
        for model_label, vae in loaded.items():
            mu, _, _ = vae.encode(original[None, :, :, None])
            decoded = np.asarray(vae.decode(mu))[0, ..., 0]
            panels.append((titles.get(model_label, model_label), spectrogram.denormalise(decoded, low, high)))
        path = folder / f"demo_{label}.png"
        save_figure(path, name, panels)
        written.append(path)
    return written


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spectrograms-dir", default="spectrograms")
    parser.add_argument("--minmax-dir", default="minmax")
    parser.add_argument("--output", default="bench/results/demo_quality", help="where the models and reports go")
    parser.add_argument("--only", nargs="+", choices=tuple(PRESETS), default=list(PRESETS))
    parser.add_argument("--skip-training", action="store_true", help="use the models already in OUTPUT")
    parser.add_argument("--figures", help="write demo_stuttering.png and demo_distortion.png (original/old/new) here")
    arguments = parser.parse_args(argv)
    spectrograms_dir, minmax_dir = (REPO_ROOT / arguments.spectrograms_dir), (REPO_ROOT / arguments.minmax_dir)
    if not any(spectrograms_dir.glob("*.npy")):
        print(f"no spectrograms in {spectrograms_dir}/: run make_demo_audio.py and "
              "process_audio_into_spectrograms.py first", file=sys.stderr)
        return 2
    output = (REPO_ROOT / arguments.output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    reports, minutes, models = {}, {}, {}
    for label in arguments.only:
        model_dir = output / label
        models[label] = model_dir
        options = PRESETS[label] + (extra if label == "new" else [])
        if not arguments.skip_training:
            seconds = run(["train_timbre_generation_vae.py", "--preset", "demo", "--validation-split", "0.1",
                           "--spectrograms-dir", str(spectrograms_dir), "--minmax-dir", str(minmax_dir),
                           "--model-dir", str(model_dir), *options], output / f"train_{label}.log")
            minutes[label] = seconds / 60
            (model_dir / "bench_minutes.json").write_text(json.dumps({"minutes": minutes[label], "options": options}))
        elif (model_dir / "bench_minutes.json").is_file():
            minutes[label] = json.loads((model_dir / "bench_minutes.json").read_text())["minutes"]
        run(["evaluate_timbre_generation_vae.py", "--model-dir", str(model_dir), "--spectrograms-dir",
             str(spectrograms_dir), "--minmax-dir", str(minmax_dir), "--output-dir", str(model_dir / "evaluation")],
            output / f"evaluate_{label}.log")
        reports[label] = json.loads((model_dir / "evaluation" / "report.json").read_text())

    labels = list(reports)
    print(f"\nload average at the start {load:.2f}, {os.cpu_count()} logical CPUs; held-out notes: "
          + ", ".join(f"{label} {reports[label]['log_spectral_distance_db'].get('notes')}" for label in labels))
    width = max(len(row[0]) for row in ROWS) + 2
    print("figure".ljust(width) + "".join(label.rjust(10) for label in labels) + "   target")
    rows = [("training minutes", {label: minutes.get(label) for label in labels}, "<= 10")]
    for name, key, field, target in ROWS:
        rows.append((name, {label: figure_value(reports[label], key, field) for label in labels}, target))
    for name, values, target in rows:
        shown = "".join(("null" if values[label] is None else f"{values[label]:.3f}").rjust(10) for label in labels)
        print(name.ljust(width) + shown + f"   {target}")
    summary = {name: values for name, values, _ in rows}
    (output / "summary.json").write_text(json.dumps({"load_average": load, "figures": summary,
                                                     "presets": {label: PRESETS[label] for label in labels},
                                                     "new_extra_options": extra}, indent=2) + "\n")
    print(f"json: {output / 'summary.json'}")
    if arguments.figures and {"old", "new"} <= set(models):
        for path in write_figures(REPO_ROOT / arguments.figures, models, spectrograms_dir, minmax_dir):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
