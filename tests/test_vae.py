"""The timbre VAE: architecture, training, saving and loading (ours and Keras 2's legacy folders).

Tiny model: the thesis's kernels and strides with 8 filters per layer and a latent size of 8, so
training takes seconds; the thesis's configuration is only built (for its parameter count).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT, run_script

from semantic_timbre import training

TINY = ((512, 64, 1), (8, 8, 8, 8, 8), (3, 3, 3, 3, 3), (2, 2, 2, 2, (2, 1)), 8)
FIXTURE_SCRIPT = REPO_ROOT / "tests" / "legacy_keras2_fixture.py"


def real_spectrograms(project: Path) -> np.ndarray:
    from semantic_timbre.data import processed_data

    notes = processed_data.require_spectrograms(project / "spectrograms")
    return np.stack([processed_data.load_spectrogram(project / "spectrograms" / note.spectrogram_name)
                     for note in notes])


def run_keras2(mode: str, folder: Path) -> None:
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, str(FIXTURE_SCRIPT), mode, str(folder)], capture_output=True,
                            text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def keras2_folder(tmp_path_factory) -> Path:
    """A model folder written by Keras 2 (tf-keras) as the thesis's code wrote it (read-only)."""
    folder = tmp_path_factory.mktemp("keras2") / "model"
    run_keras2("write", folder)
    return folder


@pytest.fixture
def spectrograms(processed_project) -> np.ndarray:
    return real_spectrograms(processed_project)


def test_the_thesis_configuration_has_the_thesis_parameter_count():
    from semantic_timbre.network.config import THESIS_CONFIGURATION
    from semantic_timbre.network.vae import VAE

    vae = VAE(**THESIS_CONFIGURATION)
    assert vae.count_params() == 2_766_017
    assert vae.encoder.count_params() == 2_100_832
    assert vae.decoder.count_params() == 665_185
    assert vae.latent_space_dimension == 128
    assert vae.parameters == [(512, 64, 1), (512, 256, 128, 64, 32), (3, 3, 3, 3, 3), (2, 2, 2, 2, (2, 1)), 128]
    assert vae.encoder.get_layer("mu").units == 128 and vae.encoder.get_layer("log_variance").units == 128
    assert [tuple(output.shape) for output in vae.encoder.outputs] == [(None, 128)] * 3
    assert tuple(vae.decoder.output.shape) == (None, 512, 64, 1)
    # Keras 2's names in a fresh session, even though other models were built in this process
    names = [layer.name for layer in vae.encoder.layers + vae.decoder.layers]
    assert names[1:4] == ["conv2d", "re_lu", "batch_normalization"]
    assert "conv2d_4" in names and "dense" in names and "conv2d_transpose_4" in names
    assert "batch_normalization_8" in names and names[-1] == "activation"


