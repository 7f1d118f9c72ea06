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

import contextlib
import json
import math
import pickle
from collections import defaultdict
from pathlib import Path

import numpy as np

from semantic_timbre import layout, safe_io
from semantic_timbre.backend import quiet_tensorflow
from semantic_timbre.network.config import Conditioning, ModelConfig, ModelFolderError, _as_tuples, check_parameters
from semantic_timbre.network.keras2_format import read_legacy_weights, write_legacy_weights
from semantic_timbre.network.latent_sampling import bound_log_variance, reparameterize, sample_latent
from semantic_timbre.network.model_files import (PARAMETERS_JSON, PARAMETERS_PICKLE, WEIGHTS_FILE, check_model_config,
                                                 check_model_folder, spectrogram_batch)
from semantic_timbre.network.onnx_export import try_export_onnx

quiet_tensorflow()

import keras  # noqa: E402  (after quiet_tensorflow)
from keras import layers, ops  # noqa: E402

RECONSTRUCTION_LOSS_WEIGHT = 1_000_000

# The "spectral" loss (ModelConfig.loss): the thesis's terms plus two that weight what is heard,
# each scaled by RECONSTRUCTION_LOSS_WEIGHT like the MSE. What chose them (32 epochs of the demo
# preset, the 177 held-out notes; docs/sound_quality.md): the thesis's loss left the loudest 20 dB
# 11 dB low; adding the loud term brought them to -2.2 dB, the inverted notes' spectral
# convergence from 0.87 to 0.23 and the judge on reconstructions from 0.24 to 0.62.
#: The dB range the normalised spectrograms span: amplitude_to_db's top_db (80 dB below the maximum).
SPECTRAL_RANGE_DB = 80.0
#: Weight of the loud bins' term, the squared spectral convergence of the linear magnitudes
#: 10 ** (80 (x - 1) / 20): an error in the harmonics (the top 20 dB, under 2% of the bins) costs
#: as much as it is heard, where the dB MSE spends itself on the noise floor (84% of the bins).
LOUD_LOSS_WEIGHT = 0.05
#: Weight of the envelope term, the MSE of each frame's energy in dB (over the 80 dB range): the
#: onset, the gating of Stuttering and the tremolo of modulation effects, which the per-bin terms
#: average away. At 2.0 it made every figure worse (alone: LSD 9.7 dB); at 0.2 beside the loud
#: term the judge heard a little more (reconstructions 0.63 against 0.62, applied 0.65 against 0.61).
ENVELOPE_LOSS_WEIGHT = 0.2


def loud_bin_loss(target, reconstruction):
    """Per example, the squared spectral convergence of the linear magnitudes,
    sum((a - a_hat)^2) / sum(a^2) with a = 10 ** (SPECTRAL_RANGE_DB (x - 1) / 20): (N,) float32."""
    scale = SPECTRAL_RANGE_DB * math.log(10.0) / 20.0
    amplitude, estimate = ops.exp(scale * (target - 1.0)), ops.exp(scale * (reconstruction - 1.0))
    axes = tuple(range(1, len(target.shape)))
    return ops.sum(ops.square(amplitude - estimate), axis=axes) / (ops.sum(ops.square(amplitude), axis=axes) + 1e-12)


def envelope_loss(target, reconstruction):
    """Per example, the mean squared difference of the frame energies (10 log10 of the mean power
    over frequency, in units of SPECTRAL_RANGE_DB): (N,) float32. Spectrograms (N, bins, frames, 1)."""
    scale = SPECTRAL_RANGE_DB * math.log(10.0) / 10.0

    def envelope(x):
        power = ops.mean(ops.exp(scale * (x - 1.0)), axis=1)  # (N, frames, 1)
        return 10.0 * ops.log(power + 1e-9) / (math.log(10.0) * SPECTRAL_RANGE_DB)

    difference = envelope(target) - envelope(reconstruction)
    return ops.mean(ops.reshape(ops.square(difference), (ops.shape(difference)[0], -1)), axis=1)


