"""Every model configuration through save and both runtimes: {thesis-sized small, demo} x {none,
descriptor, perceptual} conditioning. Each model is built from its ModelConfig, saved (VAE.save,
which writes the ONNX export too), loaded with inference.load_model(folder, "tensorflow") and
(folder, "onnx"); the reloaded TensorFlow model computes exactly what the saved one did, and ONNX
Runtime computes it within float32 rounding. A conditioned model's two runtimes must also follow
its condition: two conditions decode to spectrograms far further apart than the tolerance.

The weights are the initial ones, perturbed (biases included) and with batch-norm statistics
re-estimated on the inputs, so a weight that the save or a runtime drops changes the outputs.
"""

from __future__ import annotations

import numpy as np
import pytest

from semantic_timbre.network.config import DEMO_CONFIGURATION, THESIS_CONFIGURATION

#: The thesis's architecture (5 conv layers, kernels 3, strides (2, 2, 2, 2, (2, 1)), transposed
#: upsampling, the thesis's loss) with few filters and a small latent, so it builds in a second.
SMALL_THESIS = {**THESIS_CONFIGURATION, "conv_filters": (4, 4, 4, 4, 4), "latent_space_dimension": 6}
#: The demo's model (nearest upsampling, spectral loss) with fewer filters, its latent size kept.
SMALL_DEMO = {**DEMO_CONFIGURATION, "conv_filters": (4, 4, 8, 8, 8)}
ARCHITECTURES = {"thesis_small": SMALL_THESIS, "demo": SMALL_DEMO}
BATCH = 3
#: ONNX Runtime against TensorFlow: the two run the same float32 graph with other kernels, so they
#: differ by rounding only (measured on these cells: at most 4e-6 on means and log-variances of
#: magnitude up to 5, 8e-7 on decodes in [0, 1]); tests/test_inference.py's tolerances. Another
#: condition moves a decode by 0.25 to 0.76 here, far beyond CONDITION_EFFECT.
MEAN_ATOL, DECODE_ATOL = 1e-4, 1e-5
CONDITION_EFFECT = 20 * DECODE_ATOL


def _conditioning(kind: str):
    from semantic_timbre.data.perceptual import FEATURES
    from semantic_timbre.network.config import Conditioning

    if kind == "none":
        return Conditioning()
    if kind == "descriptor":
        return Conditioning.descriptor()
    rng = np.random.default_rng(1)
    return Conditioning("perceptual", FEATURES, tuple(rng.uniform(10, 60, len(FEATURES))),
                        tuple(rng.uniform(2, 10, len(FEATURES))))


def _two_conditions(conditioning):
    """Two different condition batches (BATCH, size) of the conditioning's width, or (None, None)."""
    if conditioning.kind == "none":
        return None, None
    if conditioning.kind == "descriptor":
        return (conditioning.of_descriptors(["Crunch", "Fuzz", ""], [60, 100, 0]),
                conditioning.of_descriptors(["Dark", "Thin", "Bright"], [30, 80, 100]))
    rng = np.random.default_rng(2)
    mean, std = np.array(conditioning.mean), np.array(conditioning.std)
    return tuple(conditioning.of_features(mean + std * rng.normal(0, 1.5, (BATCH, conditioning.size)))
                 for _ in range(2))


def _built(config, spectrograms, conditions):
    """The VAE of `config`, its weights perturbed and its batch-norm statistics those of the inputs."""
    import keras

    from semantic_timbre.network.vae import VAE

    keras.utils.set_random_seed(0)
    vae = VAE.from_config(config, seed=0)
    rng = np.random.default_rng(3)
    for weight in vae.trainable_weights:
        value = np.asarray(weight.value)
        weight.assign(value + rng.normal(0, 0.05, value.shape).astype(value.dtype))
    vae.recalibrate_batch_norm([spectrograms if conditions is None else (spectrograms, conditions)])
    return vae


def _outputs(model, spectrograms, latent, conditions):
    """(mu, log_variance, decode of `latent`) of either runtime."""
    mu, log_variance, _ = model.encode(spectrograms, conditions=conditions)
    return mu, log_variance, model.decode(latent, conditions=conditions)


@pytest.mark.parametrize("kind", ["none", "descriptor", "perceptual"])
@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_a_saved_model_computes_the_same_in_both_runtimes(architecture, kind, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    from semantic_timbre.network.config import ModelConfig
    from semantic_timbre.network.vae import VAE
    from semantic_timbre.runtime import inference
    from semantic_timbre.network import onnx_export

    config = ModelConfig(**ARCHITECTURES[architecture], conditioning=_conditioning(kind))
    expected = {"thesis_small": ("transposed", "thesis"), "demo": ("nearest", "spectral")}[architecture]
    assert (config.upsampling, config.loss, len(config.conv_filters)) == (*expected, 5)
    spectrograms = np.random.default_rng(0).random((BATCH, *config.input_shape[:2]), dtype=np.float32)
    condition, other = _two_conditions(config.conditioning)
    vae = _built(config, spectrograms, condition)
    latent = np.random.default_rng(4).normal(0, 1, (BATCH, config.latent_space_dimension)).astype(np.float32)
    saved = _outputs(vae, spectrograms, latent, condition)

    folder = tmp_path / "model"
    vae.save(folder)
    assert onnx_export.onnx_fresh(folder), "VAE.save wrote no fresh ONNX export"
    reloaded, onnx = inference.load_model(folder, "tensorflow"), inference.load_model(folder, "onnx")
    assert isinstance(reloaded, VAE) and isinstance(onnx, inference.OnnxModel)
    assert reloaded.config == onnx.config == config

    mu, log_variance, decoded = saved
    assert decoded.shape == (BATCH, *config.input_shape) and 0 <= decoded.min() and decoded.max() <= 1
    for ours, theirs in zip(_outputs(reloaded, spectrograms, latent, condition), saved):
        np.testing.assert_array_equal(ours, theirs)  # the same weights, the same graph
    onnx_mu, onnx_log_variance, onnx_decoded = _outputs(onnx, spectrograms, latent, condition)
    np.testing.assert_allclose(onnx_mu, mu, rtol=0, atol=MEAN_ATOL)
    np.testing.assert_allclose(onnx_log_variance, log_variance, rtol=0, atol=MEAN_ATOL)
    np.testing.assert_allclose(onnx_decoded, decoded, rtol=0, atol=DECODE_ATOL)
    # The outputs follow the inputs (a runtime that answered a constant would not pass).
    assert np.abs(mu[0] - mu[1]).max() > 100 * MEAN_ATOL
    assert np.abs(decoded[0] - decoded[1]).max() > CONDITION_EFFECT

    if condition is None:
        with pytest.raises(ValueError, match="not conditioned"):
            onnx.decode(latent, conditions=np.zeros((BATCH, 2), np.float32))
        return
    # Another condition: TensorFlow's decode moves far beyond the tolerance and ONNX Runtime's
    # follows it, so an ONNX decoder (or encoder) that ignored its condition fails here.
    tf_other, onnx_other = _outputs(reloaded, spectrograms, latent, other), _outputs(onnx, spectrograms, latent, other)
    assert np.abs(tf_other[2] - decoded).max() > CONDITION_EFFECT
    assert np.abs(tf_other[0] - mu).max() > 100 * MEAN_ATOL
    np.testing.assert_allclose(onnx_other[0], tf_other[0], rtol=0, atol=MEAN_ATOL)
    np.testing.assert_allclose(onnx_other[2], tf_other[2], rtol=0, atol=DECODE_ATOL)
    with pytest.raises(ValueError, match="conditioned model needs"):
        onnx.decode(latent)
