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

import importlib.util  # noqa: E402

import numpy as np  # noqa: E402
import tf_keras as keras  # noqa: E402

# The thesis's model as its Keras 2 code built it: the same rebuild bench/bench_training.py's
# baseline trains (a script, not a package, so loaded from its file).
_THESIS = Path(__file__).resolve().parent.parent / "bench" / "keras2_thesis_training.py"
_spec = importlib.util.spec_from_file_location("keras2_thesis_training", _THESIS)
thesis = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(thesis)

PARAMETERS = [(512, 64, 1), (8, 8, 8, 8, 8), (3, 3, 3, 3, 3), (2, 2, 2, 2, (2, 1)), 8]


def build(*parameters):
    """(the autoencoder, a model of the encoder's mu and log_variance, the decoder)."""
    model, mu, log_variance = thesis.build(keras, *parameters)
    encoder, decoder = model.get_layer("encoder"), model.get_layer("decoder")
    return model, keras.Model(encoder.input, [mu, log_variance]), decoder


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
