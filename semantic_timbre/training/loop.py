"""The training run (train): the model built and compiled, the data streamed, an epoch recorder
that checkpoints, logs and recovers from a non-finite loss, batch-norm recalibration, and the final
save.

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
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from semantic_timbre.data import dataset
from semantic_timbre import layout, safe_io
from semantic_timbre.errors import UserError
from semantic_timbre.data.processed_data import ProcessedDataError
from semantic_timbre.training.options import (COSINE_FINAL_FRACTION, LOG_FILE_NAME, LOSS_CURVE_FILE_NAME, LOSS_NAMES,
                                              MAX_RECOVERIES, MIXED_PRECISION_POLICIES, RECALIBRATION_EXAMPLES,
                                              RECOVERY_LEARNING_RATE_FACTOR, RECOVERY_SNAPSHOT_STEPS,
                                              TrainingDivergedError, TrainingOptions, TrainingResult,
                                              VALIDATION_SPLIT_FILE_NAME, check_options)
from semantic_timbre.training.checkpoint import (_fingerprint, _parameters_of, already_done, checkpoint_arrays,
                                                 checkpoint_path, non_finite_arrays, restore_arrays,
                                                 restore_checkpoint, resume_point, write_checkpoint)
from semantic_timbre.training.devices import is_chief, make_strategy
from semantic_timbre.training.history import plot_loss_curve, write_training_log


# ---------------------------------------------------------------- checkpoints


# ---------------------------------------------------------------- logs


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