def test_the_script_prints_the_thesis_summaries(tmp_path):
    result = run_script("timbre_generation_vae.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2,766,017" in result.stdout and "2,100,832" in result.stdout and "665,185" in result.stdout
    for model in ('"encoder"', '"decoder"', '"vae"'):
        assert model in result.stdout
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_few_epochs_on_real_spectrograms_lower_the_loss(spectrograms):
    import keras

    from semantic_timbre.network.vae import VAE

    keras.utils.set_random_seed(1)
    vae = VAE(*TINY, seed=1)
    vae.compile(learning_rate=0.002, jit_compile=True)  # XLA-compiled train step; batches of 7 compile it once
    history = vae.train(spectrograms, batch_size=7, num_epochs=3, verbose=0).history
    assert set(history) == {"loss", "reconstruction_loss", "kl_loss"}
    assert history["loss"][-1] < history["loss"][0]
    assert history["reconstruction_loss"][-1] < history["reconstruction_loss"][0]
    assert all(np.isfinite(value) for values in history.values() for value in values)
    # the reported loss is the thesis's: 1e6 x MSE + KL, so reconstruction + kl add up to it
    assert history["loss"][-1] == pytest.approx(history["reconstruction_loss"][-1] + history["kl_loss"][-1],
                                                rel=1e-5)
    evaluated = vae.evaluate(spectrograms, batch_size=7, verbose=0, return_dict=True)
    mu, log_variance, _ = vae.encode(spectrograms)
    reconstructions = vae.decode(mu)
    assert evaluated["reconstruction_loss"] > 0
    assert np.mean((reconstructions[..., 0] - spectrograms) ** 2) * 1e6 == pytest.approx(
        evaluated["reconstruction_loss"], rel=0.5)  # z ~ mu: the same order of magnitude


def test_the_loss_is_the_thesis_loss_on_one_batch(spectrograms):
    import keras

    from semantic_timbre.network.vae import VAE

    vae = VAE(*TINY, seed=0)
    batch = spectrograms[:4, ..., None]
    total, reconstruction, kl, reconstructions = (np.asarray(value) for value in vae.compute_losses(batch))
    mu, log_variance, _ = (np.asarray(value) for value in vae.encoder(batch, training=False))
    expected_kl = np.mean(-0.5 * np.sum(1 + log_variance - mu ** 2 - np.exp(log_variance), axis=1))
    expected_reconstruction = 1e6 * np.mean(np.mean((batch - reconstructions) ** 2, axis=(1, 2, 3)))
    assert kl == pytest.approx(expected_kl, rel=1e-4)
    assert reconstruction == pytest.approx(expected_reconstruction, rel=1e-4)
    assert total == pytest.approx(expected_kl + expected_reconstruction, rel=1e-4)
    vae.compile()
    assert isinstance(vae.optimizer, keras.optimizers.Adam)
    assert float(vae.optimizer.learning_rate) == pytest.approx(0.0005)


def test_save_then_load_gives_identical_outputs(trained_project, spectrograms, tmp_path):
    from semantic_timbre import safe_io
    from semantic_timbre.network.vae import VAE

    vae = VAE.load(trained_project / "model")
    mu, log_variance, z = vae.encode(spectrograms, seed=3)
    decoded = vae.decode(z)
    vae.save(tmp_path / "model")
    assert sorted(path.name for path in (tmp_path / "model").iterdir()) == [
        "decoder.onnx", "encoder.onnx", "onnx.json", "parameters.json", "parameters.pkl", "weights.h5"]
    # parameters.pkl is the thesis's list of tuples; parameters.json the same, named
    assert safe_io.load_plain_pickle(tmp_path / "model" / "parameters.pkl") == list(TINY)
    assert json.loads((tmp_path / "model" / "parameters.json").read_text())["conv_strides"] == [2, 2, 2, 2, [2, 1]]
    again = VAE.load(tmp_path / "model")
    mu_again, log_variance_again, z_again = again.encode(spectrograms, seed=3)
    np.testing.assert_array_equal(mu_again, mu)
    np.testing.assert_array_equal(log_variance_again, log_variance)
    np.testing.assert_array_equal(z_again, z)
    np.testing.assert_array_equal(again.decode(z), decoded)
    assert decoded.shape == (21, 512, 64, 1) and decoded.dtype == np.float32
    assert 0 <= decoded.min() and decoded.max() <= 1
    # A batch of 2, not 21: oneDNN may pick other kernels by batch size (it does on AVX2-only
    # CPUs), so the same maths agrees to float32 rounding, not bit for bit. A wrong code or a
    # wrong weight moves these by far more than 1e-4.
    reconstructions, latent = again.reconstruct(spectrograms[:2, ..., None], seed=3)
    np.testing.assert_allclose(latent, z[:2], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(reconstructions, decoded[:2], rtol=0, atol=1e-5)


def test_the_keras2_folder_loads_and_gives_keras2s_outputs(keras2_folder, tmp_path):
    from semantic_timbre.network.vae import VAE

    assert not (keras2_folder / "parameters.json").exists()  # the author's release: pickle + legacy h5
    reference = np.load(keras2_folder / "reference.npz")
    VAE(*TINY)  # another VAE built first in this process must not change what loads
    vae = VAE.load(keras2_folder)
    mu, log_variance, _ = vae.encode(reference["x"])
    np.testing.assert_allclose(mu, reference["mu"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(log_variance, reference["log_variance"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(vae.decode(reference["z"]), reference["decoded"], atol=1e-5, rtol=0)
    assert np.std(reference["decoded"]) > 0.01 and np.std(reference["mu"]) > 0.01  # not a trivial model

    # and the other way: Keras 2 (the thesis's code) loads the weights.h5 we write
    ours = tmp_path / "ours"
    vae.save(ours)
    np.savez(ours / "inputs.npz", x=reference["x"], z=reference["z"])
    run_keras2("read", ours)
    keras2 = np.load(ours / "keras2_outputs.npz")
    np.testing.assert_allclose(keras2["mu"], reference["mu"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(keras2["decoded"], reference["decoded"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_the_thesis_parameter_pickles_load(keras2_folder, tmp_path, protocol):
    from semantic_timbre.network.vae import VAE

    folder = tmp_path / "model"
    shutil.copytree(keras2_folder, folder)
    parameters = [(512, 64, 1), (8, 8, 8, 8, 8), [3, 3, 3, 3, 3], (2, 2, 2, 2, (2, 1)), np.int64(8)]
    (folder / "parameters.pkl").write_bytes(pickle.dumps(parameters, protocol=protocol))
    vae = VAE.load(folder)
    assert vae.latent_space_dimension == 8 and vae.parameters[3] == (2, 2, 2, 2, (2, 1))


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_parameter_pickle_that_would_run_code_is_refused(keras2_folder, tmp_path):
    from semantic_timbre.safe_io import UnsafePickleError
    from semantic_timbre.network.vae import VAE

    marker = tmp_path / "code_ran"
    payload = pickle.dumps([_RunsCode(marker), (8, 8, 8, 8, 8), (3,) * 5, (2, 2, 2, 2, (2, 1)), 8])
    # the payload is real: a plain pickle.loads runs it
    pickle.loads(payload)
    assert marker.exists()
    marker.unlink()

    folder = tmp_path / "model"
    shutil.copytree(keras2_folder, folder)
    (folder / "parameters.pkl").write_bytes(payload)
    with pytest.raises(UnsafePickleError, match="refusing to read .*parameters.pkl.*system"):
        VAE.load(folder)
    assert not marker.exists()


def test_missing_or_incomplete_model_folders_say_to_train_first(trained_project, tmp_path):
    from semantic_timbre.network.config import ModelFolderError
    from semantic_timbre.network.vae import VAE

    with pytest.raises(ModelFolderError, match="does not exist.*run 'python train_timbre_generation_vae.py' first"):
        VAE.load(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFolderError, match="holds no trained model.*train_timbre_generation_vae.py"):
        VAE.load(tmp_path / "empty")

    only_parameters = tmp_path / "only_parameters"
    shutil.copytree(trained_project / "model", only_parameters)
    (only_parameters / "weights.h5").unlink()
    with pytest.raises(ModelFolderError, match="no weights.h5.*train_timbre_generation_vae.py"):
        VAE.load(only_parameters)

    truncated = tmp_path / "truncated"
    shutil.copytree(trained_project / "model", truncated)
    data = (truncated / "weights.h5").read_bytes()
    (truncated / "weights.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFolderError, match="weights.h5.*train_timbre_generation_vae.py"):
        VAE.load(truncated)

    bad_parameters = tmp_path / "bad_parameters"
    shutil.copytree(trained_project / "model", bad_parameters)
    (bad_parameters / "parameters.json").write_text(json.dumps([[512, 64, 1], [8, 8], 3, [2, 2], -1]))
    with pytest.raises(ModelFolderError, match="parameters.json is not of the expected form"):
        VAE.load(bad_parameters)
    (bad_parameters / "parameters.json").write_text("{not json")
    with pytest.raises(ModelFolderError, match="parameters.json cannot be read"):
        VAE.load(bad_parameters)


def test_a_damaged_file_is_named_and_the_checkpoint_beside_it_is_kept(trained_project, tmp_path):
    # The advice must not be to delete the folder: its checkpoint is what a new run resumes from.
    from semantic_timbre.network.config import ModelFolderError
    from semantic_timbre.network.vae import VAE

    folder = tmp_path / "model"
    shutil.copytree(trained_project / "model", folder)
    (folder / "checkpoint").mkdir()
    data = (folder / "weights.h5").read_bytes()
    (folder / "weights.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFolderError) as raised:
        VAE.load(folder)
    message = str(raised.value)
    assert f"remove {folder}/weights.h5" in message and f"{folder}/checkpoint/ is kept" in message
    assert "delete" not in message
    (folder / "weights.h5").write_bytes(data)
    (folder / "parameters.json").write_text("{not json")
    with pytest.raises(ModelFolderError, match=f"remove {folder}/parameters.json"):
        VAE.load(folder)


def test_weights_of_another_architecture_are_refused(trained_project, keras2_folder, tmp_path):
    from semantic_timbre.network.config import ModelFolderError
    from semantic_timbre.network.vae import VAE

    other = VAE((512, 64, 1), (8, 8, 8, 8, 8), (3, 3, 3, 3, 3), (2, 2, 2, 2, (2, 1)), 4)
    other.save(tmp_path / "other")
    mixed = tmp_path / "mixed"
    shutil.copytree(trained_project / "model", mixed)
    shutil.copy(tmp_path / "other" / "weights.h5", mixed / "weights.h5")
    with pytest.raises(ModelFolderError, match="other parameters.*interrupted save"):
        VAE.load(mixed)

    # a Keras 2 file (it records no parameters) with parameters of another architecture: the shapes tell
    keras2 = tmp_path / "keras2"
    shutil.copytree(keras2_folder, keras2)
    (keras2 / "parameters.json").write_text(json.dumps([[512, 64, 1], [8, 8, 8, 8, 16], [3] * 5, [2, 2, 2, 2, [2, 1]], 8]))
    with pytest.raises(ModelFolderError, match="weights.h5.*expects"):
        VAE.load(keras2)
    (keras2 / "parameters.json").write_text(json.dumps([[512, 64, 1], [8, 8, 8, 8], [3] * 4, [2, 2, 2, 2], 8]))
    with pytest.raises(ModelFolderError, match="weights.h5 holds 12 layers with weights in 'encoder', the model built from the parameters has 10"):
        VAE.load(keras2)


def test_a_failed_save_leaves_the_previous_model_intact(trained_project, spectrograms, tmp_path):
    from semantic_timbre.network.vae import VAE

    folder = tmp_path / "model"
    shutil.copytree(trained_project / "model", folder)
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    good = VAE.load(folder)
    mu, _, _ = good.encode(spectrograms[:3])

    # a diverged model: its last decoder layer holds NaN, so writing weights.h5 fails half-way,
    # after the encoder's weights are already in the temporary file
    diverged = VAE((512, 64, 1), (8, 8, 8, 8, 8), (3, 3, 3, 3, 3), (2, 2, 2, 2, (2, 1)), 8)
    kernel = diverged.decoder.get_layer("conv2d_transpose_4").kernel
    kernel.assign(np.full(kernel.shape, np.nan, np.float32))
    with pytest.raises(ValueError, match="NaN"):
        diverged.save(folder)
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before  # no temporary files either
    np.testing.assert_array_equal(VAE.load(folder).encode(spectrograms[:3])[0], mu)


def test_encoding_is_reproducible_with_a_seed(trained_project, spectrograms):
    from semantic_timbre.network.vae import VAE

    vae = VAE.load(trained_project / "model")
    mu, log_variance, z = vae.encode(spectrograms, seed=5)
    assert mu.shape == log_variance.shape == z.shape == (21, 8)
    assert mu.dtype == log_variance.dtype == z.dtype == np.float32
    mu_again, _, z_again = vae.encode(spectrograms[..., None], batch_size=4, seed=5)
    np.testing.assert_allclose(mu_again, mu, rtol=1e-5, atol=1e-6)  # another batch size: float rounding
    np.testing.assert_allclose(z_again, z, rtol=1e-5, atol=1e-6)
    _, _, z_other = vae.encode(spectrograms, seed=6)
    assert not np.allclose(z_other, z)
    epsilon = np.random.default_rng(5).standard_normal(mu.shape)
    np.testing.assert_allclose(z, mu + np.exp(log_variance / 2) * epsilon, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="expected spectrograms of shape"):
        vae.encode(np.zeros((1, 256, 64), np.float32))
    with pytest.raises(ValueError, match="expected latent codes of shape"):
        vae.decode(np.zeros((1, 5), np.float32))


@pytest.mark.skipif(not training.bfloat16_is_native(), reason="no GPU and no bfloat16 instructions here: "
                    "the training script refuses bfloat16 (tests/test_training.py)")
def test_training_under_mixed_bfloat16(spectrograms):
    import keras

    from semantic_timbre.network.vae import VAE

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        vae = VAE(*TINY)
        vae.compile(learning_rate=0.001, jit_compile=False)
        assert vae.encoder.get_layer("conv2d").compute_dtype == "bfloat16"
        assert vae.encoder.get_layer("conv2d").kernel.dtype == "float32"
        before = np.array(vae.encoder.get_layer("conv2d").kernel)
        logs = vae.train_on_batch(spectrograms[:2, ..., None], return_dict=True)
        assert all(np.isfinite(value) for value in logs.values())
        assert not np.array_equal(np.array(vae.encoder.get_layer("conv2d").kernel), before)
        mu, _, _ = vae.encode(spectrograms[:2])
        decoded = vae.decode(mu)
        assert mu.dtype == decoded.dtype == np.float32 and np.all(np.isfinite(decoded))
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_batch_norm_recalibration_makes_inference_match_training(spectrograms):
    import keras

    from semantic_timbre.network.vae import VAE

    keras.utils.set_random_seed(1)
    vae = VAE((512, 64, 1), (8, 8, 8, 8, 8), (3, 3, 3, 3, 3), (2, 2, 2, 2, (2, 1)), 8, seed=1)
    vae.compile(learning_rate=0.01, jit_compile=False)
    vae.train(spectrograms, batch_size=3, num_epochs=15, verbose=0)  # weights move fast: the moving averages lag

    def inference_error():
        mu, _, _ = vae.encode(spectrograms)
        return float(np.mean((vae.decode(mu)[..., 0] - spectrograms) ** 2))

    before = inference_error()
    norms = [layer for layer in vae.encoder.layers + vae.decoder.layers if isinstance(layer, keras.layers.BatchNormalization)]
    weights = [np.array(variable) for variable in vae.trainable_variables]
    assert vae.recalibrate_batch_norm([spectrograms[:11], spectrograms[11:]]) == 21
    after = inference_error()
    assert after < 0.8 * before
    assert all(layer.momentum == 0.99 for layer in norms)  # restored
    for variable, weight in zip(vae.trainable_variables, weights):  # only the moving statistics changed
        np.testing.assert_array_equal(np.array(variable), weight)


THESIS_STYLE_SCRIPT = """
import os

import numpy as np

from timbre_generation_vae import VAE

SPECTROGRAMS_PATH = "spectrograms/"


def load_dataset(spectrograms_path):
    x_train = []
    for root, _, file_names in os.walk(spectrograms_path):
        for file_name in sorted(file_names):
            x_train.append(np.load(os.path.join(root, file_name)))
    x_train = np.array(x_train)
    return x_train[..., np.newaxis]


def train(x_train, learning_rate, batch_size, epochs):
    vae = VAE(input_shape=(512, 64, 1), conv_filters=(8, 8, 8, 8, 8), conv_kernels=(3, 3, 3, 3, 3),
              conv_strides=(2, 2, 2, 2, (2, 1)), latent_space_dimension=8)
    vae.summary()
    vae.compile(learning_rate)
    vae.train(x_train, batch_size, epochs)
    return vae


x_train = load_dataset(SPECTROGRAMS_PATH)
vae = train(x_train, 0.0005, 8, 2)
vae.save("model")
# The thesis's three models: the encoder's code (mu, log variance, z: latent size 8), the decoder's
# spectrograms and the whole model's, decoder(encoder(x)).
mu, log_variance, z = vae.encoder.predict(x_train[:2], verbose=0)
assert mu.shape == log_variance.shape == z.shape == (2, 8), (mu.shape, z.shape)
assert vae.decoder.predict(z, verbose=0).shape == x_train[:2].shape
assert vae.model.predict(x_train[:2], verbose=0).shape == x_train[:2].shape

vae = VAE.load("model")
reconstructions, latent_representations = vae.reconstruct(x_train[:3])
np.save("reconstructions.npy", reconstructions)
np.save("latent_representations.npy", latent_representations)
"""


def test_a_script_written_as_the_thesis_wrote_its_scripts_runs_against_our_module(processed_project, tmp_path,
                                                                                   capsys):
    import runpy

    project = tmp_path / "project"
    shutil.copytree(processed_project, project, ignore=shutil.ignore_patterns("model"))
    script = project / "train.py"
    script.write_text(THESIS_STYLE_SCRIPT)
    previous = os.getcwd()
    os.chdir(project)
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        os.chdir(previous)
    assert "Total params" in capsys.readouterr().out  # vae.summary() printed the thesis's summaries
    assert sorted(p.name for p in (project / "model").iterdir()) == ["decoder.onnx", "encoder.onnx", "onnx.json",
                                                                      "parameters.json", "parameters.pkl", "weights.h5"]
    reconstructions = np.load(project / "reconstructions.npy")
    latent = np.load(project / "latent_representations.npy")
    assert reconstructions.shape == (3, 512, 64, 1) and latent.shape == (3, 8)
    assert np.all(np.isfinite(reconstructions)) and np.all((reconstructions >= 0) & (reconstructions <= 1))


def test_the_thesis_module_gives_our_vae_class():
    import timbre_generation_vae
    from semantic_timbre.network.vae import VAE

    assert timbre_generation_vae.VAE is VAE
    with pytest.raises(AttributeError):
        timbre_generation_vae.NotAName  # noqa: B018


def test_fused_batch_normalization_trains_as_keras_batch_normalization():
    import keras
    import tensorflow as tf

    from semantic_timbre.network.vae import FusedBatchNormalization

    x = tf.constant(np.random.default_rng(0).normal(2, 3, (4, 8, 6, 5)).astype(np.float32))
    layers = keras.layers.BatchNormalization(), FusedBatchNormalization()
    results = []
    for layer in layers:
        layer.build(x.shape)
        layer.gamma.assign(np.linspace(0.5, 1.5, 5))
        layer.beta.assign(np.linspace(-1, 1, 5))
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.sin(y))
        results.append([y, *tape.gradient(loss, [x, layer.gamma, layer.beta]), layer.moving_mean,
                        layer.moving_variance, layer(x, training=False)])
    for keras_value, fused_value in zip(*results):
        np.testing.assert_allclose(np.asarray(fused_value), np.asarray(keras_value), rtol=1e-5, atol=1e-4)


def test_sampling_and_kl_bound_the_log_variance_and_are_the_thesis_below_it():
    import keras

    from semantic_timbre.network.latent_sampling import LOG_VARIANCE_BOUND, sample_latent
    from semantic_timbre.network.vae import VAE, Sampling

    mu = np.array([[0.5, -1.0, 2.0]], np.float32)
    log_variance = np.array([[-3.0, 1.5, 200.0]], np.float32)  # exp(200) overflows float32
    z = np.asarray(Sampling(seed=1)([keras.ops.convert_to_tensor(mu), keras.ops.convert_to_tensor(log_variance)]))
    assert np.all(np.isfinite(z))
    numpy_z = sample_latent(mu, log_variance, seed=4)
    epsilon = np.random.default_rng(4).standard_normal(mu.shape).astype(np.float32)
    expected = mu + np.exp(np.minimum(log_variance, LOG_VARIANCE_BOUND) / 2) * epsilon
    np.testing.assert_allclose(numpy_z, expected, rtol=1e-6)
    np.testing.assert_allclose(numpy_z[0, :2], mu[0, :2] + np.exp(log_variance[0, :2] / 2) * epsilon[0, :2],
                               rtol=1e-6)
    # The KL term of a tiny model: finite for a run-away log-variance, the thesis's formula below the bound
    vae = VAE((512, 64, 1), (2, 2, 2, 2, 2), (3,) * 5, (2, 2, 2, 2, (2, 1)), 3)
    spectrograms = np.random.default_rng(0).random((2, 512, 64, 1), dtype=np.float32)
    log_variance_layer = vae.encoder.get_layer("log_variance")
    kernel, bias = log_variance_layer.get_weights()
    for shift, finite_only in ((0.0, False), (500.0, True)):
        log_variance_layer.set_weights([kernel, bias + shift])
        total, reconstruction, kl, _ = (np.asarray(value) for value in vae.compute_losses(spectrograms))
        assert np.isfinite(total) and np.isfinite(kl)
        if not finite_only:
            mu_, log_variance_, _ = (np.asarray(value) for value in vae.encoder(spectrograms, training=False))
            thesis = np.mean(-0.5 * np.sum(1 + log_variance_ - mu_ ** 2 - np.exp(log_variance_), axis=1))
            assert float(kl) == pytest.approx(float(thesis), rel=1e-5)
        else:
            assert float(kl) == pytest.approx(-0.5 * 3 * (1 + LOG_VARIANCE_BOUND - np.exp(LOG_VARIANCE_BOUND)), rel=1e-3)


def test_the_decoders_upsampling_and_the_loss_are_recorded_and_old_folders_read_as_the_thesis():
    from semantic_timbre.network.config import ModelConfig
    from semantic_timbre.network.config import ModelFolderError

    thesis = ModelConfig.from_parameters(list(TINY))
    assert set(thesis.to_json()) == {"input_shape", "conv_filters", "conv_kernels", "conv_strides",
                                     "latent_space_dimension"}  # the thesis's file, as it was
    assert thesis.thesis_buildable and not thesis.extended
    demo = ModelConfig.from_parameters(list(TINY), upsampling="nearest", loss="spectral")
    recorded = json.loads(demo.dumps())
    assert recorded["upsampling"] == "nearest" and recorded["loss"] == "spectral"
    assert ModelConfig.from_json(recorded) == demo and not demo.thesis_buildable and demo.extended
    old = ModelConfig.from_json(thesis.to_json())  # a folder written before the choices existed
    assert (old.upsampling, old.loss) == ("transposed", "thesis")
    with pytest.raises(ModelFolderError, match="upsampling 'pixelshuffle'"):
        ModelConfig.from_json(dict(recorded, upsampling="pixelshuffle"))


def test_a_resize_decoder_with_the_spectral_loss_saves_without_the_thesis_pickle_and_loads(spectrograms, tmp_path):
    from semantic_timbre.network.vae import VAE

    vae = VAE(*TINY, seed=1, upsampling="bilinear", loss="spectral")
    assert not any("transpose" in layer.name for layer in vae.decoder.layers)
    vae.compile(learning_rate=0.001, jit_compile=False)
    vae.train(spectrograms[:4], batch_size=2, num_epochs=1, verbose=0)
    vae.save(tmp_path / "model")
    assert not (tmp_path / "model" / "parameters.pkl").exists()
    loaded = VAE.load(tmp_path / "model")
    assert (loaded.config.upsampling, loaded.config.loss) == ("bilinear", "spectral")
    mu, _, _ = vae.encode(spectrograms[:2])
    np.testing.assert_allclose(loaded.decode(mu), vae.decode(mu), atol=1e-5)


def test_the_fast_kernel_gradient_is_keras_s_own_within_float32_round_off():
    """FastGradientConv2D / FastGradientConv2DTranspose (the thesis's 512- and 256-filter layers):
    the same outputs and input gradients as Keras's layers with the same weights, and the kernel
    gradient from one matrix product equal to TensorFlow's Conv2DBackpropFilter to float32 round-off."""
    import keras
    import tensorflow as tf

    from semantic_timbre.network.vae import (FastGradientConv2D, FastGradientConv2DTranspose,
                                             _fast_filter_gradient_applies)

    rng = np.random.default_rng(0)
    cases = [(FastGradientConv2D, keras.layers.Conv2D, (2, 64, 64, 256), 128, (2, 64, 64, 256)),
             (FastGradientConv2DTranspose, keras.layers.Conv2DTranspose, (2, 32, 32, 128), 256, (2, 64, 64, 256))]
    for fast_class, keras_class, shape, filters, large in cases:
        fast = fast_class(filters, 3, strides=2, padding="same")
        plain = keras_class(filters, 3, strides=2, padding="same")
        fast.build(shape)
        plain.build(shape)
        plain.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.05 for w in fast.get_weights()])
        fast.set_weights(plain.get_weights())
        assert _fast_filter_gradient_applies(large, shape[-1] if fast_class is FastGradientConv2DTranspose
                                             else filters, fast)  # the fast path is what is tested
        inputs = tf.constant(rng.standard_normal(shape).astype(np.float32))
        results = []
        for layer in (fast, plain):
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                outputs = layer(inputs)
                upstream = tf.constant(np.random.default_rng(1).standard_normal(outputs.shape).astype(np.float32))
                loss = tf.reduce_sum(outputs * upstream)
            gradients = tape.gradient(loss, [inputs, layer.kernel, layer.bias])
            results.append([outputs.numpy()] + [np.asarray(g) for g in gradients])
        for name, ours, theirs in zip(("outputs", "input gradient", "kernel gradient", "bias gradient"), *results):
            scale = np.abs(theirs).max()
            assert scale > 0 and np.abs(ours - theirs).max() <= 1e-4 * scale, (fast_class.__name__, name)
    # Elsewhere (the demo preset's and the tests' small layers) Keras's own kernels run.
    assert not _fast_filter_gradient_applies((2, 64, 64, 16), 16, FastGradientConv2D(16, 3, strides=2, padding="same"))
