"""Training the timbre VAE: streamed data, a checkpoint every epoch, resuming, logs and plots.

What a run leaves in the model folder (model/ by default):
- checkpoint/checkpoint.npz: weights, optimizer state, the epochs done and the per-epoch losses,
  written atomically after every epoch (a killed run resumes from it);
- training_log.csv: one row per epoch (epoch, loss, reconstruction_loss, kl_loss, and val_*
  columns when validating), continued across resumes;
- loss_curve.png: the losses against the epoch;
- parameters.pkl, parameters.json, weights.h5: the final model (VAE.save), written at the end.

Stability (every preset): the sampling and the KL term bound the log-variance they take
(latent_sampling.LOG_VARIANCE_BOUND); a linear learning-rate warm-up (warmup_epochs, 3 epochs in the
demo preset) and gradient clipping by global norm (clip_gradient_norm, off in both presets) are
options. The thesis's preset uses neither: its loss, learning rate and optimizer are the thesis's.

Determinism: with the same seed, data and settings, a run on one machine gives the same losses
every time (weights, shuffling and the sampling noise are seeded; TensorFlow's CPU kernels are
deterministic for one thread layout). Across CPUs the float results differ in their last digits
(oneDNN picks other kernels for AVX2 and AVX-512), and these differences grow over training.

Modules: options.py (TrainingOptions, TrainingResult, the errors, check_options), devices.py (CPU
settings, logical CPUs, distribution, bfloat16), checkpoint.py (the checkpoint and where a run
resumes), history.py (training_log.csv, loss_curve.png), schedules.py (the learning rate),
loop.py (train). The names the commands, bench/ and tests use are re-exported here.
"""

from __future__ import annotations

from semantic_timbre.training.options import (LOG_FILE_NAME, LOSS_CURVE_FILE_NAME, TrainingOptions,
                                              VALIDATION_SPLIT_FILE_NAME, check_options)
from semantic_timbre.training.devices import (bfloat16_is_native, configure_cpu, configure_logical_cpus,
                                              cpu_has_native_bfloat16)
from semantic_timbre.training.checkpoint import (already_done, checkpoint_path, non_finite_arrays,
                                                 read_checkpoint_meta, resume_point)
from semantic_timbre.training.history import read_training_log
from semantic_timbre.training.loop import build_vae, learning_rate_of, train

__all__ = ["LOG_FILE_NAME", "LOSS_CURVE_FILE_NAME", "TrainingOptions", "VALIDATION_SPLIT_FILE_NAME", "check_options",
           "bfloat16_is_native", "configure_cpu", "configure_logical_cpus", "cpu_has_native_bfloat16", "already_done",
           "checkpoint_path", "non_finite_arrays", "read_checkpoint_meta", "resume_point", "read_training_log",
           "build_vae", "learning_rate_of", "train"]
