"""Training the timbre VAE: streamed data, a checkpoint every epoch, resuming, logs and plots.

What a run leaves in the model folder (model/ by default):
- checkpoint/checkpoint.npz: weights, optimizer state, the epochs done and the per-epoch losses,
  written atomically after every epoch (a killed run resumes from it);
- training_log.csv: one row per epoch (epoch, loss, reconstruction_loss, kl_loss, and val_*
  columns when validating), continued across resumes;
- loss_curve.png: the losses against the epoch;
- parameters.pkl, parameters.json, weights.h5: the final model (VAE.save), written at the end.

A NaN or infinite loss is recovered from: training puts back the last weights and optimizer state
it holds in memory that gave a finite loss (copies are kept at each epoch's end and every
RECOVERY_SNAPSHOT_STEPS batches), halves the learning
rate, says so in one line and goes on. After MAX_RECOVERIES such recoveries in a run (or at the
first one with nan_recovery off, or when a spectrogram holds NaN values) the run stops; the last
good checkpoint and model stay as they were. An epoch's checkpoint is written only once its weights
are known good: finite, and giving a finite loss on the next batch (an update can leave finite
weights that give NaN from then on), so the checkpoint on disk never holds weights that do not train
on. A checkpoint of other settings, or a finished model without a checkpoint, is never replaced
without --restart.

Stability (every preset): the sampling and the KL term bound the log-variance they take
(latent_sampling.LOG_VARIANCE_BOUND); a linear learning-rate warm-up (warmup_epochs, 3 epochs in the
demo preset) and gradient clipping by global norm (clip_gradient_norm, off in both presets) are
options. The thesis's preset uses neither: its loss, learning rate and optimizer are the thesis's.

Determinism: with the same seed, data and settings, a run on one machine gives the same losses
every time (weights, shuffling and the sampling noise are seeded; TensorFlow's CPU kernels are
deterministic for one thread layout). Across CPUs the float results differ in their last digits
(oneDNN picks other kernels for AVX2 and AVX-512), and these differences grow over training.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from semantic_timbre.data import dataset
from semantic_timbre import layout, safe_io
from semantic_timbre.errors import UserError
from semantic_timbre.data.processed_data import ProcessedDataError

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
DISTRIBUTIONS = ("none", "mirrored", "multi-worker")
# CPU flags (Linux /proc/cpuinfo) of native bfloat16 arithmetic: x86's AVX512_BF16 and AMX, Arm's BF16
NATIVE_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")
# ONEDNN_MAX_CPU_ISA values that leave out oneDNN's bfloat16 kernels (e.g. make test-avx2's AVX2)
ONEDNN_ISAS_WITHOUT_BFLOAT16 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX512_CORE", "AVX512_CORE_VNNI")
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


def checkpoint_path(model_dir: str | Path = layout.MODEL_DIR) -> Path:
    return Path(model_dir) / CHECKPOINT_SUBDIR / CHECKPOINT_FILE_NAME


def configure_cpu(distribute: str = "none") -> None:
    """Settings of TensorFlow's CPU runtime that make training faster and steadier; they take
    effect only when this runs before TensorFlow is imported, and a variable already set in the
    environment is left as it is.

    - TF_CPU_ALLOCATOR_USE_BFC=true: TensorFlow keeps and reuses the memory of freed tensors
      instead of handing it back to the system (glibc maps every block over 32 MB afresh, and
      the kernel zeroes its pages again at the first touch: 1.1 million page faults in 4 steps of
      batch 8 of the thesis configuration, and 20% more CPU time a step than with it).
    - TF_NUM_INTEROP_THREADS=1 without distribution: one op at a time, each over every core.
      By default as many ops as cores may run at once (e.g. a convolution's gradients with
      respect to its input and to its filters), each over every core, so they compete for the
      cores and the caches. On 2 shared cores (bench/bench_training.py, batch 16, thesis
      configuration) a step took 13 to 20 s of wall time for 7 to 8 s of CPU time with
      TensorFlow's defaults, and 9 to 18 s for 6 s with both settings: how much the default
      loses depends on what else runs at the time, hence runs of one code up to 40% apart.
      Distributed training keeps the default (replicas and their all-reduce run concurrently).
    """
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
    if distribute == "none":
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")


def configure_logical_cpus(count: int | None) -> None:
    """Split the CPU into `count` logical devices (a testing aid for distributed training on a
    machine without GPUs). Must run before TensorFlow initialises its devices."""
    if not count or count <= 1:
        return
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as error:
        raise UserError(f"cannot split the CPU into {count} logical devices after TensorFlow has started "
                        f"({error})") from None


def make_strategy(distribute: str = "none"):
    """Return the tf.distribute strategy for 'none', 'mirrored' or 'multi-worker'.

    'mirrored' uses every GPU of this machine, or every logical CPU when there is no GPU;
    'multi-worker' reads the cluster from the TF_CONFIG environment variable.
    """
    import tensorflow as tf

    if distribute == "none":
        return tf.distribute.get_strategy()
    if distribute == "mirrored":
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        return tf.distribute.MirroredStrategy([device.name for device in tf.config.list_logical_devices("CPU")])
    if distribute == "multi-worker":
        if "TF_CONFIG" in os.environ:
            try:
                json.loads(os.environ["TF_CONFIG"])
            except ValueError:
                raise UserError("TF_CONFIG is not valid JSON: set it to the cluster description "
                                "(see the README's GPU notes)") from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise UserError(f"unknown distribution '{distribute}': choose one of {', '.join(DISTRIBUTIONS)}")


def is_chief(strategy) -> bool:
    """True on the one worker that writes files (always true without multi-worker training)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "cluster_spec", None) or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (task_type == "worker" and task_id == 0
                                    and "chief" not in resolver.cluster_spec().as_dict())


