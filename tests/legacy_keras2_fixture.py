"""Keras 2 (tf-keras) side of the legacy-format test, run in its own process by tests/test_vae.py.

Builds the thesis's VAE as the thesis's code did under Keras 2 (automatic layer names, the
encoder and decoder as sub-models of Model(input, decoder(encoder(input)))), with small filters.

  write FOLDER  gives the weights random values (batch-normalisation statistics included), saves
                them with Keras 2's Model.save_weights to FOLDER/weights.h5 (legacy HDF5), pickles
                the parameter list to FOLDER/parameters.pkl as the thesis did, and writes
                FOLDER/reference.npz: inputs x, latent codes z and Keras 2's mu, log_variance
                and decoder outputs for them.
  read FOLDER   loads FOLDER/weights.h5 (written by our Keras 3 VAE) into the Keras 2 model and
                writes FOLDER/keras2_outputs.npz with mu, log_variance and decoded for the
                x and z of FOLDER/inputs.npz.
"""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tf_keras as keras  # noqa: E402
from tf_keras import backend as K  # noqa: E402

PARAMETERS = [(512, 64, 1), (8, 8, 8, 8, 8), (3, 3, 3, 3, 3), (2, 2, 2, 2, (2, 1)), 8]


def build(input_shape, conv_filters, conv_kernels, conv_strides, latent_space_dimension):
    """The thesis's architecture, layer for layer in the thesis's order, with Keras 2's names."""
    layers = keras.layers
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
    decoder_output = layers.Activation("sigmoid")(x)
    decoder = keras.Model(decoder_input, decoder_output, name="decoder")

    model_input = layers.Input(shape=input_shape)
    model = keras.Model(model_input, decoder(encoder(model_input)), name="autoencoder")
    moments = keras.Model(encoder_input, [mu, log_variance])
    return model, moments, decoder


def outputs(moments, decoder, x, z) -> dict:
    mu, log_variance = moments.predict(x, verbose=0)
    return {"mu": mu, "log_variance": log_variance, "decoded": decoder.predict(z, verbose=0)}


def write(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    model, moments, decoder = build(*PARAMETERS)
    rng = np.random.default_rng(7)
    values = []
    for weight in model.weights:
        shape = tuple(weight.shape)
        if "moving_variance" in weight.name:
            values.append(rng.uniform(0.5, 2.0, shape))
        elif "gamma" in weight.name:
            values.append(rng.uniform(0.5, 1.5, shape))
        else:
            values.append(rng.normal(0, 0.2, shape))
    model.set_weights([value.astype(np.float32) for value in values])
    model.save_weights(str(folder / "weights.h5"))
    with open(folder / "parameters.pkl", "wb") as handle:
        pickle.dump(PARAMETERS, handle)
    x = rng.random((3, *PARAMETERS[0])).astype(np.float32)
    z = rng.normal(size=(3, PARAMETERS[4])).astype(np.float32)
    np.savez(folder / "reference.npz", x=x, z=z, **outputs(moments, decoder, x, z))


def read(folder: Path) -> None:
    model, moments, decoder = build(*PARAMETERS)
    model.load_weights(str(folder / "weights.h5"))
    inputs = np.load(folder / "inputs.npz")
    np.savez(folder / "keras2_outputs.npz", **outputs(moments, decoder, inputs["x"], inputs["z"]))


if __name__ == "__main__":
    {"write": write, "read": read}[sys.argv[1]](Path(sys.argv[2]))
