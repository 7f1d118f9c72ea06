"""Benchmark of the demo preset's sound: train it as `make demo` does and measure held-out notes.

Trains `train_timbre_generation_vae.py --preset demo --validation-split 0.1` (the real command,
in process) on the processed demo set in spectrograms/ (run `make_demo_audio.py` and
`process_audio_into_spectrograms.py` first, or give --spectrograms-dir/--minmax-dir), into a
temporary model folder, then measures on the 10% of notes it held out (never trained on):

- minutes: the whole training command, wall clock (start-up and model saving included);
- LSD: log-spectral distance in dB between each held-out note's spectrogram and its
  reconstruction decoded from mu, both de-normalised with the note's own min/max (the
  evaluation report's definition), overall and per band (below 1 kHz, 1-4 kHz, above 4 kHz: a
  model that loses the harmonics shows it in the upper bands);
- SC: spectral convergence of the reconstruction inverted to audio with the default inversion,
  against the original note's magnitude (the report's definition), and, as the floor, of the
  original spectrogram inverted the same way.

Targets (issue): LSD <= 4 dB and SC <= 0.5 on held-out notes, training within 5 minutes on a
2-core machine. Extra arguments after `--` go to the training command (e.g. `-- --epochs 20
--filters 16 16 32 64 64`), so other presets can be measured the same way.

Usage: python bench/bench_demo_quality.py [--figure docs/demo_reconstruction.png] [-- TRAINING OPTIONS]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

BANDS_HZ = ((0, 1000), (1000, 4000), (4000, 11025))


def band_rows(low_hz: float, high_hz: float) -> slice:
    from semantic_timbre.spectrogram import N_FFT, SAMPLE_RATE

    hz_per_row = SAMPLE_RATE / N_FFT
    return slice(int(round(low_hz / hz_per_row)), int(round(high_hz / hz_per_row)))


def measure(model_dir: Path, spectrograms_dir: Path, minmax_dir: Path, inverted_notes: int, seed: int = 0) -> dict:
    """LSD (overall and per band) and SC of the held-out notes recorded in model_dir."""
    from semantic_timbre import evaluation, processed_data, spectrogram
    from semantic_timbre.vae import VAE

    names = json.loads((model_dir / "validation_split.json").read_text())["validation"]
    min_max = processed_data.load_min_max(minmax_dir)
    originals = np.stack([processed_data.load_spectrogram(spectrograms_dir / name) for name in names])
    vae = VAE.load(model_dir)
    mu, _, _ = vae.encode(originals)
    reconstructions = vae.decode(mu)[..., 0]
    originals_db, reconstructions_db = [], []
    for name, original, reconstruction in zip(names, originals, reconstructions):
        entry = min_max[f"spectrograms/{name}"]
        low, high = float(entry["min"]), float(entry["max"])
        originals_db.append(spectrogram.denormalise(original, low, high))
        reconstructions_db.append(spectrogram.denormalise(reconstruction, low, high))
    originals_db, reconstructions_db = np.stack(originals_db), np.stack(reconstructions_db)
    result = {"held_out_notes": len(names),
              "lsd_db": evaluation.log_spectral_distance_db(originals_db, reconstructions_db)}
    for low_hz, high_hz in BANDS_HZ:
        rows = band_rows(low_hz, high_hz)
        result[f"lsd_db_{low_hz}_{high_hz}_hz"] = evaluation.log_spectral_distance_db(
            originals_db[:, rows], reconstructions_db[:, rows])
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(names), min(inverted_notes, len(names)), replace=False))
    convergences, floor = [], []
    for index in chosen:
        target = spectrogram.db_to_amplitude(originals_db[index])
        generated = spectrogram.griffin_lim(spectrogram.db_to_amplitude(reconstructions_db[index]), random_state=seed)
        convergences.append(spectrogram.spectral_convergence(generated, target))
        inverted = spectrogram.griffin_lim(target, random_state=seed)
        floor.append(spectrogram.spectral_convergence(inverted, target))
    result.update(sc=float(np.mean(convergences)), sc_of_the_original_inverted=float(np.mean(floor)),
                  inverted_notes=len(chosen), mse=float(np.mean((originals - reconstructions) ** 2)))
    result["example"] = (names[chosen[0]], originals_db[chosen[0]], reconstructions_db[chosen[0]])
    return result


def save_figure(path: Path, name: str, original_db: np.ndarray, reconstruction_db: np.ndarray, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from semantic_timbre import safe_io
    from semantic_timbre.spectrogram import HOP_LENGTH, N_FFT, SAMPLE_RATE

    frames, rows = original_db.shape[1], original_db.shape[0]
    extent = (0, frames * HOP_LENGTH / SAMPLE_RATE, 0, rows * SAMPLE_RATE / N_FFT / 1000)
    figure, axes = plt.subplots(1, 2, figsize=(8, 3.2), sharey=True)
    low = min(original_db.min(), reconstruction_db.min())
    high = max(original_db.max(), reconstruction_db.max())
    for axis, data, label in zip(axes, (original_db, reconstruction_db), ("original", "generated (decoded from mu)")):
        image = axis.imshow(data, origin="lower", aspect="auto", extent=extent, vmin=low, vmax=high, cmap="magma")
        axis.set_title(f"{label}", fontsize=9)
        axis.set_xlabel("time (s)")
    axes[0].set_ylabel("frequency (kHz)")
    figure.colorbar(image, ax=axes, label="dB", shrink=0.9)
    figure.suptitle(f"{title}: held-out note {name.removesuffix('.npy')}", fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    with safe_io.atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=80, bbox_inches="tight")
    plt.close(figure)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spectrograms-dir", default=str(REPO_ROOT / "spectrograms"))
    parser.add_argument("--minmax-dir", default=str(REPO_ROOT / "minmax"))
    parser.add_argument("--inverted-notes", type=int, default=40, help="held-out notes inverted for SC (default 40)")
    parser.add_argument("--figure", help="write original vs generated spectrograms of a held-out note to this PNG")
    parser.add_argument("--keep-model", help="copy the trained model folder here")
    arguments = parser.parse_args(argv)
    spectrograms_dir, minmax_dir = Path(arguments.spectrograms_dir), Path(arguments.minmax_dir)
    if not any(spectrograms_dir.glob("*.npy")):
        print(f"no spectrograms in {spectrograms_dir}/: run make_demo_audio.py and "
              "process_audio_into_spectrograms.py first", file=sys.stderr)
        return 2

    import train_timbre_generation_vae as trainer
    from semantic_timbre.cli import run_main

    with tempfile.TemporaryDirectory(prefix="demo-quality-") as folder:
        model_dir = Path(folder) / "model"
        command = ["--preset", "demo", "--validation-split", "0.1", "--spectrograms-dir", str(spectrograms_dir),
                   "--model-dir", str(model_dir), *extra]
        print("training: train_timbre_generation_vae.py " + " ".join(command), flush=True)
        started = time.perf_counter()
        status = run_main(trainer.main, command)
        minutes = (time.perf_counter() - started) / 60
        if status:
            return status
        result = measure(model_dir, spectrograms_dir, minmax_dir, arguments.inverted_notes)
        name, original_db, reconstruction_db = result.pop("example")
        if arguments.figure:
            save_figure(Path(arguments.figure), name, original_db, reconstruction_db,
                        f"demo preset, {minutes:.1f} min of training")
        if arguments.keep_model:
            import shutil

            shutil.copytree(model_dir, arguments.keep_model, dirs_exist_ok=True)
    cpu = os.cpu_count()
    print(f"minutes {minutes:.2f} (wall, {cpu} logical CPUs) | held-out notes {result['held_out_notes']}")
    print(f"LSD {result['lsd_db']:.2f} dB (target <= 4)  per band: "
          + ", ".join(f"{low}-{high} Hz {result[f'lsd_db_{low}_{high}_hz']:.2f}" for low, high in BANDS_HZ))
    print(f"SC {result['sc']:.3f} (target <= 0.5) on {result['inverted_notes']} inverted notes; "
          f"the originals inverted the same way: {result['sc_of_the_original_inverted']:.3f}")
    print(f"MSE (normalised) {result['mse']:.5f}")
    print("json: " + json.dumps({"minutes": round(minutes, 2), **{key: round(value, 4) if isinstance(value, float)
                                                                 else value for key, value in result.items()},
                                 "training_options": extra}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