def spectral_terms(target, reconstruction):
    """Per example, what the "spectral" loss adds to the thesis's MSE (before RECONSTRUCTION_LOSS_WEIGHT):
    the weighted terms above whose weight is not 0. (N,) float32."""
    total = LOUD_LOSS_WEIGHT * loud_bin_loss(target, reconstruction)
    if ENVELOPE_LOSS_WEIGHT:
        total = total + ENVELOPE_LOSS_WEIGHT * envelope_loss(target, reconstruction)
    return total


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
    """z = mu + exp(log_variance / 2) * eps, eps ~ N(0, 1), drawn from the layer's own seed; the
    log-variance taken at most LOG_VARIANCE_BOUND (a bound training never reaches, so that a
    run-away never overflows exp). The formula is latent_sampling.reparameterize's, the one
    the numpy runtimes use (sample_latent)."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        mu, log_variance = inputs
        epsilon = keras.random.normal(ops.shape(mu), dtype=mu.dtype, seed=self.seed_generator)
        return reparameterize(mu, log_variance, epsilon, ops)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="semantic_timbre")
class FusedBatchNormalization(layers.BatchNormalization):
    """Keras's BatchNormalization, with TensorFlow's fused kernel in training.

    Keras 3 normalises a training batch with separate ops (moments, then scale and shift) and
    differentiates each: about ten passes over the activations forward and back, where the
    fused kernel (FusedBatchNormV3, Keras 2's default) makes one each way. On a CPU, over the
    thesis's 512-filter activations (about 1 GB a batch of 64), that is most of the difference.
    Same weights, the same outputs and the same moving statistics (biased batch variance);
    inference, masks and other axes go through Keras's own code.
    """

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable) or mask is not None or self.renorm or self.synchronized \
                or len(inputs.shape) != 4 or self.axis not in (3, -1) or keras.backend.backend() != "tensorflow":
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        x = tf.cast(inputs, "float32")
        channels = x.shape[-1]
        gamma = tf.cast(self.gamma, "float32") if self.scale else tf.ones((channels,), "float32")
        beta = tf.cast(self.beta, "float32") if self.center else tf.zeros((channels,), "float32")
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(x, gamma, beta, epsilon=self.epsilon,
                                                                   data_format="NHWC", is_training=True)
        # The kernel returns the unbiased (Bessel-corrected) variance; Keras tracks the biased one.
        count = tf.cast(tf.reduce_prod(tf.shape(x)[:3]), "float32")
        variance = variance * ((count - 1.0) / count)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return tf.cast(outputs, self.compute_dtype)


def _space_to_depth_filter_gradient(inputs, output_gradient):
    """The gradient of a 3x3, stride-2, "same" convolution's kernel: (3, 3, C_in, C_out).

    `inputs` (N, H, W, C_in) with H and W even (so "same" pads none before), `output_gradient`
    (N, H/2, W/2, C_out). Tap (kh, kw) = (2a + p, 2b + q) reads input pixel (2(oh + a) + p,
    2(ow + b) + q): after space_to_depth (block 2) the four parities (p, q) are channels, so
    every tap is a product of the rearranged inputs with the output gradient shifted by (a, b):
    one matrix product (4 C_in x N H W) x (N H W x 4 C_out), of which 9 of the 16 blocks are
    kept. The sums are Conv2DBackpropFilter's in another order (float32 round-off, 1e-5
    relative); oneDNN's kernel for them ran at a fifth of the forward convolution's speed here.
    """
    import tensorflow as tf

    channels, filters = int(inputs.shape[-1]), int(output_gradient.shape[-1])

    def shifted(a, b):
        y = output_gradient
        if a:
            y = tf.pad(y[:, :-a], [[0, 0], [a, 0], [0, 0], [0, 0]])
        if b:
            y = tf.pad(y[:, :, :-b], [[0, 0], [0, 0], [b, 0], [0, 0]])
        return y

    rearranged = tf.reshape(tf.nn.space_to_depth(inputs, 2), (-1, 4 * channels))  # columns (p, q, c)
    shifts = tf.reshape(tf.concat([shifted(a, b) for a in (0, 1) for b in (0, 1)], axis=-1),
                        (-1, 4 * filters))  # columns (a, b, filter)
    blocks = tf.reshape(tf.matmul(rearranged, shifts, transpose_a=True), (2, 2, channels, 2, 2, filters))
    taps = tf.reshape(tf.transpose(blocks, (3, 0, 4, 1, 2, 5)), (4, 4, channels, filters))  # (2a+p, 2b+q)
    return taps[:3, :3]


def _fast_filter_gradient_applies(large_shape, small_channels, layer) -> bool:
    """Whether _space_to_depth_filter_gradient serves `layer`'s convolution between a large
    tensor of `large_shape` (N, H, W, C) and a small one of `small_channels`: where it measured
    faster than oneDNN's kernel (the thesis's 512- and 256-filter layers at full resolution;
    on smaller ones oneDNN's is as fast or faster)."""
    if keras.backend.backend() != "tensorflow" or layer.data_format != "channels_last" \
            or layer.padding != "same" or tuple(layer.kernel_size) != (3, 3) or tuple(layer.strides) != (2, 2) \
            or tuple(layer.dilation_rate) != (1, 1) or getattr(layer, "output_padding", None) is not None:
        return False
    _, height, width, channels = large_shape
    return (height is not None and width is not None and height % 2 == 0 and width % 2 == 0
            and height * width >= 4096 and channels >= 256 and small_channels >= 128)


