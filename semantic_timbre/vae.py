"""The timbre VAE: the thesis's convolutional variational autoencoder over spectrograms, in Keras 3.

Architecture (as in the thesis):
- encoder: per filter, Conv2D(padding "same") -> ReLU -> BatchNormalization; Flatten; two Dense
  layers `mu` and `log_variance`; a sampling layer z = mu + exp(log_variance / 2) * eps;
- decoder: Dense to the pre-bottleneck size -> Reshape; per filter from the last to the second,
  Conv2DTranspose(padding "same") -> ReLU -> BatchNormalization; then Conv2DTranspose with one
  filter (the first layer's kernel and stride) -> sigmoid;
- loss per example: 1,000,000 x mean squared error + KL divergence, averaged over the batch.

A model folder (model/ by default) holds parameters.pkl (the thesis's pickled list),
parameters.json (the same, preferred when present) and weights.h5 in Keras 2's legacy HDF5
layout (top-level groups `encoder` and `decoder`), which is the form of the author's released
model. Layers carry the names Keras 2 gave them in a fresh session, and weights are matched to
layers in build order, as Keras 2 itself loaded them.
"""

from __future__ import annotations

import json
import math
import pickle
from collections import defaultdict
from pathlib import Path

import numpy as np

from . import layout, safe_io
from .cli import UserError, quiet_tensorflow

quiet_tensorflow()

import keras  # noqa: E402  (after quiet_tensorflow)
from keras import layers, ops  # noqa: E402

PARAMETERS_PICKLE = "parameters.pkl"
PARAMETERS_JSON = "parameters.json"
WEIGHTS_FILE = "weights.h5"
RUN_TRAINING = "run 'python train_timbre_generation_vae.py' first"
RECONSTRUCTION_LOSS_WEIGHT = 1_000_000
PARAMETER_NAMES = ("input_shape", "conv_filters", "conv_kernels", "conv_strides", "latent_space_dimension")

THESIS_CONFIGURATION = {
    "input_shape": (512, 64, 1),
    "conv_filters": (512, 256, 128, 64, 32),
    "conv_kernels": (3, 3, 3, 3, 3),
    "conv_strides": (2, 2, 2, 2, (2, 1)),
    "latent_space_dimension": 128,
}

#: A small model for the demo: the thesis's kernels and strides with fewer filters and a smaller
#: latent space, so that tens of epochs on the demo set take minutes on two CPU cores.
DEMO_CONFIGURATION = {
    "input_shape": (512, 64, 1),
    "conv_filters": (16, 16, 16, 16, 16),
    "conv_kernels": (3, 3, 3, 3, 3),
    "conv_strides": (2, 2, 2, 2, (2, 1)),
    "latent_space_dimension": 32,
}


class ModelFolderError(UserError):
    """The model folder is missing, incomplete or does not hold a model this code can load."""


# ---------------------------------------------------------------- parameters

def _plain(value):
    """Numpy scalars to Python numbers, keeping list/tuple containers as they are."""
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(item) for item in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _is_count(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0


def _is_size(value) -> bool:
    """An int, or a pair of ints (a kernel or a stride)."""
    if _is_count(value):
        return True
    return isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_count(item) for item in value)