# ---------------------------------------------------------------- checkpoints

#: The configuration's choices beyond the thesis's five parameters, and the thesis's value of each.
THESIS_CHOICES = {"upsampling": "transposed", "loss": "thesis"}


def _fingerprint(parameters, spectrograms_dir, model_dir, conditioning: str = "none", configuration=None) -> dict:
    # The decoder's upsampling and the loss are recorded only when they are not the thesis's, so
    # checkpoints written before they existed still resume.
    configuration = configuration or {}
    extras = {key: configuration[key] for key, default in THESIS_CHOICES.items()
              if configuration.get(key, default) != default}
    return {"parameters": json.loads(json.dumps(parameters)), "conditioning": conditioning, **extras,
            # relative to the model folder, both resolved: the same folder however it is typed
            # ('spectrograms', './spectrograms/', an absolute path), and a moved project still resumes
            "spectrograms_dir_from_model_dir": os.path.relpath(Path(spectrograms_dir).resolve(),
                                                               Path(model_dir).resolve())}


def _fingerprint_differences(stored: dict, current: dict, model_dir) -> list[str]:
    """What differs between a checkpoint's settings and this run's, in words (empty: the same)."""
    differences = []
    stored_parameters, parameters = stored.get("parameters"), current["parameters"]
    if stored_parameters != parameters:
        from semantic_timbre.network.config import PARAMETER_NAMES

        if isinstance(stored_parameters, list) and len(stored_parameters) == len(PARAMETER_NAMES):
            differences += [f"{name} {new} here, {old} in the checkpoint" for name, old, new
                            in zip(PARAMETER_NAMES, stored_parameters, parameters) if old != new]
        else:
            differences.append("the architecture")
    for key, default in THESIS_CHOICES.items():
        if stored.get(key, default) != current.get(key, default):
            differences.append(f"{key} {current.get(key, default)} here, {stored.get(key, default)} in the checkpoint")
    stored_conditioning = stored.get("conditioning", "none")
    if stored_conditioning != current.get("conditioning", "none"):
        differences.append(f"conditioning {current['conditioning']} here, {stored_conditioning} in the checkpoint")
    base = Path(model_dir).resolve()
    if "spectrograms_dir_from_model_dir" in stored:
        stored_folder = (base / stored["spectrograms_dir_from_model_dir"]).resolve()
    else:  # checkpoints of earlier versions recorded the folder as typed, from the working folder
        stored_folder = Path(stored.get("spectrograms_dir", "")).resolve()
    folder = (base / current["spectrograms_dir_from_model_dir"]).resolve()
    if stored_folder != folder:
        differences.append(f"spectrograms folder {folder} here, {stored_folder} in the checkpoint")
    return differences


def _variable_arrays(variables) -> list[np.ndarray]:
    return [np.asarray(variable.numpy() if hasattr(variable, "numpy") else variable) for variable in variables]


def checkpoint_arrays(vae) -> dict:
    """Copies of the weights and the optimizer state, as a checkpoint stores them."""
    arrays = {f"weight_{index}": value for index, value in enumerate(_variable_arrays(vae.weights))}
    arrays.update({f"optimizer_{index}": value for index, value in enumerate(_variable_arrays(vae.optimizer.variables))})
    return arrays


def non_finite_arrays(arrays: dict) -> list[str]:
    """The names of the arrays holding NaN or infinite values."""
    return [name for name, value in arrays.items()
            if np.issubdtype(value.dtype, np.floating) and not np.all(np.isfinite(value))]


def write_checkpoint(path: str | Path, arrays: dict, weights: int, epoch: int, fingerprint: dict,
                     history: list, extra: dict | None = None) -> None:
    """Write checkpoint arrays, the epochs done, the history (and `extra` metadata: the learning
    rate's recovery scale, the recoveries so far) to one .npz, atomically.

    Raises ValueError (writing nothing) if any array holds NaN or infinite values.
    """
    bad = non_finite_arrays(arrays)
    if bad:
        raise ValueError(f"refusing to write a checkpoint with NaN or infinite values ({', '.join(bad[:3])})")
    meta = {**(extra or {}), "format": CHECKPOINT_FORMAT, "epoch": epoch, "fingerprint": fingerprint,
            "history": history, "weights": weights, "optimizer_variables": len(arrays) - weights}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays, meta=np.array(json.dumps(meta)))
    safe_io.write_bytes_atomic(path, buffer.getvalue())