def _convolution_with_fast_filter_gradient(inputs, kernel):
    """tf.nn.conv2d(inputs, kernel, 2, "SAME"), its kernel's gradient _space_to_depth_filter_gradient's."""
    import tensorflow as tf

    @tf.custom_gradient
    def convolve(x, k):
        def gradient(upstream):
            x_gradient = tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(x), filter=k, out_backprop=upstream,
                                                        strides=[1, 2, 2, 1], padding="SAME")
            return x_gradient, tf.cast(_space_to_depth_filter_gradient(x, upstream), k.dtype)

        return tf.nn.conv2d(x, k, strides=2, padding="SAME"), gradient

    return convolve(inputs, kernel)


def _transposed_convolution_with_fast_filter_gradient(inputs, kernel, filters):
    """tf.nn.conv2d_transpose(inputs, kernel, 2, "SAME") to twice the height and width, its
    kernel's gradient _space_to_depth_filter_gradient's (the output being the convolution's input)."""
    import tensorflow as tf

    @tf.custom_gradient
    def convolve(x, k):
        shape = tf.shape(x)
        output_shape = tf.stack([shape[0], 2 * shape[1], 2 * shape[2], filters])

        def gradient(upstream):
            x_gradient = tf.nn.conv2d(upstream, k, strides=2, padding="SAME")
            return x_gradient, tf.cast(_space_to_depth_filter_gradient(upstream, x), k.dtype)

        outputs = tf.nn.conv2d_transpose(x, k, output_shape, strides=2, padding="SAME")
        return tf.ensure_shape(outputs, (x.shape[0], 2 * x.shape[1], 2 * x.shape[2], filters)), gradient

    return convolve(inputs, kernel)


def _read(variable):
    """A variable's value as a plain tensor (tf.custom_gradient takes tensors, not variables)."""
    import tensorflow as tf

    return tf.identity(variable.value if hasattr(variable, "value") else variable)


@keras.saving.register_keras_serializable(package="semantic_timbre")
class FastGradientConv2D(layers.Conv2D):
    """Keras's Conv2D (same weights, same outputs) whose kernel's gradient is
    _space_to_depth_filter_gradient's where that applies (the thesis's 512-filter layer's input)."""

    def convolution_op(self, inputs, kernel):
        if not _fast_filter_gradient_applies(tuple(inputs.shape), self.filters, self):
            return super().convolution_op(inputs, kernel)
        return _convolution_with_fast_filter_gradient(inputs, _read(kernel))


