"""Inference with ONNX Runtime beside TensorFlow: the export VAE.save writes, its fingerprint, the
first use of a model folder without one, --runtime on the commands, the same audio from both."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from conftest import assert_one_line_error, run_script, run_without_tensorflow_check
from semantic_timbre import inference, layout, processed_data

SINGLE = "generate_single_sample.py"


@pytest.fixture
def trained(trained_project, tmp_path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(trained_project, root)
    return root


def test_save_exports_onnx_that_computes_what_tensorflow_does(trained_project):
    from semantic_timbre.vae import VAE

    model_dir = trained_project / layout.MODEL_DIR
    assert inference.onnx_fresh(model_dir)
    record = json.loads((model_dir / inference.ONNX_RECORD).read_text())
    assert record["weights_sha256"] == inference.weights_fingerprint(model_dir)
    onnx, vae = inference.OnnxModel(model_dir), VAE.load(model_dir)
    assert (onnx.latent_space_dimension, onnx.conditioning, onnx.config) == (8, vae.conditioning, vae.config)
    notes = processed_data.require_spectrograms(trained_project / layout.SPECTROGRAMS_DIR)
    batch = np.stack([processed_data.load_spectrogram(trained_project / layout.SPECTROGRAMS_DIR / n.spectrogram_name)
                      for n in notes])
    for ours, theirs in zip(onnx.encode(batch, batch_size=8, seed=3), vae.encode(batch, batch_size=8, seed=3)):
        np.testing.assert_allclose(ours, theirs, atol=1e-4)
    mu = vae.encode(batch)[0]
    np.testing.assert_allclose(onnx.decode(mu, batch_size=5), vae.decode(mu), atol=1e-5)
    with pytest.raises(ValueError, match="not conditioned"):
        onnx.encode(batch, conditions=np.zeros((len(batch), 2)))
    with pytest.raises(ValueError, match="latent codes of shape"):
        onnx.decode(np.zeros((2, 3)))


def test_first_use_exports_then_both_runtimes_write_the_same_audio(trained):
    model_dir = trained / layout.MODEL_DIR
    for name in (inference.ENCODER_ONNX, inference.DECODER_ONNX, inference.ONNX_RECORD):
        (model_dir / name).unlink()
    args = (SINGLE, "Crunch", "100", "E4", "--use-mean", "--seed", "4")
    result = run_script(*args, "--output-dir", "tf", cwd=trained)
    assert result.returncode == 0, result.stderr
    assert "runtime: TensorFlow" in result.stderr and "writing it for next time" in result.stderr
    assert inference.onnx_fresh(model_dir)
    result, tensorflow_started = run_without_tensorflow_check(*args, "--runtime", "onnx", "--output-dir", "onnx",
                                                              cwd=trained)
    assert result.returncode == 0, result.stderr
    assert not tensorflow_started and "runtime:" not in result.stderr
    for kind in ("generated", "original"):
        ours, _ = soundfile.read(trained / "onnx" / kind / "0.wav")
        theirs, _ = soundfile.read(trained / "tf" / kind / "0.wav")
        np.testing.assert_allclose(ours, theirs, atol=1e-3)
    # New weights make the export stale: auto runs TensorFlow again and exports anew.
    with open(model_dir / "parameters.json", "a") as handle:
        handle.write("\n")
    assert not inference.onnx_fresh(model_dir)
    result = run_script(*args, "--runtime", "auto", "--output-dir", "tf", cwd=trained)
    assert result.returncode == 0 and "runtime: TensorFlow" in result.stderr, result.stderr
    assert inference.onnx_fresh(model_dir)


def test_unreadable_onnx_export_is_one_line(trained):
    model_dir = trained / layout.MODEL_DIR
    (model_dir / inference.ENCODER_ONNX).write_bytes(b"not onnx")
    result = run_script(SINGLE, "Crunch", "100", "E4", "--runtime", "onnx", cwd=trained)
    assert_one_line_error(result, "ONNX export cannot be read", "--runtime tensorflow")


def test_unknown_runtime_is_a_usage_error(trained_project):
    result = run_script(SINGLE, "Crunch", "100", "E4", "--runtime", "torch", cwd=trained_project)
    assert result.returncode == 2 and "invalid choice" in result.stderr


@pytest.mark.parametrize("script, arguments", [
    ("generate_timbre_interpolation.py", ("Crunch", "100", "E4", "Dark", "50", "E4", "3", "--seed", "0")),
    ("generate_from_description.py", ("Crunch", "75", "E4", "--seed", "0")),
    ("visualise_latent_space.py", ("--method", "pca", "--no-html")),
    ("apply_timbre_descriptor.py", ("audio/ModulationFX/Fluttery/0/1-5.wav", "Dark", "100", "-o", "out.wav")),
])
def test_commands_run_without_tensorflow_on_onnx(trained, script, arguments):
    result, tensorflow_started = run_without_tensorflow_check(script, *arguments, "--runtime", "onnx", cwd=trained)
    assert result.returncode == 0, result.stderr
    assert not tensorflow_started