def check_parameters(parameters, source: str = "the parameters") -> list:
    """Return the thesis's parameter list [input_shape, conv_filters, conv_kernels, conv_strides,
    latent_space_dimension] as plain Python values, or raise ModelFolderError saying what is wrong.

    Accepts the list (or tuple) itself or a dict with those five keys.
    """
    expected = ("a list [input_shape, conv_filters, conv_kernels, conv_strides, latent_space_dimension], "
                "e.g. [(512, 64, 1), (512, 256, 128, 64, 32), (3, 3, 3, 3, 3), (2, 2, 2, 2, (2, 1)), 128]")
    if isinstance(parameters, dict):
        missing = [name for name in PARAMETER_NAMES if name not in parameters]
        if missing:
            raise ModelFolderError(f"{source} lacks {', '.join(missing)}: expected {expected}")
        parameters = [parameters[name] for name in PARAMETER_NAMES]
    if not isinstance(parameters, (list, tuple)) or len(parameters) != 5:
        raise ModelFolderError(f"{source} is not of the expected form: expected {expected}")
    input_shape, filters, kernels, strides, latent = parameters
    problems = []
    if not (isinstance(input_shape, (list, tuple)) and len(input_shape) == 3 and all(map(_is_count, input_shape))):
        problems.append(f"input_shape {input_shape!r} is not three positive integers")
    if not (isinstance(filters, (list, tuple)) and filters and all(map(_is_count, filters))):
        problems.append(f"conv_filters {filters!r} is not a list of positive integers")
    for name, sizes in (("conv_kernels", kernels), ("conv_strides", strides)):
        if not (isinstance(sizes, (list, tuple)) and all(map(_is_size, sizes))):
            problems.append(f"{name} {sizes!r} is not a list of integers or integer pairs")
        elif isinstance(filters, (list, tuple)) and len(sizes) != len(filters):
            problems.append(f"{name} has {len(sizes)} entries but conv_filters has {len(filters)}")
    if not _is_count(latent):
        problems.append(f"latent_space_dimension {latent!r} is not a positive integer")
    if problems:
        raise ModelFolderError(f"{source} is not of the expected form ({'; '.join(problems)}): expected {expected}")
    return [_plain(item) for item in parameters]


def _as_tuples(value):
    """The thesis's pickled form: tuples all the way down."""
    if isinstance(value, (list, tuple)):
        return tuple(_as_tuples(item) for item in value)
    return value


def _pair(value) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, (int, np.integer)) else (int(value[0]), int(value[1]))


class _Keras2Names:
    """The names Keras 2 gave layers in a fresh session: conv2d, conv2d_1, ..., dense, dense_1.

    Keras 3 numbers automatic names across the whole process, so they are given explicitly.
    """

    def __init__(self):
        self._counts = defaultdict(int)

    def __call__(self, base: str) -> str:
        count = self._counts[base]
        self._counts[base] += 1
        return base if count == 0 else f"{base}_{count}"


# ---------------------------------------------------------------- layers

