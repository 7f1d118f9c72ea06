"""A training run's settings (TrainingOptions, the thesis's defaults), its result, the files it
writes and the errors that stop it; check_options checks the settings before TensorFlow starts."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path


from semantic_timbre import layout
from semantic_timbre.errors import UserError
from semantic_timbre.training.devices import bfloat16_is_native


CHECKPOINT_SUBDIR = "checkpoint"


CHECKPOINT_FILE_NAME = "checkpoint.npz"


LOG_FILE_NAME = "training_log.csv"


LOSS_CURVE_FILE_NAME = "loss_curve.png"


VALIDATION_SPLIT_FILE_NAME = "validation_split.json"


RECALIBRATION_EXAMPLES = 2048


LOSS_NAMES = ("loss", "reconstruction_loss", "kl_loss")


LEARNING_RATE_SCHEDULES = ("constant", "cosine")


COSINE_FINAL_FRACTION = 0.02


MIXED_PRECISION_POLICIES = {"off": None, "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


CHECKPOINT_FORMAT = 1


MAX_RECOVERIES = 3  # recoveries from a non-finite loss in one run before it stops


# Recovery puts back the state of the start of the epoch or of the last RECOVERY_SNAPSHOT_STEPS
# batches, whichever is later (one step back is often already past saving: huge but finite weights).
RECOVERY_SNAPSHOT_STEPS = 100


RECOVERY_LEARNING_RATE_FACTOR = 0.5


class TrainingDivergedError(UserError):
    """The loss became NaN or infinite."""


class CheckpointError(UserError):
    """A checkpoint cannot be used to resume."""


@dataclass
class TrainingOptions:
    """Everything a training run needs; the defaults are the thesis's."""

    configuration: dict
    spectrograms_dir: str | Path = layout.SPECTROGRAMS_DIR
    model_dir: str | Path = layout.MODEL_DIR
    epochs: int = 300
    batch_size: int = 64
    learning_rate: float = 0.0005
    learning_rate_schedule: str = "constant"  # "constant" (the thesis) or "cosine" (decay to 2% over the run)
    seed: int = 0
    validation_split: float = 0.0
    resume: str = "auto"  # "auto" (resume when a matching checkpoint exists), "resume" or "restart"
    tensorboard_dir: str | Path | None = None
    mixed_precision: str = "off"
    distribute: str = "none"
    xla: str = "auto"  # "on", "off", or "auto": on with a GPU, off on CPUs (where it measured slower)
    recalibrate_batch_norm: bool = True  # False: keep the moving statistics training left (the thesis)
    warmup_epochs: float = 0.0  # a linear learning-rate warm-up over this many epochs' steps (0: none)
    clip_gradient_norm: float | None = None  # clip the gradients' global norm to this (None: no clipping)
    nan_recovery: bool = True  # False: stop at the first non-finite loss
    conditioning: str = "none"  # "none" (the thesis), "descriptor" or "perceptual" (conditioning.py)
    audio_dir: str | Path = layout.AUDIO_DIR  # the notes' audio, for perceptual features not yet cached
    minmax_dir: str | Path = layout.MINMAX_DIR  # where the perceptual features are cached
    files: list | None = None  # the spectrogram files, if already listed and checked (dataset.spectrogram_files)
    steps_per_epoch: int | None = None  # None: one pass over the training files (for benchmarks)
    verbose: int | None = None  # Keras verbosity; None: a progress bar on a terminal, else a line per epoch
    log: object = field(default=print, repr=False)


@dataclass
class TrainingResult:
    epochs_done: int
    first_epoch: int
    history: list  # one dict per epoch since the start of training (resumes included)
    examples_per_second: float


def check_options(options: TrainingOptions) -> None:
    """Check the numbers and names of `options` (no TensorFlow needed); raise UserError."""
    if options.epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {options.epochs}")
    if options.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {options.batch_size}")
    if not (options.learning_rate > 0 and math.isfinite(options.learning_rate)):
        raise UserError(f"--learning-rate must be a number above 0, got {options.learning_rate}")
    if not (options.warmup_epochs >= 0 and math.isfinite(options.warmup_epochs)):
        raise UserError(f"--warmup-epochs must be a number of at least 0, got {options.warmup_epochs}")
    if options.clip_gradient_norm is not None and not (options.clip_gradient_norm > 0
                                                       and math.isfinite(options.clip_gradient_norm)):
        raise UserError(f"--clip-gradient-norm must be a number above 0, got {options.clip_gradient_norm}")
    if options.learning_rate_schedule not in LEARNING_RATE_SCHEDULES:
        raise UserError(f"unknown learning-rate schedule '{options.learning_rate_schedule}': choose "
                        f"{' or '.join(LEARNING_RATE_SCHEDULES)}")
    if options.mixed_precision not in MIXED_PRECISION_POLICIES:
        raise UserError(f"unknown mixed precision '{options.mixed_precision}': choose off, bfloat16 or float16")
    if options.xla not in ("auto", "on", "off"):
        raise UserError(f"unknown XLA setting '{options.xla}': choose auto, on or off")
    if options.mixed_precision == "bfloat16" and not bfloat16_is_native():
        raise UserError("--mixed-precision bfloat16 needs a GPU or a CPU with bfloat16 instructions (AVX512_BF16 "
                        "or AMX); this CPU has neither and would emulate them, many times slower than float32: "
                        "train without --mixed-precision")
    from semantic_timbre.network.config import CONDITIONINGS

    if options.conditioning not in CONDITIONINGS:
        raise UserError(f"unknown conditioning '{options.conditioning}': choose {', '.join(CONDITIONINGS)}")