@keras.saving.register_keras_serializable(package="semantic_timbre")
class FastGradientConv2DTranspose(layers.Conv2DTranspose):
    """Keras's Conv2DTranspose (same weights, same outputs) whose kernel's gradient is
    _space_to_depth_filter_gradient's where that applies (the decoder's 256-filter layer)."""

    def call(self, inputs):
        batch, height, width, channels = tuple(inputs.shape)
        large = (batch, None if height is None else 2 * height, None if width is None else 2 * width, self.filters)
        if not _fast_filter_gradient_applies(large, channels, self):
            return super().call(inputs)
        outputs = _transposed_convolution_with_fast_filter_gradient(inputs, _read(self.kernel),
                                                                    self.filters)
        if self.use_bias:
            outputs = ops.add(outputs, ops.reshape(self.bias, (1, 1, 1, self.filters)))
        return self.activation(outputs) if self.activation is not None else outputs


def _build_encoder(input_shape, filters, kernels, strides, latent, names, seed, condition_size=0):
    spectrogram = keras.Input(shape=tuple(input_shape), name="input_1" if not condition_size else "spectrogram")
    inputs = spectrogram
    x = spectrogram
    for count, kernel, stride in zip(filters, kernels, strides):
        x = FastGradientConv2D(count, _pair(kernel), strides=_pair(stride), padding="same", name=names("conv2d"))(x)
        x = layers.ReLU(name=names("re_lu"))(x)
        x = FusedBatchNormalization(name=names("batch_normalization"))(x)
    shape_before_bottleneck = tuple(int(size) for size in x.shape[1:])
    x = layers.Flatten(name=names("flatten"))(x)
    if condition_size:  # a conditioned model: the condition beside the flattened features
        condition = keras.Input(shape=(condition_size,), name="condition")
        inputs = {"spectrogram": spectrogram, "condition": condition}
        x = layers.Concatenate(name="encoder_condition")([x, condition])
    # The distribution's parameters and the sample stay float32 under mixed precision.
    mu = layers.Dense(latent, name="mu", dtype="float32")(x)
    log_variance = layers.Dense(latent, name="log_variance", dtype="float32")(x)
    z = Sampling(seed=seed, name=names("lambda"), dtype="float32")([mu, log_variance])
    return keras.Model(inputs, [mu, log_variance, z], name="encoder"), shape_before_bottleneck


def _upsample(x, filters, kernel, stride, upsampling, names):
    """One decoder step up by `stride`: the thesis's Conv2DTranspose, or a resize then a Conv2D.

    A strided transposed convolution whose kernel the stride does not divide (3 and 2) covers
    even and odd output positions with different numbers of kernel taps: a checkerboard, heard
    along time as an even/odd frame flicker. Resizing first (nearest or bilinear) and convolving
    at stride 1 treats every output position alike (Odena et al., 2016, "Deconvolution and
    Checkerboard Artifacts").
    """
    if upsampling == "transposed":
        return FastGradientConv2DTranspose(filters, _pair(kernel), strides=_pair(stride), padding="same",
                                           name=names("conv2d_transpose"))(x)
    if _pair(stride) != (1, 1):
        x = layers.UpSampling2D(_pair(stride), interpolation=upsampling, name=names("up_sampling2d"))(x)
    return layers.Conv2D(filters, _pair(kernel), padding="same", name=names("conv2d"))(x)