def save_checkpoint(path: str | Path, vae, epoch: int, fingerprint: dict, history: list) -> None:
    """Write weights, optimizer state, the epochs done and the history to one .npz, atomically."""
    write_checkpoint(path, checkpoint_arrays(vae), len(vae.weights), epoch, fingerprint, history)


def _checkpoint_advice(path) -> str:
    return f"delete {path} (or use --restart) to train from scratch, or --model-dir for another folder"


def _read_checkpoint(path: Path) -> tuple[dict, dict]:
    """(meta, arrays) of a checkpoint through the one cache reader (safe_io.read_npz), its metadata
    and the arrays it lists checked; CheckpointError naming the file and what to do otherwise."""
    def check(arrays):
        meta = json.loads(str(safe_io.expect(arrays, "meta", (), "U")))
        if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("an unknown format")
        counts = meta.get("weights"), meta.get("optimizer_variables"), meta.get("epoch")
        if not all(isinstance(count, int) and count >= 0 for count in counts):
            raise ValueError("its metadata lacks the counts of weights, optimizer variables or epochs")
        if not isinstance(meta.get("fingerprint"), dict) or not isinstance(meta.get("history", []), list):
            raise ValueError("its metadata lacks the settings it was trained with")
        for prefix, count in (("weight", counts[0]), ("optimizer", counts[1])):
            for index in range(count):
                value = arrays.get(f"{prefix}_{index}")
                if value is None:
                    raise ValueError(f"{prefix} {index} is missing")
                if value.dtype.kind not in "fiub":
                    raise ValueError(f"{prefix} {index} holds {value.dtype}")
                if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
                    raise ValueError(f"{prefix} {index} holds NaN or infinite values")
        arrays["meta"] = meta

    try:
        arrays = safe_io.read_npz(path, check=check)
    except safe_io.CacheReadError as error:
        raise CheckpointError(f"checkpoint {error}: {_checkpoint_advice(path)}") from None
    return arrays.pop("meta"), arrays


def read_checkpoint_meta(path: str | Path) -> dict | None:
    """Return the metadata of a checkpoint (epoch, fingerprint, history), or None if there is none.
    A checkpoint that cannot be read or is damaged (truncated, empty, not an archive, NaN weights,
    arrays missing) raises CheckpointError naming it and the ways on."""
    path = Path(path)
    if not path.is_file():
        return None
    return _read_checkpoint(path)[0]


def restore_checkpoint(path: str | Path, vae) -> dict:
    """Load weights and optimizer state of a checkpoint into a compiled VAE; return its metadata."""
    path = Path(path)
    meta, archive = _read_checkpoint(path)
    vae.optimizer.build(vae.trainable_variables)
    for prefix, variables, count in (("weight", vae.weights, meta["weights"]),
                                     ("optimizer", vae.optimizer.variables, meta["optimizer_variables"])):
        if count != len(variables):
            raise CheckpointError(f"checkpoint {path} holds {count} {prefix} variables where this model has "
                                  f"{len(variables)} (another precision or architecture): use --restart")
        for index, variable in enumerate(variables):
            value = archive[f"{prefix}_{index}"]
            if tuple(value.shape) != tuple(variable.shape):
                raise CheckpointError(f"checkpoint {path} does not fit this model ({prefix} {index} has "
                                      f"shape {value.shape}, expected {tuple(variable.shape)}): use --restart")
    restore_arrays(vae, archive)
    return meta


def restore_arrays(vae, arrays: dict) -> None:
    """Put arrays as checkpoint_arrays gives them (a checkpoint's, or copies held in memory) back
    into the model's weights and optimizer state, each in its variable's dtype."""
    for prefix, variables in (("weight", vae.weights), ("optimizer", vae.optimizer.variables)):
        for index, variable in enumerate(variables):
            value = arrays[f"{prefix}_{index}"]
            variable.assign(value.astype(variable.dtype, copy=False) if hasattr(variable, "dtype") else value)


# ---------------------------------------------------------------- logs

def _columns(history: list) -> list[str]:
    columns = ["epoch", *LOSS_NAMES]
    if any(f"val_{name}" in row for row in history for name in LOSS_NAMES):
        columns += [f"val_{name}" for name in LOSS_NAMES]
    return columns


def write_training_log(path: str | Path, history: list) -> None:
    """Write the per-epoch losses as CSV, atomically."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=_columns(history), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({key: (repr(float(value)) if key != "epoch" else int(value)) for key, value in row.items()
                         if key in writer.fieldnames})
    safe_io.write_bytes_atomic(path, text.getvalue().encode())


def read_training_log(path: str | Path) -> list[dict]:
    """Read a training_log.csv back as a list of dicts (epoch as int, losses as float)."""
    with open(path, newline="") as handle:
        return [{key: (int(value) if key == "epoch" else float(value)) for key, value in row.items() if value != ""}
                for row in csv.DictReader(handle)]


def plot_loss_curve(path: str | Path, history: list) -> None:
    """Plot total, reconstruction and KL losses (training, and validation when present) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for axis, name in zip(axes, LOSS_NAMES):
        axis.plot([row["epoch"] for row in history if name in row], [row[name] for row in history if name in row],
                  marker=".", label="training")
        if any(f"val_{name}" in row for row in history):
            axis.plot([row["epoch"] for row in history if f"val_{name}" in row],
                      [row[f"val_{name}"] for row in history if f"val_{name}" in row], marker=".",
                      linestyle="--", label="validation")
            axis.legend()
        axis.set_title(name.replace("_", " "))
        axis.set_xlabel("epoch")
        if all(row[name] > 0 for row in history if name in row):
            axis.set_yscale("log")
        axis.grid(True, alpha=0.3)
    figure.tight_layout()
    safe_io.save_figure_atomic(figure, path, close=True, dpi=100)


