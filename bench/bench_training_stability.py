"""How the demo preset's first epochs behave with and without its stability settings.

Trains the demo preset's architecture on the processed demo set (spectrograms/) from the same seed
with several settings, the first epochs only, and prints per setting the first epoch's mean KL
and reconstruction terms (as training logs them), the largest KL of a batch, the largest
log-variance and |mu| the encoder gave in training, and the gradients' global norm before clipping
(median and largest). Every step is the model's own loss and optimizer (VAE.compute_losses, Adam
with the preset's schedule), so what it shows is what `make demo`'s training does.

    .venv/bin/python bench/bench_training_stability.py [--epochs 2] [--spectrograms-dir spectrograms]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(setting: dict, paths, epochs: int, batch_size: int, seed: int) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from semantic_timbre.data import dataset
    from semantic_timbre.network import config
    from semantic_timbre import training

    options = training.TrainingOptions(configuration=dict(config.DEMO_CONFIGURATION), epochs=setting["epochs"],
                                       batch_size=batch_size, learning_rate=setting["learning_rate"],
                                       learning_rate_schedule="cosine", warmup_epochs=setting["warmup_epochs"],
                                       clip_gradient_norm=setting["clip"], seed=seed)
    steps = dataset.steps_per_epoch(len(paths), batch_size)
    keras.utils.set_random_seed(seed)
    vae = training.build_vae(options.configuration, training.learning_rate_of(options, steps), xla=False,
                             clip_gradient_norm=options.clip_gradient_norm)

    @tf.function
    def step(batch):
        with tf.GradientTape() as tape:
            total, reconstruction, kl, _ = vae.compute_losses(batch, training=True)
        gradients = tape.gradient(total, vae.trainable_weights)
        norm = tf.linalg.global_norm(gradients)
        vae.optimizer.apply_gradients(zip(gradients, vae.trainable_weights))
        return total, reconstruction, kl, norm

    @tf.function
    def codes(batch):
        mu, log_variance, _ = vae.encoder(batch, training=True)
        return tf.reduce_max(tf.abs(mu)), tf.reduce_max(log_variance)

    data = dataset.spectrogram_dataset(paths, batch_size, shuffle=True, seed=seed, repeat=True)
    rows = []
    start = time.perf_counter()
    for index, batch in zip(range(epochs * steps), data):
        mu_max, log_variance_max = codes(batch)  # the codes the step's batch gets, before its update
        total, reconstruction, kl, norm = (float(value) for value in step(batch))
        rows.append((index // steps, total, reconstruction, kl, norm, float(mu_max), float(log_variance_max)))
        if not np.isfinite(total):
            break
    seconds = time.perf_counter() - start
    rows = np.array(rows)
    first = rows[rows[:, 0] == 0]
    last = rows[rows[:, 0] == rows[:, 0].max()]
    return {"epoch 1 KL": first[:, 3].mean(), "epoch 1 reconstruction": first[:, 2].mean(),
            "max batch KL": rows[:, 3].max(), "max log-variance": rows[:, 6].max(), "max |mu|": rows[:, 5].max(),
            "median grad norm": np.median(rows[:, 4]), "max grad norm": rows[:, 4].max(),
            f"epoch {int(rows[:, 0].max()) + 1} loss": last[:, 1].mean(),
            "finite": bool(np.all(np.isfinite(rows[:, 1]))), "steps": len(rows), "seconds": seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spectrograms-dir", default=str(ROOT / "spectrograms"))
    parser.add_argument("--epochs", type=int, default=2, help="epochs trained per setting (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variant", action="append", metavar="RATE:WARMUP:CLIP",
                        help="another setting: learning rate, warm-up epochs, clip norm (0: none); repeatable; "
                             "given, only these run")
    arguments = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from semantic_timbre.data import dataset
    from semantic_timbre import training

    training.configure_cpu()
    from semantic_timbre.cli import train_timbre_generation_vae as script

    paths = dataset.spectrogram_files(arguments.spectrograms_dir)
    # The preset trains 90% of the notes (make demo's --validation-split 0.1).
    paths, _ = dataset.split_validation(paths, 0.1, arguments.seed)
    rate, epochs = script.DEMO_LEARNING_RATE, script.DEMO_EPOCHS
    warmup = script.DEMO_WARMUP_EPOCHS
    settings = {
        "no warm-up (before)": {"warmup_epochs": 0.0, "clip": None},
        f"warm-up {warmup:g} epochs (the demo preset)": {"warmup_epochs": warmup, "clip": None},
        "clipping at 1e6": {"warmup_epochs": 0.0, "clip": 1e6},
        f"warm-up {warmup:g} epochs and clipping at 1e6": {"warmup_epochs": warmup, "clip": 1e6},
    }
    if arguments.variant:
        settings = {}
        for text in arguments.variant:
            variant_rate, warmup, clip = (float(value) for value in text.split(":"))
            settings[f"learning rate {variant_rate:g}, warm-up {warmup:g}, clip {clip:g}"] = {
                "learning_rate": variant_rate, "warmup_epochs": warmup, "clip": clip or None}
    print(f"demo preset, {len(paths)} training notes, batch {script.DEMO_BATCH_SIZE}, learning rate {rate} "
          f"(cosine over {epochs} epochs), first {arguments.epochs} epochs, seed {arguments.seed}; "
          f"load average {os.getloadavg()[0]:.1f}")
    for name, setting in settings.items():
        result = run({"learning_rate": rate, **setting, "epochs": epochs}, paths, arguments.epochs,
                     script.DEMO_BATCH_SIZE, arguments.seed)
        print(f"\n{name}:")
        for key, value in result.items():
            print(f"  {key:24s} {value:.4g}" if isinstance(value, float) else f"  {key:24s} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