def _build_decoder(shape_before_bottleneck, filters, kernels, strides, latent, names, condition_size=0,
                   upsampling="transposed"):
    z = keras.Input(shape=(latent,), name="input_2" if not condition_size else "z")
    inputs, x = z, z
    if condition_size:  # a conditioned model: the condition beside z
        condition = keras.Input(shape=(condition_size,), name="condition")
        inputs = {"z": z, "condition": condition}
        x = layers.Concatenate(name="decoder_condition")([z, condition])
    x = layers.Dense(math.prod(shape_before_bottleneck), name=names("dense"))(x)
    x = layers.Reshape(shape_before_bottleneck, name=names("reshape"))(x)
    for index in reversed(range(1, len(filters))):
        x = _upsample(x, filters[index], kernels[index], strides[index], upsampling, names)
        x = layers.ReLU(name=names("re_lu"))(x)
        x = FusedBatchNormalization(name=names("batch_normalization"))(x)
    x = _upsample(x, 1, kernels[0], strides[0], upsampling, names)
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
    conditioning : config.Conditioning or None (the thesis's unconditioned VAE). A
        conditioned model's encoder and decoder take named inputs {"spectrogram" or "z",
        "condition"}; its methods take `conditions` (N, conditioning.size), one row per note.

    Attributes
    ----------
    encoder : keras.Model, spectrograms (N, *input_shape) -> [mu, log_variance, z]
    decoder : keras.Model, latent codes (N, latent) -> spectrograms (N, *input_shape) in [0, 1]
    config : config.ModelConfig, the architecture and the conditioning
    model : the whole model decoder(encoder(x)) (the VAE itself), the thesis's attribute
    latent_space_dimension : int
    parameters : the thesis's list [input_shape, conv_filters, conv_kernels, conv_strides,
        latent_space_dimension]
    """

    def __init__(self, input_shape, conv_filters, conv_kernels, conv_strides, latent_space_dimension,
                 seed=None, name="vae", conditioning=None, upsampling="transposed", loss="thesis", **kwargs):
        parameters = check_parameters([input_shape, conv_filters, conv_kernels, conv_strides,
                                       latent_space_dimension], "the VAE's parameters")
        super().__init__(name=name, **kwargs)
        self._config = ModelConfig.from_parameters(parameters, conditioning or Conditioning(), upsampling=upsampling,
                                                   loss=loss)
        condition_size = self._config.conditioning.size
        input_shape, conv_filters, conv_kernels, conv_strides, latent_space_dimension = parameters
        self._parameters_json = json.dumps(parameters)  # a string: no Keras tracking wrappers
        self._parameters_pickle = pickle.dumps(parameters)
        self.latent_space_dimension = int(latent_space_dimension)
        self._spectrogram_shape = tuple(int(size) for size in input_shape)
        names = _Keras2Names()
        self.encoder, bottleneck = _build_encoder(input_shape, conv_filters, conv_kernels, conv_strides,
                                                  self.latent_space_dimension, names, seed, condition_size)
        self.decoder = _build_decoder(bottleneck, conv_filters, conv_kernels, conv_strides,
                                      self.latent_space_dimension, names, condition_size, self._config.upsampling)
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

    @classmethod
    def from_config(cls, config, seed=None) -> "VAE":
        """Build the model a config.ModelConfig describes."""
        return cls(*config.parameters, seed=seed, conditioning=config.conditioning, upsampling=config.upsampling,
                   loss=config.loss)

    @property
    def config(self):
        return self._config

    @property
    def conditioning(self):
        return self._config.conditioning

    # -- thesis attributes

    @property
    def parameters(self) -> list:
        return pickle.loads(self._parameters_pickle)

    @property
    def spectrogram_shape(self) -> tuple:
        return self._spectrogram_shape

    @property
    def model(self):
        """The whole model, decoder(encoder(x)), as the thesis's class had it (this object itself)."""
        return self

    def _encoder_inputs(self, spectrograms, conditions):
        return {"spectrogram": spectrograms, "condition": conditions} if self.conditioning.size else spectrograms

    def _decoder_inputs(self, z, conditions):
        return {"z": z, "condition": conditions} if self.conditioning.size else z

    def call(self, inputs, training=None):
        spectrograms, conditions = (inputs["spectrogram"], inputs["condition"]) if isinstance(inputs, dict) \
            else (inputs, None)
        _, _, z = self.encoder(self._encoder_inputs(spectrograms, conditions), training=training)
        return self.decoder(self._decoder_inputs(z, conditions), training=training)

    def summary(self, *args, **kwargs):
        """Print the encoder's, the decoder's and the whole model's summaries (as the thesis did)."""
        self.encoder.summary(*args, **kwargs)
        self.decoder.summary(*args, **kwargs)
        super().summary(*args, **kwargs)

    # -- training

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def compile(self, learning_rate=0.0005, jit_compile="auto", clip_gradient_norm=None, **kwargs):
        """Compile with Adam at `learning_rate` (a number or a schedule), the gradients' global norm
        clipped to `clip_gradient_norm` when given; `jit_compile` XLA-compiles the train step
        ("auto": only with a GPU; on CPUs TensorFlow's own kernels measured faster,
        bench/bench_training.py)."""
        if jit_compile == "auto":
            import tensorflow as tf

            jit_compile = bool(tf.config.list_logical_devices("GPU"))
        kwargs.setdefault("optimizer", keras.optimizers.Adam(learning_rate=learning_rate,
                                                             global_clipnorm=clip_gradient_norm))
        super().compile(jit_compile=jit_compile, **kwargs)

    def compute_losses(self, spectrograms, training=False, conditions=None):
        """Return (total, reconstruction, kl, reconstructions): losses averaged over the batch,
        computed in float32 whatever the compute precision."""
        mu, log_variance, z = self.encoder(self._encoder_inputs(spectrograms, conditions), training=training)
        reconstructions = self.decoder(self._decoder_inputs(z, conditions), training=training)
        target = ops.cast(spectrograms, "float32")
        mu, log_variance = ops.cast(mu, "float32"), ops.cast(log_variance, "float32")
        estimate = ops.cast(reconstructions, "float32")
        squared_error = ops.square(target - estimate)
        mean_squared_error = ops.mean(ops.reshape(squared_error, (ops.shape(squared_error)[0], -1)), axis=1)
        if self._config.loss == "spectral":
            mean_squared_error = mean_squared_error + spectral_terms(target, estimate)
        reconstruction = RECONSTRUCTION_LOSS_WEIGHT * ops.mean(mean_squared_error)
        # The thesis's KL; a log-variance above LOG_VARIANCE_BOUND (never reached in training) counts
        # as the bound in both terms, so the term stays finite and gives no push further up.
        log_variance = bound_log_variance(log_variance, ops)
        kl = ops.mean(-0.5 * ops.sum(1 + log_variance - ops.square(mu) - ops.exp(log_variance), axis=1))
        return reconstruction + kl, reconstruction, kl, reconstructions

    def _unpack(self, data):
        """(spectrograms, conditions) of a batch: x, (x,), (x, conditions) or {"spectrogram", "condition"}."""
        conditions = None
        if isinstance(data, dict):
            data, conditions = data["spectrogram"], data.get("condition")
        elif isinstance(data, (tuple, list)) and self.conditioning.size:
            data, conditions = data[0], data[1] if len(data) > 1 else None
        while isinstance(data, (tuple, list)):  # (x,), (x, y) or (x, y, sample_weight): x is the target
            data = data[0]
        if len(data.shape) == 3:
            data = ops.expand_dims(data, -1)
        if self.conditioning.size and conditions is None:
            raise ValueError(f"this {self.conditioning.kind}-conditioned model needs a condition per spectrogram")
        return data, conditions

    def _track(self, total, reconstruction, kl):
        self.total_loss_tracker.update_state(total)
        self.reconstruction_loss_tracker.update_state(reconstruction)
        self.kl_loss_tracker.update_state(kl)
        return {metric.name: metric.result() for metric in self.metrics}

    def train_step(self, data):
        import tensorflow as tf

        spectrograms, conditions = self._unpack(data)
        with tf.GradientTape() as tape:
            total, reconstruction, kl, _ = self.compute_losses(spectrograms, training=True, conditions=conditions)
            # Gradients are summed over replicas under tf.distribute: scale so that they average.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled = total / replicas if replicas > 1 else total
            scaled = self.optimizer.scale_loss(scaled)  # loss scaling under mixed_float16
        gradients = tape.gradient(scaled, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        return self._track(total, reconstruction, kl)

    def test_step(self, data):
        spectrograms, conditions = self._unpack(data)
        total, reconstruction, kl, _ = self.compute_losses(spectrograms, training=False, conditions=conditions)
        return self._track(total, reconstruction, kl)

    def train(self, x, batch_size=64, num_epochs=300, conditions=None, **fit_kwargs):
        """Train on `x` (a numpy array of spectrograms or a batched tf.data.Dataset); return the History.

        A numpy array is shuffled every epoch, as in the thesis; a conditioned model takes its
        `conditions` (N, size) beside it (a dataset yields (spectrograms, conditions) batches).
        Extra keyword arguments go to fit.
        """
        if getattr(self, "optimizer", None) is None:
            self.compile()
        if isinstance(x, np.ndarray):
            x = self._as_batch(x)
            fit_kwargs.setdefault("shuffle", True)
            y = self._as_conditions(conditions, len(x)) if self.conditioning.size else None
            return self.fit(x, y, batch_size=batch_size, epochs=num_epochs, **fit_kwargs)
        fit_kwargs.setdefault("shuffle", False)  # a dataset shuffles itself
        return self.fit(x, epochs=num_epochs, **fit_kwargs)

    # -- inference

    def _as_batch(self, spectrograms) -> np.ndarray:
        return spectrogram_batch(spectrograms, self._spectrogram_shape)

    def _as_conditions(self, conditions, count: int) -> np.ndarray:
        """The checked conditions (count, size); an empty (count, 0) array for an unconditioned model."""
        checked = self.conditioning.checked(conditions, count)
        return np.zeros((count, 0), np.float32) if checked is None else checked

    def _infer(self, which: str, batch: np.ndarray, conditions: np.ndarray):
        import tensorflow as tf

        function = self._inference.get(which)
        if function is None:
            if which == "encode":
                function = tf.function(lambda x, c: self.encoder(self._encoder_inputs(x, c), training=False)[:2],
                                       reduce_retracing=True, autograph=False)
            else:
                function = tf.function(lambda z, c: self.decoder(self._decoder_inputs(z, c), training=False),
                                       reduce_retracing=True, autograph=False)
            self._inference[which] = function
        return function(tf.constant(batch), tf.constant(conditions))

    def encode(self, spectrograms, batch_size=64, seed=None, *, conditions=None):
        """Encode spectrograms (N, 512, 64) or (N, 512, 64, 1) in batches (a conditioned model:
        with their `conditions` (N, size)).

        Returns (mu, log_variance, z), float32 arrays of shape (N, latent), with
        z = mu + exp(log_variance / 2) * eps and eps drawn by numpy.random.default_rng(seed).
        """
        spectrograms = self._as_batch(spectrograms)
        conditions = self._as_conditions(conditions, len(spectrograms))
        mus, log_variances = [], []
        for start in range(0, len(spectrograms), batch_size):
            mu, log_variance = self._infer("encode", spectrograms[start:start + batch_size],
                                           conditions[start:start + batch_size])
            mus.append(np.asarray(mu, dtype=np.float32))
            log_variances.append(np.asarray(log_variance, dtype=np.float32))
        empty = np.zeros((0, self.latent_space_dimension), np.float32)
        mu = np.concatenate(mus) if mus else empty
        log_variance = np.concatenate(log_variances) if log_variances else empty
        return mu, log_variance, sample_latent(mu, log_variance, seed)

    def decode(self, latent, batch_size=64, *, conditions=None):
        """Decode latent codes (N, latent) in batches (a conditioned model: with the `conditions`
        (N, size) to decode them with) into spectrograms (N, 512, 64, 1), float32 in [0, 1]."""
        latent = np.asarray(latent, dtype=np.float32)
        if latent.ndim != 2 or latent.shape[1] != self.latent_space_dimension:
            raise ValueError(f"expected latent codes of shape (N, {self.latent_space_dimension}), got {latent.shape}")
        conditions = self._as_conditions(conditions, len(latent))
        outputs = [np.asarray(self._infer("decode", latent[start:start + batch_size],
                                          conditions[start:start + batch_size]), dtype=np.float32)
                   for start in range(0, len(latent), batch_size)]
        return np.concatenate(outputs) if outputs else np.zeros((0, *self._spectrogram_shape), np.float32)

    def reconstruct(self, spectrograms, seed=None, batch_size=64, *, conditions=None):
        """Return (reconstructions, z): the decoded samples z of the encoded spectrograms (each
        with its own condition for a conditioned model)."""
        _, _, z = self.encode(spectrograms, batch_size=batch_size, seed=seed, conditions=conditions)
        return self.decode(z, batch_size=batch_size, conditions=conditions), z

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
                batch, conditions = self._unpack(batch)
                batch = ops.convert_to_tensor(self._as_batch(batch))
                if conditions is not None:
                    conditions = ops.convert_to_tensor(self._as_conditions(conditions, len(batch)))
                _, _, z = self.encoder(self._encoder_inputs(batch, conditions), training=True)
                self.decoder(self._decoder_inputs(z, conditions), training=True)
                seen += len(batch)
        finally:
            for layer, momentum in zip(norms, momenta):
                layer.momentum = momentum
        return seen

    # -- saving and loading

    def save(self, folder=layout.MODEL_DIR, onnx: bool = True):
        """Write parameters.pkl, parameters.json and weights.h5 (Keras 2's legacy layout) to `folder`,
        then (with `onnx`) the ONNX export the commands run without TensorFlow (inference.py; a
        failed export is a warning: the commands then use TensorFlow).

        A conditioned model or a resize decoder writes no parameters.pkl (the thesis's code could
        not build it; one left there by an earlier model is removed): its parameters.json holds
        the conditioning, the upsampling and the loss.
        Each file is written to a temporary name and renamed into place only when complete, so an
        interrupted save leaves the previous files, never half-written weights. Refuses NaN weights.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        parameters, config = self.parameters, self.config
        recorded = config.to_json() if config.extended else parameters
        with contextlib.ExitStack() as stack:
            weights_temporary = stack.enter_context(safe_io.atomic_path(folder / WEIGHTS_FILE))
            if config.thesis_buildable:
                with open(stack.enter_context(safe_io.atomic_path(folder / PARAMETERS_PICKLE)), "wb") as handle:
                    pickle.dump(list(_as_tuples(parameters)), handle, protocol=4)
            stack.enter_context(safe_io.atomic_path(folder / PARAMETERS_JSON)).write_text(config.dumps())
            write_legacy_weights(weights_temporary, self, recorded)
        # The renames happen in reverse order on leaving: json, pickle, then weights.h5. A crash in
        # between leaves weights.h5 whose recorded parameters differ, which load() reports.
        if not config.thesis_buildable:
            (folder / PARAMETERS_PICKLE).unlink(missing_ok=True)
        if onnx:
            try_export_onnx(self, folder)

    @classmethod
    def load(cls, folder=layout.MODEL_DIR, *, config=None):
        """Load a model folder: ours or the author's released one (parameters.pkl + Keras 2 weights.h5).

        `config`: the folder's configuration as check_model_config returned it, when the caller
        has checked the folder already; the model is then built from it and the parameter files
        are not read again (only weights.h5 is read, and checked against it).

        Raises
        ------
        ModelFolderError
            If the folder is missing, incomplete or unreadable.
        UnsafePickleError
            If parameters.pkl would build anything but plain data (nothing of it runs).
        """
        folder = Path(folder)
        if config is not None:
            vae = cls.from_config(config)
        else:
            config = check_model_config(folder)
            # The thesis's model keeps its parameters as its files give them (tuples from the pickle).
            vae = cls.from_config(config) if config.extended else cls(*check_model_folder(folder))
        read_legacy_weights(folder / WEIGHTS_FILE, vae, config.to_json() if config.extended else config.parameters)
        return vae