# ---------------------------------------------------------------- the run

def _epoch_recorder(vae, model_dir, fingerprint, history, chief, *, recovery: bool = True, log=print,
                    data_paths=(), recoveries_before: int = 0, learning_rate: float = 0.0005):
    """One Keras callback that recovers from (or stops at) a non-finite loss or weight, and writes
    each good epoch's checkpoint, CSV and loss curve (on the chief worker only).

    Copies of the state are taken at the start, at each epoch's end and every
    RECOVERY_SNAPSHOT_STEPS batches; a copy becomes the last good state once the next batch's loss,
    computed with it, is finite (and the copy itself is finite). A non-finite loss (or non-finite weights or losses at an epoch's end) puts the last good state
    back, multiplies the learning rate by RECOVERY_LEARNING_RATE_FACTOR and goes on, up to
    MAX_RECOVERIES times in a run; then, or without `recovery`, training stops. The first time,
    the spectrograms are checked for NaN values (then no recovery can help: it stops at once).
    An epoch's state is written only when the next batch's loss, computed with exactly those
    weights, is finite (or when training ends): the last checkpoint on disk is always one that
    trains on. `recoveries_before`: those of the runs this one resumes (kept in the checkpoint; the
    bound counts this run's only); `learning_rate`: the run's, which a constant rate is scaled from.
    """
    import keras

    from semantic_timbre.training.schedules import learning_rate_scale, set_learning_rate_scale

    class EpochRecorder(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.diverged = None  # (epoch, batch or None, what) of the non-finite loss that stopped training
            self.bad_files = []  # spectrograms with NaN or infinite values, found at the first non-finite loss
            self.checked_data = False
            self.recoveries = 0
            self.epoch_start = None
            self.seconds = []
            self.pending = None  # (epoch, arrays, history) not yet known to train on
            self.written_epoch = None
            self.good = None  # the last state known to give a finite loss
            self.latest = None  # the state after the last update, not yet known good

        def on_train_begin(self, logs=None):
            self.since_snapshot = 0
            if recovery:
                self.latest = checkpoint_arrays(vae)

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            self.batches_since_recovery = None  # None: no recovery in this epoch
            self.epoch_start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            loss = float((logs or {}).get("loss", 0.0))
            if not math.isfinite(loss):
                self._non_finite(batch, f"the loss became {loss}")
                return
            if self.batches_since_recovery is not None:
                self.batches_since_recovery += 1
            if recovery:
                self._snapshot(batch)
            if self.pending is not None:
                self._write_pending()

        def _snapshot(self, batch):
            """After a finite loss: the snapshot it came from is good; every RECOVERY_SNAPSHOT_STEPS
            batches, a new one."""
            if self.latest is not None:
                self.good, self.latest = self.latest, None
            self.since_snapshot += 1
            if self.since_snapshot >= RECOVERY_SNAPSHOT_STEPS:
                self.since_snapshot = 0
                latest = checkpoint_arrays(vae)
                # The loss leaves out what training does not use (batch-norm moving statistics):
                # a state is good when its loss is finite and it is finite too.
                if non_finite_arrays(latest):
                    self._non_finite(batch, "the weights became NaN or infinite")
                else:
                    self.latest = latest

        def _write_pending(self):
            epoch, arrays, rows = self.pending
            self.pending = None
            if chief:
                write_checkpoint(checkpoint_path(model_dir), arrays, len(vae.weights), epoch, fingerprint, rows,
                                 {"learning_rate_scale": learning_rate_scale(vae.optimizer),
                                  "recoveries": recoveries_before + self.recoveries})
                write_training_log(Path(model_dir) / LOG_FILE_NAME, rows)
                plot_loss_curve(Path(model_dir) / LOSS_CURVE_FILE_NAME, rows)
            self.written_epoch = epoch

        def _can_recover(self) -> bool:
            if not recovery or self.good is None or self.recoveries >= MAX_RECOVERIES:
                return False
            if not self.checked_data:  # the first time: is it the data?
                self.bad_files, self.checked_data = dataset.find_non_finite(list(data_paths)), True
            return not self.bad_files

        def _non_finite(self, batch, what) -> bool:
            """Recover (True) or stop (False) after a non-finite loss in `batch` (None: at the epoch's end)."""
            where = f"epoch {self.epoch + 1}" + (f", batch {batch + 1}" if batch is not None else "")
            if self.diverged is not None:
                return False
            if not self._can_recover():
                self.diverged = (self.epoch, batch, what)
                self.model.stop_training = True
                if batch == 0 and self.pending is not None:
                    # The weights this loss came from are the pending epoch's: they are not kept.
                    self.pending = None
                    history.pop()
                return False
            self.recoveries += 1
            restore_arrays(vae, self.good)
            self.latest, self.since_snapshot = None, 0
            if self.pending is not None:  # the pending epoch's last weights gave it: keep the good ones
                epoch, _, rows = self.pending
                self.pending = (epoch, self.good, rows)
            for metric in vae.metrics:  # the epoch's running means start again from the good weights
                metric.reset_state()
            self.batches_since_recovery = 0
            scale = learning_rate_scale(vae.optimizer) * RECOVERY_LEARNING_RATE_FACTOR
            rate = set_learning_rate_scale(vae.optimizer, scale, learning_rate)
            log(f"{what} in {where}: put back the last good weights and optimizer state, halved the learning "
                f"rate (now {rate:.3g}) and went on (recovery {self.recoveries} of {MAX_RECOVERIES})")
            return True

        def on_epoch_end(self, epoch, logs=None):
            if self.diverged is not None:
                return
            self.seconds.append(time.perf_counter() - self.epoch_start)
            logs = logs or {}
            row = {"epoch": epoch + 1}
            # After a recovery in the epoch's last batch no training loss of the epoch is left to log.
            keys = [f"val_{name}" for name in LOSS_NAMES] if self.batches_since_recovery == 0 else \
                [key for name in LOSS_NAMES for key in (name, f"val_{name}")]
            for key in keys:
                if key in logs:
                    row[key] = float(logs[key])
            bad = [f"{key} became {value}" for key, value in row.items() if key != "epoch" and not math.isfinite(value)]
            arrays = checkpoint_arrays(vae)
            if not bad and non_finite_arrays(arrays):
                bad = ["the weights became NaN or infinite"]
            if bad:
                if not self._non_finite(None, bad[0]):
                    return
                arrays = self.good
                row = {key: value for key, value in row.items() if key == "epoch" or math.isfinite(value)}
            history.append(row)
            self.pending = (epoch + 1, arrays, list(history))
            if recovery and arrays is not self.good:  # the next snapshot: the epoch's end
                self.latest, self.since_snapshot = arrays, 0

        def on_train_end(self, logs=None):
            if self.pending is not None and self.diverged is None:
                self._write_pending()

    return EpochRecorder()


def _log_losses_as_vectors(vae) -> None:
    """Make the train and test steps return each loss as a 1-element vector.

    Keras 3 averages the step's outputs over workers with strategy.reduce("MEAN", value, axis=0),
    which fails on scalars under MultiWorkerMirroredStrategy; 1-element vectors reduce to the
    scalar mean over workers.
    """
    from keras import ops

    train_step, test_step = vae.train_step, vae.test_step
    vae.train_step = lambda data: {key: ops.reshape(value, (1,)) for key, value in train_step(data).items()}
    vae.test_step = lambda data: {key: ops.reshape(value, (1,)) for key, value in test_step(data).items()}


def recalibrate_batch_norm(vae, paths, batch_size: int, seed: int, log=print, conditions=None) -> None:
    """Re-estimate the batch-norm statistics on up to RECALIBRATION_EXAMPLES shuffled training files."""
    count = min(len(paths), RECALIBRATION_EXAMPLES)
    batches = dataset.spectrogram_dataset(paths, batch_size, shuffle=True, seed=seed + 1, repeat=False,
                                          conditions=conditions)
    seen = vae.recalibrate_batch_norm(batch for _, batch in zip(range(dataset.steps_per_epoch(count, batch_size)),
                                                                 batches))
    log(f"re-estimated the batch-norm statistics on {seen} training spectrograms")


def write_validation_split(model_dir: str | Path, validation_paths) -> None:
    """Record the names of the spectrograms held out for validation (removed when none were)."""
    path = Path(model_dir) / VALIDATION_SPLIT_FILE_NAME
    if validation_paths:
        names = sorted(Path(p).name for p in validation_paths)
        safe_io.write_bytes_atomic(path, (json.dumps({"validation": names}, indent=1) + "\n").encode())
    elif path.exists():
        path.unlink()


def learning_rate_of(options: TrainingOptions, steps_per_epoch: int):
    """The optimizer's learning rate: a number (constant without warm-up, the thesis's), or a
    schedules.LearningRate: a cosine decay from `learning_rate` to COSINE_FINAL_FRACTION of it over
    every step of the run and/or a linear warm-up over the first `warmup_steps`. A schedule is a
    function of the optimizer's step count, which the checkpoint keeps, so a resumed run goes on
    along the same curve."""
    warmup = warmup_steps(options, steps_per_epoch)
    if options.learning_rate_schedule == "constant" and not warmup:
        return options.learning_rate
    from semantic_timbre.training.schedules import LearningRate

    decay = max(1, options.epochs * steps_per_epoch) if options.learning_rate_schedule == "cosine" else None
    return LearningRate(options.learning_rate, decay, COSINE_FINAL_FRACTION, warmup)


def warmup_steps(options: TrainingOptions, steps_per_epoch: int) -> int:
    """The warm-up's length in optimizer steps."""
    return int(round(options.warmup_epochs * steps_per_epoch))


def build_vae(configuration: dict, learning_rate, xla: bool = True, conditioning=None,
              clip_gradient_norm: float | None = None):
    """Build and compile the VAE of a configuration dict (vae.THESIS_CONFIGURATION's keys) and a
    config.Conditioning (None: unconditioned); `learning_rate` is a number or a Keras
    schedule; `clip_gradient_norm` clips the gradients' global norm (None: no clipping)."""
    from semantic_timbre.network import vae as vae_module

    model = vae_module.VAE(*_parameters_of(configuration), conditioning=conditioning,
                           upsampling=configuration.get("upsampling", "transposed"),
                           loss=configuration.get("loss", "thesis"))
    model.compile(learning_rate=learning_rate, jit_compile=xla, clip_gradient_norm=clip_gradient_norm)
    return model


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


def training_conditions(options: TrainingOptions, training_paths, validation_paths):
    """(Conditioning or None, training conditions, validation conditions) of a run: each file's
    condition, the perceptual features normalised over the training files only."""
    from semantic_timbre.network import conditioning
    from semantic_timbre.network import config

    if options.conditioning == "none":
        return None, None, None
    training_notes = [layout.parse_spectrogram_name(Path(path).name) for path in training_paths]
    validation_notes = [layout.parse_spectrogram_name(Path(path).name) for path in validation_paths]
    if options.conditioning == "descriptor":
        spec = config.Conditioning.descriptor(training_notes)
    else:
        from semantic_timbre.data.perceptual import note_features

        features = note_features(training_notes + validation_notes, audio_dir=options.audio_dir,
                                 minmax_dir=options.minmax_dir, log=options.log)
        spec = config.Conditioning.perceptual(training_notes, features[:len(training_notes)])
    conditions = conditioning.note_conditions(spec, training_notes + validation_notes,
                                              audio_dir=options.audio_dir, minmax_dir=options.minmax_dir)
    return spec, conditions[:len(training_notes)], conditions[len(training_notes):]


def cpu_has_native_bfloat16(cpuinfo: str) -> bool:
    """True when the text of Linux's /proc/cpuinfo lists one of NATIVE_BFLOAT16_FLAGS among the
    first processor's feature flags ('flags' on x86, 'Features' on Arm)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return any(flag in value.split() for flag in NATIVE_BFLOAT16_FLAGS)
    return False


def bfloat16_is_native() -> bool:
    """True when bfloat16 runs natively here: an NVIDIA GPU is visible, or the CPU has bfloat16
    instructions. Without /proc/cpuinfo (not Linux) the answer is True: what is not known is not
    refused. Starts no TensorFlow."""
    gpus = Path("/proc/driver/nvidia/gpus")
    if os.environ.get("CUDA_VISIBLE_DEVICES", "0") not in ("", "-1") and gpus.is_dir() and any(gpus.iterdir()):
        return True
    if os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper() in ONEDNN_ISAS_WITHOUT_BFLOAT16:
        return False  # oneDNN held below its bfloat16 kernels: it cannot build bfloat16 convolutions
    try:
        return cpu_has_native_bfloat16(Path("/proc/cpuinfo").read_text(errors="replace"))
    except OSError:
        return True


def _parameters_of(configuration: dict) -> list:
    return [configuration["input_shape"], configuration["conv_filters"], configuration["conv_kernels"],
            configuration["conv_strides"], configuration["latent_space_dimension"]]


def resume_point(options: TrainingOptions) -> dict | None:
    """Decide, before anything is built, whether this run resumes: the checkpoint's metadata, or
    None to train from scratch.

    Raises
    ------
    CheckpointError
        --resume without a checkpoint, or a checkpoint of other settings (architecture or
        spectrograms folder) without --restart: the message names the difference.
    UserError
        The model folder holds a finished model but no checkpoint to resume, without --restart.
    """
    from semantic_timbre.network.model_files import WEIGHTS_FILE

    model_dir = Path(options.model_dir)
    ckpt = checkpoint_path(model_dir)
    if options.resume == "restart":
        return None
    meta = read_checkpoint_meta(ckpt)
    if options.resume == "resume" and meta is None:
        raise CheckpointError(f"there is no checkpoint to resume from in {ckpt.parent}/: train without --resume")
    ways_on = "add --restart to train from scratch and replace it, or choose another --model-dir to keep it"
    if meta is not None:
        fingerprint = _fingerprint(_parameters_of(options.configuration), options.spectrograms_dir, model_dir,
                                   options.conditioning, options.configuration)
        differences = _fingerprint_differences(meta["fingerprint"], fingerprint, model_dir)
        if differences:
            raise CheckpointError(f"the checkpoint in {ckpt.parent}/ (epoch {meta['epoch']}) was trained with "
                                  f"other settings ({'; '.join(differences)}): {ways_on}")
        return meta
    if finished_model_exists(model_dir):
        raise UserError(f"{model_dir}/ already holds a trained model ({WEIGHTS_FILE}) and no checkpoint to "
                        f"resume from: {ways_on}")
    return None


def already_done(options: TrainingOptions, meta: dict | None) -> bool:
    """True when the checkpoint has the epochs asked for and its finished model is saved."""
    return meta is not None and int(meta["epoch"]) >= options.epochs and finished_model_exists(options.model_dir)


def finished_model_exists(model_dir) -> bool:
    from semantic_timbre.network.model_files import WEIGHTS_FILE

    return (Path(model_dir) / WEIGHTS_FILE).exists()


def _finish(vae, options, model_dir, training_paths, validation_paths, log, conditions=None) -> None:
    """After the last epoch: re-estimate the batch-norm statistics, save the model and the split."""
    if options.recalibrate_batch_norm:
        recalibrate_batch_norm(vae, training_paths, options.batch_size, options.seed, log, conditions)
        bad = non_finite_arrays({weight.path: np.asarray(weight.numpy()) for weight in vae.weights})
        if bad:
            raise TrainingDivergedError(
                f"the batch-norm statistics re-estimated on the training data are not finite ({bad[0]}): the "
                f"weights grew too large (training diverged); the checkpoint in {checkpoint_path(model_dir).parent}/ "
                f"and the model files in {model_dir}/ are untouched; lower the learning rate (--learning-rate) "
                "and train again (--restart)")
    vae.save(str(model_dir))
    write_validation_split(model_dir, validation_paths)
    log(f"saved the model in {model_dir}/ (training log {model_dir / LOG_FILE_NAME}, "
        f"loss curve {model_dir / LOSS_CURVE_FILE_NAME})")


def train(options: TrainingOptions) -> TrainingResult:
    """Train a VAE as described by `options`; see the module docstring for what it writes.

    Raises
    ------
    ProcessedDataError
        spectrograms/ missing or empty, or a spectrogram of the wrong shape or with NaN values.
    CheckpointError
        --resume without a usable checkpoint, or a checkpoint of other settings without --restart.
    TrainingDivergedError
        The loss became NaN or infinite (the last good checkpoint and model are kept).
    """
    log = options.log
    check_options(options)
    if options.tensorboard_dir:
        try:
            import tensorboard  # noqa: F401  (an optional dependency)
        except ImportError:
            raise UserError("TensorBoard logs need the tensorboard package: 'pip install tensorboard', or train "
                            "without --tensorboard") from None
    model_dir = Path(options.model_dir)
    paths = options.files if options.files is not None else dataset.spectrogram_files(options.spectrograms_dir)
    try:
        training_paths, validation_paths = dataset.split_validation(paths, options.validation_split, options.seed)
    except ValueError as error:
        raise UserError(str(error)) from None
    configuration = options.configuration
    fingerprint = _fingerprint(_parameters_of(configuration), options.spectrograms_dir, model_dir,
                               options.conditioning, configuration)
    ckpt = checkpoint_path(model_dir)
    meta = resume_point(options)  # before building anything
    if already_done(options, meta):
        log(f"{model_dir}/ already holds the model of the checkpoint's {meta['epoch']} epochs (asked for "
            f"{options.epochs}): nothing to do; use --epochs above {meta['epoch']} to go on or --restart to "
            "train again")
        history = [row for row in meta["history"] if row["epoch"] <= int(meta["epoch"])]
        return TrainingResult(int(meta["epoch"]), int(meta["epoch"]), history, 0.0)
    # Before TensorFlow starts: perceptual features may be computed in worker processes.
    spec, training_conditions_, validation_conditions = training_conditions(options, training_paths, validation_paths)
    if spec is not None:
        log(f"conditioning: {spec.kind} ({spec.size} values: {', '.join(spec.names[:7])}"
            f"{', ...' if spec.size > 7 else ''})")

    import keras
    import tensorflow as tf

    strategy = make_strategy(options.distribute)
    chief = is_chief(strategy)
    replicas = strategy.num_replicas_in_sync
    if options.distribute != "none":
        log(f"distributing over {replicas} replica(s) with {type(strategy).__name__}")
    has_gpu = bool(tf.config.list_logical_devices("GPU"))
    # On CPUs XLA measured no faster than TensorFlow's oneDNN kernels (bench/bench_training.py
    # --xla), so "auto" compiles only for GPUs.
    xla = options.xla == "on" or (options.xla == "auto" and has_gpu)
    if xla and replicas > 1 and not has_gpu:
        # XLA cannot reach a variable placed on another logical CPU device (TensorFlow's known
        # issue 'tfvariable_on_a_different_device'); GPUs are not affected.
        log("XLA is off: it does not support several logical CPU devices")
        xla = False
    steps = options.steps_per_epoch or dataset.steps_per_epoch(len(training_paths), options.batch_size)
    previous_policy = keras.mixed_precision.global_policy()
    policy = MIXED_PRECISION_POLICIES[options.mixed_precision]
    keras.utils.set_random_seed(options.seed)
    try:
        if policy:
            keras.mixed_precision.set_global_policy(policy)
        with strategy.scope():
            vae = build_vae(configuration, learning_rate_of(options, steps), xla, spec, options.clip_gradient_norm)
            vae.optimizer.build(vae.trainable_variables)  # its state exists from the start: recovery keeps copies
            if options.distribute == "multi-worker":
                _log_losses_as_vectors(vae)
            history: list = []
            first_epoch = 0
            if meta is not None:
                meta = restore_checkpoint(ckpt, vae)
                first_epoch = int(meta["epoch"])
                history = [row for row in meta["history"] if row["epoch"] <= first_epoch]
                from semantic_timbre.training.schedules import set_learning_rate_scale

                # A constant rate is this run's number; one lowered by recoveries before the
                # checkpoint stays lowered.
                set_learning_rate_scale(vae.optimizer, float(meta.get("learning_rate_scale", 1.0)),
                                        options.learning_rate)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)

    if first_epoch >= options.epochs:  # killed after its last epoch, before the model was saved
        log(f"the checkpoint in {ckpt.parent}/ has already trained {first_epoch} epochs (asked for "
            f"{options.epochs}): saving its model")
        if chief:
            _finish(vae, options, model_dir, training_paths, validation_paths, log, training_conditions_)
        return TrainingResult(first_epoch, first_epoch, history, 0.0)
    if meta is not None:
        log(f"resuming from the checkpoint in {ckpt.parent}/ after epoch {first_epoch} of {options.epochs} "
            "(use --restart to start over)")

    def make_training_data(input_context=None):
        shard, batch = None, options.batch_size
        if input_context is not None:
            batch = input_context.get_per_replica_batch_size(options.batch_size) * (
                input_context.num_replicas_in_sync // input_context.num_input_pipelines)
            shard = (input_context.num_input_pipelines, input_context.input_pipeline_id)
        return dataset.spectrogram_dataset(training_paths, batch, shuffle=True, seed=options.seed,
                                           first_epoch=first_epoch, repeat=True, shard=shard,
                                           conditions=training_conditions_)

    if options.distribute == "multi-worker":
        training_data = strategy.distribute_datasets_from_function(make_training_data)
    else:
        training_data = make_training_data()
    validation_data = None
    if validation_paths:
        validation_data = dataset.spectrogram_dataset(validation_paths, options.batch_size, shuffle=False,
                                                      repeat=False, conditions=validation_conditions)
    recorder = _epoch_recorder(vae, model_dir, fingerprint, history, chief, recovery=options.nan_recovery, log=log,
                               data_paths=training_paths + validation_paths,
                               recoveries_before=int(meta.get("recoveries", 0)) if meta is not None else 0,
                               learning_rate=options.learning_rate)
    callbacks = [recorder]
    if options.tensorboard_dir:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(options.tensorboard_dir)))
    verbose = options.verbose if options.verbose is not None else (1 if sys.stdout.isatty() else 2)
    log(f"training on {len(training_paths)} spectrograms"
        + (f" (validating on {len(validation_paths)})" if validation_paths else "")
        + f", batch {options.batch_size}, learning rate {options.learning_rate}"
        + (f" with cosine decay to {COSINE_FINAL_FRACTION:g}x" if options.learning_rate_schedule == "cosine" else "")
        + (f", warm-up {warmup_steps(options, steps)} steps" if warmup_steps(options, steps) else "")
        + (f", gradient norm clipped to {options.clip_gradient_norm:g}" if options.clip_gradient_norm else "")
        + f", epochs {first_epoch + 1}"
          f"-{options.epochs}, {'XLA' if xla else 'no XLA'}"
        + (f", mixed precision {options.mixed_precision}" if policy else ""))
    vae.fit(training_data, epochs=options.epochs, initial_epoch=first_epoch, steps_per_epoch=steps,
            validation_data=validation_data, callbacks=callbacks, verbose=verbose, shuffle=False)

    if recorder.diverged is not None:
        epoch, batch, what = recorder.diverged
        kept = (f"the last good checkpoint (epoch {history[-1]['epoch']}) in {ckpt.parent}/"
                if history else "no checkpoint was written")
        where = f"epoch {epoch + 1}" + (f", batch {batch + 1}" if batch is not None else "")
        bad = recorder.bad_files
        if not recorder.checked_data:
            log(f"{what} in {where}: looking for spectrograms with NaN or infinite values")
            bad = dataset.find_non_finite(training_paths + validation_paths)
        if recorder.recoveries:
            where += f" after {recorder.recoveries} recoveries (the learning rate halved each time)"
        if bad:
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise ProcessedDataError(f"spectrogram {bad[0]}{more} holds NaN or infinite values ({what} "
                                     f"in {where}): delete it and re-run the pre-processor; {kept} "
                                     f"and the model files in {model_dir}/ are untouched")
        advice = "and resume" if history else "and train again"
        raise TrainingDivergedError(f"{what} in {where}: training stopped; {kept} and "
                                    f"the model files in {model_dir}/ are untouched; lower the learning rate "
                                    f"(--learning-rate) {advice}")
    if chief:
        _finish(vae, options, model_dir, training_paths, validation_paths, log, training_conditions_)
    seconds = sum(recorder.seconds)
    examples = min(len(training_paths), steps * options.batch_size)
    speed = examples * len(recorder.seconds) / seconds if seconds else 0.0
    return TrainingResult(first_epoch + len(recorder.seconds), first_epoch, history, speed)
