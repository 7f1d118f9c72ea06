"""The baseline side of bench/bench_training.py: the thesis's training under Keras 2, in its own process.

Runs with any Python that has TensorFlow: TensorFlow 2.15 or older (a separate venv, e.g.
`python3.11 -m venv ../tf215 && ../tf215/bin/pip install tensorflow-cpu==2.15.1 "numpy<2"`),
whose tf.keras is Keras 2 as the thesis ran it, or TensorFlow 2.16+ with tf-keras (Keras 2
rebuilt for it, imported as tf_keras). It imports nothing of this project.

The model is the thesis's architecture layer for layer (REFERENCE.md section 3; the thesis's
source text is not in this repository, so this is the rebuild tests/legacy_keras2_fixture.py
also uses, whose weights load into the thesis's layout): eager execution disabled as the thesis's
code did, the legacy Adam at 0.0005, the loss 1,000,000 x MSE + KL given to compile with the two
metrics, model.fit on a numpy array, shuffled. Random spectrograms, as the other side.

Usage: python bench/keras2_thesis_training.py --parameters JSON --batch-size 64 --warmup 1 --steps 5
Prints one JSON line: the wall and CPU seconds of each step, examples/s, TensorFlow's version.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

LEARNING_RATE = 0.0005


def keras2():
    """Keras 2: tf.keras up to TensorFlow 2.15, the tf_keras package after."""
    major, minor = (int(part) for part in tf.__version__.split(".")[:2])
    if (major, minor) >= (2, 16):
        import tf_keras

        return tf_keras
    return tf.keras


def keras_version() -> str:
    try:
        import keras

        return keras.__version__
    except ImportError:
        return ""


def build(keras, input_shape, conv_filters, conv_kernels, conv_strides, latent_space_dimension):
    """The thesis's architecture, layer for layer in the thesis's order, with Keras 2's names;
    returns (autoencoder, mu, log_variance)."""
    layers, K = keras.layers, keras.backend
    encoder_input = layers.Input(shape=input_shape)
    x = encoder_input
    for filters, kernel, stride in zip(conv_filters, conv_kernels, conv_strides):
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same")(x)
        x = layers.ReLU()(x)
        x = layers.BatchNormalization()(x)
    shape_before_bottleneck = K.int_shape(x)[1:]
    x = layers.Flatten()(x)
    mu = layers.Dense(latent_space_dimension, name="mu")(x)
    log_variance = layers.Dense(latent_space_dimension, name="log_variance")(x)

    def sample(arguments):
        mean, log_var = arguments
        return mean + K.exp(log_var / 2) * K.random_normal(shape=K.shape(mean))

    z = layers.Lambda(sample)([mu, log_variance])
    encoder = keras.Model(encoder_input, z, name="encoder")

    decoder_input = layers.Input(shape=(latent_space_dimension,))
    x = layers.Dense(int(np.prod(shape_before_bottleneck)))(decoder_input)
    x = layers.Reshape(shape_before_bottleneck)(x)
    for index in reversed(range(1, len(conv_filters))):
        x = layers.Conv2DTranspose(conv_filters[index], conv_kernels[index], strides=conv_strides[index],
                                   padding="same")(x)
        x = layers.ReLU()(x)
        x = layers.BatchNormalization()(x)
    x = layers.Conv2DTranspose(1, conv_kernels[0], strides=conv_strides[0], padding="same")(x)
    decoder = keras.Model(decoder_input, layers.Activation("sigmoid")(x), name="decoder")
    # The thesis's autoencoder took the encoder's own input, so that its loss could use the
    # encoder's mu and log_variance tensors of the same graph.
    return keras.Model(encoder_input, decoder(encoder(encoder_input)), name="autoencoder"), mu, log_variance


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parameters", required=True,
                        help="JSON [input_shape, conv_filters, conv_kernels, conv_strides, latent_space_dimension]")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5)
    arguments = parser.parse_args(argv)
    parameters = json.loads(arguments.parameters)
    parameters[0] = tuple(parameters[0])
    parameters[3] = [tuple(stride) if isinstance(stride, list) else stride for stride in parameters[3]]

    tf.compat.v1.disable_eager_execution()  # as the thesis's code did
    keras = keras2()
    K = keras.backend
    keras.utils.set_random_seed(0)
    model, mu, log_variance = build(keras, *parameters)

    def reconstruction_loss(y_target, y_predicted):
        return K.mean(K.square(y_target - y_predicted), axis=[1, 2, 3])

    def kl_loss(y_target, y_predicted):
        return -0.5 * K.sum(1 + log_variance - K.square(mu) - K.exp(log_variance), axis=1)

    def combined_loss(y_target, y_predicted):
        return 1_000_000 * reconstruction_loss(y_target, y_predicted) + kl_loss(y_target, y_predicted)

    # The thesis ran Keras 2.x before the new optimizers; under graph mode it is the legacy Adam.
    model.compile(optimizer=keras.optimizers.legacy.Adam(learning_rate=LEARNING_RATE), loss=combined_loss,
                  metrics=[reconstruction_loss, kl_loss])
    count = (arguments.warmup + arguments.steps) * arguments.batch_size
    x = np.random.default_rng(0).random((count, *parameters[0]), dtype=np.float32)
    ends = []

    class StepClock(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if not ends:
                ends.append((time.perf_counter(), time.process_time()))

        def on_train_batch_end(self, batch, logs=None):
            ends.append((time.perf_counter(), time.process_time()))

    model.fit(x, x, batch_size=arguments.batch_size, epochs=1, shuffle=True, verbose=0, callbacks=[StepClock()])
    seconds = np.diff(ends, axis=0)
    wall, cpu = seconds[:, 0].tolist(), seconds[:, 1].tolist()
    speed = arguments.steps * arguments.batch_size / sum(wall[arguments.warmup:])
    print(json.dumps({"side": "baseline", "step_seconds": wall, "step_cpu_seconds": cpu,
                      "examples_per_second": speed, "tensorflow": tf.__version__,
                      "keras": getattr(keras, "__version__", "") or keras_version()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