@keras.saving.register_keras_serializable(package="semantic_timbre")
class Sampling(layers.Layer):
    """z = mu + exp(log_variance / 2) * eps, eps ~ N(0, 1), drawn from the layer's own seed."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        mu, log_variance = inputs
        epsilon = keras.random.normal(ops.shape(mu), dtype=mu.dtype, seed=self.seed_generator)
        return mu + ops.exp(log_variance / 2) * epsilon

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def _build_encoder(input_shape, filters, kernels, strides, latent, names, seed):
    inputs = keras.Input(shape=tuple(input_shape), name="input_1")
    x = inputs
    for count, kernel, stride in zip(filters, kernels, strides):
        x = layers.Conv2D(count, _pair(kernel), strides=_pair(stride), padding="same", name=names("conv2d"))(x)
        x = layers.ReLU(name=names("re_lu"))(x)
        x = layers.BatchNormalization(name=names("batch_normalization"))(x)
    shape_before_bottleneck = tuple(int(size) for size in x.shape[1:])
    x = layers.Flatten(name=names("flatten"))(x)
    # The distribution's parameters and the sample stay float32 under mixed precision.
    mu = layers.Dense(latent, name="mu", dtype="float32")(x)
    log_variance = layers.Dense(latent, name="log_variance", dtype="float32")(x)
    z = Sampling(seed=seed, name=names("lambda"), dtype="float32")([mu, log_variance])
    return keras.Model(inputs, [mu, log_variance, z], name="encoder"), shape_before_bottleneck


def _build_decoder(shape_before_bottleneck, filters, kernels, strides, latent, names):
    inputs = keras.Input(shape=(latent,), name="input_2")
    x = layers.Dense(math.prod(shape_before_bottleneck), name=names("dense"))(inputs)
    x = layers.Reshape(shape_before_bottleneck, name=names("reshape"))(x)
    for index in reversed(range(1, len(filters))):
        x = layers.Conv2DTranspose(filters[index], _pair(kernels[index]), strides=_pair(strides[index]),
                                   padding="same", name=names("conv2d_transpose"))(x)
        x = layers.ReLU(name=names("re_lu"))(x)
        x = layers.BatchNormalization(name=names("batch_normalization"))(x)
    x = layers.Conv2DTranspose(1, _pair(kernels[0]), strides=_pair(strides[0]), padding="same",
                               name=names("conv2d_transpose"))(x)
    outputs = layers.Activation("sigmoid", name=names("activation"), dtype="float32")(x)
    return keras.Model(inputs, outputs, name="decoder")


# ---------------------------------------------------------------- the model

class VAE(keras.Model):
    """The thesis's variational autoencoder.

    Parameters
    ----------
    input_shape : (height, width, channels), (512, 64, 1) for the thesis's spectrograms
    conv_filters, conv_kernels, conv_strides : one entry per convolutional layer; a kernel or a
        stride is an int or a (height, width) pair
    latent_space_dimension : size of the latent space
    seed : optional seed of the sampling layer used in training (None: Keras's global seed)

    Attributes
    ----------
    encoder : keras.Model, spectrograms (N, *input_shape) -> [mu, log_variance, z]
    decoder : keras.Model, latent codes (N, latent) -> spectrograms (N, *input_shape) in [0, 1]
    latent_space_dimension : int
    parameters : the thesis's list [input_shape, conv_filters, conv_kernels, conv_strides,
        latent_space_dimension]
    """

    def __init__(self, input_shape, conv_filters, conv_kernels, conv_strides, latent_space_dimension,
                 seed=None, name="vae", **kwargs):
        parameters = check_parameters([input_shape, conv_filters, conv_kernels, conv_strides,
                                       latent_space_dimension], "the VAE's parameters")
        super().__init__(name=name, **kwargs)
        input_shape, conv_filters, conv_kernels, conv_strides, latent_space_dimension = parameters
        self._parameters_json = json.dumps(parameters)  # a string: no Keras tracking wrappers
        self._parameters_pickle = pickle.dumps(parameters)
        self.latent_space_dimension = int(latent_space_dimension)
        self._spectrogram_shape = tuple(int(size) for size in input_shape)
        names = _Keras2Names()
        self.encoder, bottleneck = _build_encoder(input_shape, conv_filters, conv_kernels, conv_strides,
                                                  self.latent_space_dimension, names, seed)
        self.decoder = _build_decoder(bottleneck, conv_filters, conv_kernels, conv_strides,
                                      self.latent_space_dimension, names)
        output_shape = tuple(int(size) for size in self.decoder.output.shape[1:])
        if output_shape != self._spectrogram_shape:
            raise ModelFolderError(
                f"the VAE's strides do not fit its input shape: the decoder would give {output_shape} "
                f"for inputs of {self._spectrogram_shape}; the strides' product must divide each dimension")
        self.total_loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")
        self.built = True
        self._inference = {}

    # -- thesis attributes

    @property
    def parameters(self) -> list:
        return pickle.loads(self._parameters_pickle)

    @property
    def spectrogram_shape(self) -> tuple:
        return self._spectrogram_shape

    def call(self, inputs, training=None):
        _, _, z = self.encoder(inputs, training=training)
        return self.decoder(z, training=training)

    def summary(self, *args, **kwargs):
        """Print the encoder's, the decoder's and the whole model's summaries (as the thesis did)."""
        self.encoder.summary(*args, **kwargs)
        self.decoder.summary(*args, **kwargs)
        super().summary(*args, **kwargs)

    # -- training

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def compile(self, learning_rate=0.0005, jit_compile=True, **kwargs):
        """Compile with Adam at `learning_rate`; `jit_compile` XLA-compiles the train step."""
        kwargs.setdefault("optimizer", keras.optimizers.Adam(learning_rate=learning_rate))
        super().compile(jit_compile=jit_compile, **kwargs)

    def compute_losses(self, spectrograms, training=False):
        """Return (total, reconstruction, kl, reconstructions): losses averaged over the batch,
        computed in float32 whatever the compute precision."""
        mu, log_variance, z = self.encoder(spectrograms, training=training)
        reconstructions = self.decoder(z, training=training)
        target = ops.cast(spectrograms, "float32")
        mu, log_variance = ops.cast(mu, "float32"), ops.cast(log_variance, "float32")
        squared_error = ops.square(target - ops.cast(reconstructions, "float32"))
        mean_squared_error = ops.mean(ops.reshape(squared_error, (ops.shape(squared_error)[0], -1)), axis=1)
        reconstruction = RECONSTRUCTION_LOSS_WEIGHT * ops.mean(mean_squared_error)
        kl = ops.mean(-0.5 * ops.sum(1 + log_variance - ops.square(mu) - ops.exp(log_variance), axis=1))
        return reconstruction + kl, reconstruction, kl, reconstructions

    @staticmethod
    def _spectrograms_of(data):
        while isinstance(data, (tuple, list)):  # (x,), (x, y) or (x, y, sample_weight): x is the target
            data = data[0]
        if len(data.shape) == 3:
            data = ops.expand_dims(data, -1)
        return data

    def _track(self, total, reconstruction, kl):
        self.total_loss_tracker.update_state(total)
        self.reconstruction_loss_tracker.update_state(reconstruction)
        self.kl_loss_tracker.update_state(kl)
        return {metric.name: metric.result() for metric in self.metrics}

    def train_step(self, data):
        import tensorflow as tf

        spectrograms = self._spectrograms_of(data)
        with tf.GradientTape() as tape:
            total, reconstruction, kl, _ = self.compute_losses(spectrograms, training=True)
            # Gradients are summed over replicas under tf.distribute: scale so that they average.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled = total / replicas if replicas > 1 else total
            scaled = self.optimizer.scale_loss(scaled)  # loss scaling under mixed_float16
        gradients = tape.gradient(scaled, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        return self._track(total, reconstruction, kl)

    def test_step(self, data):
        total, reconstruction, kl, _ = self.compute_losses(self._spectrograms_of(data), training=False)
        return self._track(total, reconstruction, kl)

    def train(self, x, batch_size=64, num_epochs=300, **fit_kwargs):
        """Train on `x` (a numpy array of spectrograms or a batched tf.data.Dataset); return the History.

        A numpy array is shuffled every epoch, as in the thesis; extra keyword arguments go to fit.
        """
        if getattr(self, "optimizer", None) is None:
            self.compile()
        if isinstance(x, np.ndarray):
            x = self._as_batch(x)
            fit_kwargs.setdefault("shuffle", True)
            return self.fit(x, batch_size=batch_size, epochs=num_epochs, **fit_kwargs)
        fit_kwargs.setdefault("shuffle", False)  # a dataset shuffles itself
        return self.fit(x, epochs=num_epochs, **fit_kwargs)

    # -- inference

    def _as_batch(self, spectrograms) -> np.ndarray:
        spectrograms = np.asarray(spectrograms, dtype=np.float32)
        if spectrograms.ndim == len(self._spectrogram_shape) and self._spectrogram_shape[-1] == 1:
            spectrograms = spectrograms[..., None]
        if spectrograms.shape[1:] != self._spectrogram_shape:
            raise ValueError(f"expected spectrograms of shape (N, {', '.join(map(str, self._spectrogram_shape))}) "
                             f"or (N, {', '.join(map(str, self._spectrogram_shape[:-1]))}), got {spectrograms.shape}")
        return spectrograms

    def _infer(self, which: str, batch: np.ndarray):
        import tensorflow as tf

        function = self._inference.get(which)
        if function is None:
            if which == "encode":
                function = tf.function(lambda x: self.encoder(x, training=False)[:2], reduce_retracing=True, autograph=False)
            else:
                function = tf.function(lambda z: self.decoder(z, training=False), reduce_retracing=True, autograph=False)
            self._inference[which] = function
        return function(tf.constant(batch))

    def encode(self, spectrograms, batch_size=64, seed=None):
        """Encode spectrograms (N, 512, 64) or (N, 512, 64, 1) in batches.

        Returns (mu, log_variance, z), float32 arrays of shape (N, latent), with
        z = mu + exp(log_variance / 2) * eps and eps drawn by numpy.random.default_rng(seed).
        """
        spectrograms = self._as_batch(spectrograms)
        mus, log_variances = [], []
        for start in range(0, len(spectrograms), batch_size):
            mu, log_variance = self._infer("encode", spectrograms[start:start + batch_size])
            mus.append(np.asarray(mu, dtype=np.float32))
            log_variances.append(np.asarray(log_variance, dtype=np.float32))
        empty = np.zeros((0, self.latent_space_dimension), np.float32)
        mu = np.concatenate(mus) if mus else empty
        log_variance = np.concatenate(log_variances) if log_variances else empty
        epsilon = np.random.default_rng(seed).standard_normal(mu.shape).astype(np.float32)
        z = (mu + np.exp(log_variance / 2) * epsilon).astype(np.float32)
        return mu, log_variance, z

    def decode(self, latent, batch_size=64):
        """Decode latent codes (N, latent) in batches into spectrograms (N, 512, 64, 1), float32 in [0, 1]."""
        latent = np.asarray(latent, dtype=np.float32)
        if latent.ndim != 2 or latent.shape[1] != self.latent_space_dimension:
            raise ValueError(f"expected latent codes of shape (N, {self.latent_space_dimension}), got {latent.shape}")
        outputs = [np.asarray(self._infer("decode", latent[start:start + batch_size]), dtype=np.float32)
                   for start in range(0, len(latent), batch_size)]
        return np.concatenate(outputs) if outputs else np.zeros((0, *self._spectrogram_shape), np.float32)

    def reconstruct(self, spectrograms, seed=None, batch_size=64):
        """Return (reconstructions, z): the decoded samples z of the encoded spectrograms."""
        _, _, z = self.encode(spectrograms, batch_size=batch_size, seed=seed)
        return self.decode(z, batch_size=batch_size), z

    def recalibrate_batch_norm(self, batches) -> int:
        """Re-estimate every BatchNormalization layer's moving mean and variance from `batches`.

        Training leaves moving averages that lag behind weights that changed quickly (short or
        fast training), so inference (which uses them) reconstructs worse than training did. This
        runs the model in training mode over the batches, weights fixed, and sets each moving
        statistic to the average of the batches' statistics. Returns the number of examples seen.
        """
        norms = [layer for model in (self.encoder, self.decoder) for layer in model.layers
                 if isinstance(layer, layers.BatchNormalization)]
        momenta = [layer.momentum for layer in norms]
        seen = 0
        try:
            for index, batch in enumerate(batches):
                for layer in norms:
                    layer.momentum = index / (index + 1)  # a running average over the batches so far
                batch = self._as_batch(batch)
                _, _, z = self.encoder(batch, training=True)
                self.decoder(z, training=True)
                seen += len(batch)
        finally:
            for layer, momentum in zip(norms, momenta):
                layer.momentum = momentum
        return seen

    # -- saving and loading

    def save(self, folder=layout.MODEL_DIR):
        """Write parameters.pkl, parameters.json and weights.h5 (Keras 2's legacy layout) to `folder`.

        Each file is written to a temporary name and renamed into place only when complete, so an
        interrupted save leaves the previous files, never half-written weights. Refuses NaN weights.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        parameters = self.parameters
        with safe_io.atomic_path(folder / WEIGHTS_FILE) as weights_temporary, \
                safe_io.atomic_path(folder / PARAMETERS_PICKLE) as pickle_temporary, \
                safe_io.atomic_path(folder / PARAMETERS_JSON) as json_temporary:
            write_legacy_weights(weights_temporary, self, parameters)
            with open(pickle_temporary, "wb") as handle:
                pickle.dump(list(_as_tuples(parameters)), handle, protocol=4)
            json_temporary.write_text(json.dumps(dict(zip(PARAMETER_NAMES, parameters)), indent=1) + "\n")
        # The renames happen in reverse order on leaving: json, pickle, then weights.h5. A crash in
        # between leaves weights.h5 whose recorded parameters differ, which load() reports.

    @classmethod
    def load(cls, folder=layout.MODEL_DIR):
        """Load a model folder: ours or the author's released one (parameters.pkl + Keras 2 weights.h5).

        Raises
        ------
        ModelFolderError
            If the folder is missing, incomplete or unreadable.
        UnsafePickleError
            If parameters.pkl would build anything but plain data (nothing of it runs).
        """
        folder = Path(folder)
        parameters = read_parameters(folder)
        weights = folder / WEIGHTS_FILE
        if not weights.is_file():
            raise ModelFolderError(f"{folder}/ holds parameters but no {WEIGHTS_FILE} (an unfinished training "
                                   f"run?): {RUN_TRAINING}")
        vae = cls(*parameters)
        read_legacy_weights(weights, vae, parameters)
        return vae


def read_parameters(folder: str | Path) -> list:
    """Return the checked parameter list of a model folder (parameters.json, else parameters.pkl)."""
    folder = Path(folder)
    no_model = f"{folder}/ holds no trained model"
    if not folder.is_dir():
        raise ModelFolderError(f"{no_model} (the folder does not exist): {RUN_TRAINING}")
    json_path, pickle_path = folder / PARAMETERS_JSON, folder / PARAMETERS_PICKLE
    if json_path.is_file():
        try:
            parameters = json.loads(json_path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise ModelFolderError(f"{json_path} cannot be read ({error}): delete the folder and "
                                   f"{RUN_TRAINING}") from None
        return check_parameters(parameters, str(json_path))
    if pickle_path.is_file():
        return check_parameters(safe_io.load_plain_pickle(pickle_path), str(pickle_path))
    resume = " (it resumes from the checkpoint there)" if (folder / "checkpoint").is_dir() else ""
    raise ModelFolderError(f"{no_model} (no {PARAMETERS_PICKLE} or {PARAMETERS_JSON}): {RUN_TRAINING}{resume}")


# ---------------------------------------------------------------- Keras 2 legacy HDF5 weights

def _weighted_layers(model) -> list:
    return [layer for layer in model.layers if layer.trainable_weights or layer.non_trainable_weights]


def _variable_name(variable) -> str:
    return variable.name.split("/")[-1].split(":")[0]


def write_legacy_weights(path, vae: VAE, parameters=None) -> None:
    """Write the weights as Keras 2's Model.save_weights did for the thesis's model.

    Root attributes layer_names/backend/keras_version; one group per sub-model ('encoder',
    'decoder') with attribute weight_names ('conv2d/kernel:0', ...) in Keras 2's order (all
    trainable weights by layer, then the non-trainable ones) and one dataset per weight.
    Non-finite weights raise ValueError (the caller's temporary file is then discarded).
    """
    import h5py

    with h5py.File(path, "w") as handle:
        # The thesis's whole model: its input layer (Keras 2 named it input_3), then the sub-models.
        handle.attrs["layer_names"] = [b"input_3", b"encoder", b"decoder"]
        handle.attrs["backend"] = b"tensorflow"
        handle.attrs["keras_version"] = keras.__version__.encode("utf8")
        if parameters is not None:
            handle.attrs["semantic_timbre_parameters"] = json.dumps(parameters).encode("utf8")
        handle.create_group("input_3").attrs["weight_names"] = []
        handle.create_group("top_level_model_weights").attrs["weight_names"] = []
        for model in (vae.encoder, vae.decoder):
            group = handle.create_group(model.name)
            weighted = _weighted_layers(model)
            entries = [(layer, variable) for layer in weighted for variable in layer.trainable_weights]
            entries += [(layer, variable) for layer in weighted for variable in layer.non_trainable_weights]
            weight_names = [f"{layer.name}/{_variable_name(variable)}:0" for layer, variable in entries]
            group.attrs["weight_names"] = [name.encode("utf8") for name in weight_names]
            for name, (layer, variable) in zip(weight_names, entries):
                value = np.asarray(keras.ops.convert_to_numpy(variable))
                if not np.all(np.isfinite(value)):
                    raise ValueError(f"refusing to save the model: {model.name} layer {layer.name} holds NaN "
                                     f"or infinite weights (training diverged?)")
                group.create_dataset(name, data=value)


def _decode(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def read_legacy_weights(path, vae: VAE, parameters=None) -> None:
    """Load a Keras 2 legacy weights.h5 (the thesis's layout, or ours) into `vae`.

    Weights are matched to layers in build order within each sub-model, as Keras 2 did, so the
    file's layer names (which depend on what else its session built) do not matter; the kind of
    each weight and its shape are checked.
    """
    import h5py

    path = Path(path)
    retrain = f"delete {path.parent}/ and {RUN_TRAINING}"
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ModelFolderError(f"{path} is not a readable weights file ({error}): {retrain}") from None
    with handle:
        recorded = handle.attrs.get("semantic_timbre_parameters")
        if recorded is not None and parameters is not None and json.loads(_decode(recorded)) != json.loads(
                json.dumps(parameters)):
            raise ModelFolderError(f"{path} was saved with other parameters than {path.parent}/'s parameter "
                                   f"files (an interrupted save?): {retrain}")
        root = handle["model_weights"] if "model_weights" in handle else handle
        for model in (vae.encoder, vae.decoder):
            if model.name not in root:
                raise ModelFolderError(f"{path} has no '{model.name}' group: it is not a weights file of this "
                                       f"VAE (Keras 2 layout with groups 'encoder' and 'decoder' expected): {retrain}")
            _load_sub_model(root[model.name], model, path, retrain)


def _load_sub_model(group, model, path, retrain) -> None:
    try:
        weight_names = [_decode(name) for name in group.attrs["weight_names"]]
        by_layer: dict[str, dict[str, np.ndarray]] = {}
        for name in weight_names:
            parts = name.split(":")[0].split("/")
            by_layer.setdefault(parts[-2] if len(parts) > 1 else "", {})[parts[-1]] = np.asarray(group[name])
    except (KeyError, OSError, ValueError) as error:
        raise ModelFolderError(f"{path} is incomplete or corrupt in '{group.name}' ({error}): {retrain}") from None
    weighted = _weighted_layers(model)
    if len(by_layer) != len(weighted):
        raise ModelFolderError(f"{path} holds {len(by_layer)} layers with weights in '{model.name}', the model "
                               f"built from the parameters has {len(weighted)}: the weights do not belong to "
                               f"these parameters; {retrain}")
    for layer, (file_layer, values) in zip(weighted, by_layer.items()):
        variables = layer.trainable_weights + layer.non_trainable_weights
        for variable in variables:
            kind = _variable_name(variable)
            value = values.get(kind)
            if value is None or tuple(value.shape) != tuple(variable.shape):
                found = "missing" if value is None else f"of shape {value.shape}"
                raise ModelFolderError(
                    f"{path}: weight '{kind}' of layer {file_layer} in '{model.name}' is {found}, the model "
                    f"built from the parameters expects {tuple(variable.shape)} for its layer {layer.name}; "
                    f"{retrain}")
            variable.assign(value)
        if len(values) != len(variables):
            raise ModelFolderError(f"{path}: layer {file_layer} in '{model.name}' has weights "
                                   f"{sorted(values)}, expected {[_variable_name(v) for v in variables]}; {retrain}")
