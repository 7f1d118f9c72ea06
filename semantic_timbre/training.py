"""Training the timbre VAE: streamed data, a checkpoint every epoch, resuming, logs and plots.

What a run leaves in the model folder (model/ by default):
- checkpoint/checkpoint.npz: weights, optimizer state, the epochs done and the per-epoch losses,
  written atomically after every epoch (a killed run resumes from it);
- training_log.csv: one row per epoch (epoch, loss, reconstruction_loss, kl_loss, and val_*
  columns when validating), continued across resumes;
- loss_curve.png: the losses against the epoch;
- parameters.pkl, parameters.json, weights.h5: the final model (VAE.save), written at the end.

A NaN or infinite loss stops the run at once; the last good checkpoint and model stay as they were.
"""

from __future__ import annotations

import csv
import io
import json
import math
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import dataset, layout, safe_io
from .cli import UserError
from .processed_data import ProcessedDataError

CHECKPOINT_SUBDIR = "checkpoint"
CHECKPOINT_FILE_NAME = "checkpoint.npz"
LOG_FILE_NAME = "training_log.csv"
LOSS_CURVE_FILE_NAME = "loss_curve.png"
VALIDATION_SPLIT_FILE_NAME = "validation_split.json"
RECALIBRATION_EXAMPLES = 2048
LOSS_NAMES = ("loss", "reconstruction_loss", "kl_loss")
MIXED_PRECISION_POLICIES = {"off": None, "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
DISTRIBUTIONS = ("none", "mirrored", "multi-worker")
CHECKPOINT_FORMAT = 1


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
    seed: int = 0
    validation_split: float = 0.0
    resume: str = "auto"  # "auto" (resume when a matching checkpoint exists), "resume" or "restart"
    tensorboard_dir: str | Path | None = None
    mixed_precision: str = "off"
    distribute: str = "none"
    xla: str = "auto"  # "on", "off", or "auto": on with a GPU, off on CPUs (where it measured slower)
    recalibrate_batch_norm: bool = True  # False: keep the moving statistics training left (the thesis)
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

def _fingerprint(parameters, spectrograms_dir) -> dict:
    return {"parameters": json.loads(json.dumps(parameters)),
            # as given (e.g. 'spectrograms'), so that a project folder can be moved and still resume
            "spectrograms_dir": Path(spectrograms_dir).as_posix()}


def _variable_arrays(variables) -> list[np.ndarray]:
    return [np.asarray(variable.numpy() if hasattr(variable, "numpy") else variable) for variable in variables]


def save_checkpoint(path: str | Path, vae, epoch: int, fingerprint: dict, history: list) -> None:
    """Write weights, optimizer state, the epochs done and the history to one .npz, atomically."""
    arrays = {}
    for index, value in enumerate(_variable_arrays(vae.weights)):
        arrays[f"weight_{index}"] = value
    for index, value in enumerate(_variable_arrays(vae.optimizer.variables)):
        arrays[f"optimizer_{index}"] = value
    meta = {"format": CHECKPOINT_FORMAT, "epoch": epoch, "fingerprint": fingerprint, "history": history,
            "weights": len(vae.weights), "optimizer_variables": len(vae.optimizer.variables)}
    arrays["meta"] = np.array(json.dumps(meta))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    safe_io.write_bytes_atomic(path, buffer.getvalue())


def read_checkpoint_meta(path: str | Path) -> dict | None:
    """Return the metadata of a checkpoint (epoch, fingerprint, history), or None if there is none."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            meta = json.loads(str(archive["meta"]))
    except (OSError, ValueError, KeyError) as error:
        raise CheckpointError(f"checkpoint {path} cannot be read ({error}): delete it or use --restart") from None
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {path} has an unknown format: delete it or use --restart")
    return meta


def restore_checkpoint(path: str | Path, vae) -> dict:
    """Load weights and optimizer state of a checkpoint into a compiled VAE; return its metadata."""
    path = Path(path)
    meta = read_checkpoint_meta(path)
    vae.optimizer.build(vae.trainable_variables)
    with np.load(path, allow_pickle=False) as archive:
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
                variable.assign(value.astype(variable.dtype, copy=False) if hasattr(variable, "dtype") else value)
    return meta


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

    epochs = [row["epoch"] for row in history]
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for axis, name in zip(axes, LOSS_NAMES):
        axis.plot(epochs, [row[name] for row in history], marker=".", label="training")
        if any(f"val_{name}" in row for row in history):
            axis.plot([row["epoch"] for row in history if f"val_{name}" in row],
                      [row[f"val_{name}"] for row in history if f"val_{name}" in row], marker=".",
                      linestyle="--", label="validation")
            axis.legend()
        axis.set_title(name.replace("_", " "))
        axis.set_xlabel("epoch")
        if all(row[name] > 0 for row in history):
            axis.set_yscale("log")
        axis.grid(True, alpha=0.3)
    figure.tight_layout()
    with safe_io.atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100)
    plt.close(figure)


# ---------------------------------------------------------------- the run

def _epoch_recorder(vae, model_dir, fingerprint, history, chief):
    """One Keras callback that, in order: stops at the first non-finite loss, and after each good
    epoch writes the checkpoint, the CSV and the loss curve (on the chief worker only)."""
    import keras

    class EpochRecorder(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.diverged = None  # (epoch, batch or None, what) of the first non-finite loss
            self.epoch_start = None
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            self.epoch_start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            loss = float((logs or {}).get("loss", 0.0))
            if not math.isfinite(loss) and self.diverged is None:
                self.diverged = (self.epoch, batch, f"the loss became {loss}")
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            if self.diverged is not None:
                return
            self.seconds.append(time.perf_counter() - self.epoch_start)
            logs = logs or {}
            row = {"epoch": epoch + 1}
            for name in LOSS_NAMES:
                for key in (name, f"val_{name}"):
                    if key in logs:
                        row[key] = float(logs[key])
            bad = [f"{key} became {value}" for key, value in row.items() if key != "epoch" and not math.isfinite(value)]
            if bad:
                self.diverged = (epoch, None, bad[0])
                self.model.stop_training = True
                return
            history.append(row)
            if chief:
                save_checkpoint(checkpoint_path(model_dir), vae, epoch + 1, fingerprint, history)
                write_training_log(Path(model_dir) / LOG_FILE_NAME, history)
                plot_loss_curve(Path(model_dir) / LOSS_CURVE_FILE_NAME, history)

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


def recalibrate_batch_norm(vae, paths, batch_size: int, seed: int, log=print) -> None:
    """Re-estimate the batch-norm statistics on up to RECALIBRATION_EXAMPLES shuffled training files."""
    count = min(len(paths), RECALIBRATION_EXAMPLES)
    batches = dataset.spectrogram_dataset(paths, batch_size, shuffle=True, seed=seed + 1, repeat=False)
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


def build_vae(configuration: dict, learning_rate: float, xla: bool = True):
    """Build and compile the VAE of a configuration dict (vae.THESIS_CONFIGURATION's keys)."""
    from . import vae as vae_module

    model = vae_module.VAE(configuration["input_shape"], configuration["conv_filters"],
                           configuration["conv_kernels"], configuration["conv_strides"],
                           configuration["latent_space_dimension"])
    model.compile(learning_rate=learning_rate, jit_compile=xla)
    return model


def train(options: TrainingOptions) -> TrainingResult:
    """Train a VAE as described by `options`; see the module docstring for what it writes.

    Raises
    ------
    ProcessedDataError
        spectrograms/ missing or empty, or a spectrogram of the wrong shape or with NaN values.
    CheckpointError
        --resume without a usable checkpoint.
    TrainingDivergedError
        The loss became NaN or infinite (the last good checkpoint and model are kept).
    """
    log = options.log
    if options.epochs < 1 or options.batch_size < 1 or not options.learning_rate > 0:
        raise UserError("epochs and batch size must be at least 1 and the learning rate above 0")
    if options.mixed_precision not in MIXED_PRECISION_POLICIES:
        raise UserError(f"unknown mixed precision '{options.mixed_precision}': choose off, bfloat16 or float16")
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
    parameters = [configuration["input_shape"], configuration["conv_filters"], configuration["conv_kernels"],
                  configuration["conv_strides"], configuration["latent_space_dimension"]]
    fingerprint = _fingerprint(parameters, options.spectrograms_dir)

    # Decide whether to resume before building anything.
    ckpt = checkpoint_path(model_dir)
    meta = None if options.resume == "restart" else read_checkpoint_meta(ckpt)
    if options.resume == "resume" and meta is None:
        raise CheckpointError(f"there is no checkpoint to resume from in {ckpt.parent}/: train without --resume")
    if meta is not None and meta["fingerprint"] != fingerprint:
        if options.resume == "resume":
            raise CheckpointError(f"the checkpoint in {ckpt.parent}/ was trained with another configuration or "
                                  f"spectrograms folder ({meta['fingerprint']}): use --restart to start over")
        log(f"ignoring the checkpoint in {ckpt.parent}/: it is for another configuration or spectrograms folder; "
            "starting over")
        meta = None

    import keras
    import tensorflow as tf

    strategy = make_strategy(options.distribute)
    chief = is_chief(strategy)
    replicas = strategy.num_replicas_in_sync
    if options.distribute != "none":
        log(f"distributing over {replicas} replica(s) with {type(strategy).__name__}")
    if options.xla not in ("auto", "on", "off"):
        raise UserError(f"unknown XLA setting '{options.xla}': choose auto, on or off")
    has_gpu = bool(tf.config.list_logical_devices("GPU"))
    # On CPUs TensorFlow's oneDNN kernels outran XLA's (bench/bench_training.py: 6.4 against 2.3
    # examples/s for the thesis configuration on 2 cores), so "auto" compiles only for GPUs.
    xla = options.xla == "on" or (options.xla == "auto" and has_gpu)
    if xla and replicas > 1 and not has_gpu:
        # XLA cannot reach a variable placed on another logical CPU device (TensorFlow's known
        # issue 'tfvariable_on_a_different_device'); GPUs are not affected.
        log("XLA is off: it does not support several logical CPU devices")
        xla = False
    previous_policy = keras.mixed_precision.global_policy()
    policy = MIXED_PRECISION_POLICIES[options.mixed_precision]
    keras.utils.set_random_seed(options.seed)
    try:
        if policy:
            keras.mixed_precision.set_global_policy(policy)
        with strategy.scope():
            vae = build_vae(configuration, options.learning_rate, xla)
            if options.distribute == "multi-worker":
                _log_losses_as_vectors(vae)
            history: list = []
            first_epoch = 0
            if meta is not None:
                meta = restore_checkpoint(ckpt, vae)
                first_epoch = int(meta["epoch"])
                history = [row for row in meta["history"] if row["epoch"] <= first_epoch]
                vae.optimizer.learning_rate.assign(options.learning_rate)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)

    if first_epoch >= options.epochs:
        log(f"the checkpoint in {ckpt.parent}/ has already trained {first_epoch} epochs (asked for "
            f"{options.epochs}): saving the model; use --epochs above {first_epoch} to go on or --restart "
            "to train again")
        if chief:
            vae.save(str(model_dir))
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
                                           first_epoch=first_epoch, repeat=True, shard=shard)

    if options.distribute == "multi-worker":
        training_data = strategy.distribute_datasets_from_function(make_training_data)
    else:
        training_data = make_training_data()
    validation_data = None
    if validation_paths:
        validation_data = dataset.spectrogram_dataset(validation_paths, options.batch_size, shuffle=False,
                                                      repeat=False)
    steps = options.steps_per_epoch or dataset.steps_per_epoch(len(training_paths), options.batch_size)

    recorder = _epoch_recorder(vae, model_dir, fingerprint, history, chief)
    callbacks = [recorder]
    if options.tensorboard_dir:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(options.tensorboard_dir)))
    verbose = options.verbose if options.verbose is not None else (1 if sys.stdout.isatty() else 2)
    log(f"training on {len(training_paths)} spectrograms"
        + (f" (validating on {len(validation_paths)})" if validation_paths else "")
        + f", batch {options.batch_size}, learning rate {options.learning_rate}, epochs {first_epoch + 1}"
          f"-{options.epochs}, {'XLA' if xla else 'no XLA'}"
        + (f", mixed precision {options.mixed_precision}" if policy else ""))
    vae.fit(training_data, epochs=options.epochs, initial_epoch=first_epoch, steps_per_epoch=steps,
            validation_data=validation_data, callbacks=callbacks, verbose=verbose, shuffle=False)

    if recorder.diverged is not None:
        epoch, batch, what = recorder.diverged
        kept = (f"the last good checkpoint (epoch {history[-1]['epoch']}) in {ckpt.parent}/"
                if history else "no checkpoint was written")
        where = f"epoch {epoch + 1}" + (f", batch {batch + 1}" if batch is not None else "")
        log(f"{what} in {where}: looking for spectrograms with NaN or infinite values")
        bad = dataset.find_non_finite(training_paths + validation_paths)
        if bad:
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise ProcessedDataError(f"spectrogram {bad[0]}{more} holds NaN or infinite values ({what} "
                                     f"in {where}): delete it and re-run the pre-processor; {kept} "
                                     f"and the model files in {model_dir}/ are untouched")
        raise TrainingDivergedError(f"{what} in {where}: training stopped; {kept} and "
                                    f"the model files in {model_dir}/ are untouched; lower the learning rate "
                                    "(--learning-rate) and resume")
    if chief:
        if options.recalibrate_batch_norm:
            recalibrate_batch_norm(vae, training_paths, options.batch_size, options.seed, log)
        vae.save(str(model_dir))
        write_validation_split(model_dir, validation_paths)
        log(f"saved the model in {model_dir}/ (training log {model_dir / LOG_FILE_NAME}, "
            f"loss curve {model_dir / LOSS_CURVE_FILE_NAME})")
    seconds = sum(recorder.seconds)
    examples = min(len(training_paths), steps * options.batch_size)
    speed = examples * len(recorder.seconds) / seconds if seconds else 0.0
    return TrainingResult(first_epoch + len(recorder.seconds), first_epoch, history, speed)
