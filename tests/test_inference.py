"""Inference with ONNX Runtime beside TensorFlow: the export VAE.save writes, its fingerprint, the
first use of a model folder without one, --runtime on the commands, the same audio from both."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile

from conftest import assert_one_line_error, run_script, run_without_tensorflow_check
from semantic_timbre.runtime import inference
from semantic_timbre.network import onnx_export
from semantic_timbre import layout
from semantic_timbre.data import processed_data

SINGLE = "generate_single_sample.py"



def test_save_exports_onnx_that_computes_what_tensorflow_does(trained_project):
    from semantic_timbre.network.vae import VAE

    model_dir = trained_project / layout.MODEL_DIR
    assert onnx_export.onnx_fresh(model_dir)
    record = json.loads((model_dir / onnx_export.ONNX_RECORD).read_text())
    assert record["weights_sha256"] == onnx_export.weights_fingerprint(model_dir)
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
    for name in (onnx_export.ENCODER_ONNX, onnx_export.DECODER_ONNX, onnx_export.ONNX_RECORD):
        (model_dir / name).unlink()
    args = (SINGLE, "Crunch", "100", "E4", "--use-mean", "--seed", "4")
    result = run_script(*args, "--output-dir", "tf", cwd=trained)
    assert result.returncode == 0, result.stderr
    assert "runtime: TensorFlow" in result.stderr and "writing it for next time" in result.stderr
    assert onnx_export.onnx_fresh(model_dir)
    result, tensorflow_started = run_without_tensorflow_check(*args, "--runtime", "onnx", "--output-dir", "onnx",
                                                              cwd=trained)
    assert result.returncode == 0, result.stderr
    assert not tensorflow_started and "runtime:" not in result.stderr
    for kind in ("generated", "original"):
        ours, _ = soundfile.read(trained / "onnx" / kind / "0.wav")
        theirs, _ = soundfile.read(trained / "tf" / kind / "0.wav")
        # The decoders agree to 1e-5 (above); Griffin-Lim's 32 iterations carry a difference that
        # small into ~1e-3 on a few samples, so the audio is compared as a whole: within 1% RMS.
        assert ours.shape == theirs.shape
        assert np.linalg.norm(ours - theirs) <= 0.01 * np.linalg.norm(theirs), kind
    # New weights make the export stale: auto runs TensorFlow again and exports anew.
    with open(model_dir / "parameters.json", "a") as handle:
        handle.write("\n")
    assert not onnx_export.onnx_fresh(model_dir)
    result = run_script(*args, "--runtime", "auto", "--output-dir", "tf", cwd=trained)
    assert result.returncode == 0 and "runtime: TensorFlow" in result.stderr, result.stderr
    assert onnx_export.onnx_fresh(model_dir)


def test_a_damaged_or_foreign_onnx_export_is_not_fresh_and_is_exported_anew(trained, trained_project, tmp_path):
    """The freshness check covers the .onnx files' own sha256: a damaged file, or another model's
    export copied in (here a conditioned model's decoder), is exported again, never used."""
    model_dir = trained / layout.MODEL_DIR
    assert onnx_export.onnx_fresh(model_dir)
    (model_dir / onnx_export.ENCODER_ONNX).write_bytes(b"not onnx")
    assert not onnx_export.onnx_fresh(model_dir)
    result = run_script(SINGLE, "Crunch", "100", "E4", "--runtime", "onnx", "--use-mean", "--seed", 4,
                        "--output-dir", "onnx", cwd=trained)
    assert result.returncode == 0, result.stderr
    assert "exporting" in result.stderr and onnx_export.onnx_fresh(model_dir)
    record = json.loads((model_dir / onnx_export.ONNX_RECORD).read_text())
    assert set(record["files_sha256"]) == {onnx_export.ENCODER_ONNX, onnx_export.DECODER_ONNX}

    # Another model's decoder (other sizes) copied over this one's, with or without its record.
    from semantic_timbre.network.vae import VAE

    other = tmp_path / "other"
    VAE((512, 64, 1), (4, 4, 4, 4, 4), (3, 3, 3, 3, 3), (2, 2, 2, 2, (2, 1)), 5, seed=0).save(other)
    good = (model_dir / onnx_export.DECODER_ONNX).read_bytes()
    shutil.copy(other / onnx_export.DECODER_ONNX, model_dir / onnx_export.DECODER_ONNX)
    assert not onnx_export.onnx_fresh(model_dir)
    # Forcing the record to match (a hand-made copy): the sessions' inputs are checked too.
    record["files_sha256"][onnx_export.DECODER_ONNX] = onnx_export._file_sha256(model_dir / onnx_export.DECODER_ONNX)
    (model_dir / onnx_export.ONNX_RECORD).write_text(json.dumps(record))
    assert onnx_export.onnx_fresh(model_dir)
    result = run_script(SINGLE, "Crunch", "100", "E4", "--runtime", "onnx", "--output-dir", "bad", cwd=trained)
    assert_one_line_error(result, "decoder.onnx takes", "another model's export", "--runtime tensorflow")
    assert not (trained / "bad" / "generated" / "0.wav").exists()
    (model_dir / onnx_export.DECODER_ONNX).write_bytes(good)


def test_an_export_killed_midway_leaves_no_temporary_file_behind_for_long(trained):
    """kill -9 during an export leaves the temporary file atomic_path made; the next export
    removes those older than two minutes (a younger one may be another export under way)."""
    import os
    import time

    model_dir = trained / layout.MODEL_DIR
    stale = model_dir / f".{onnx_export.DECODER_ONNX}.0123456789ab.tmp.onnx"
    young = model_dir / f".{onnx_export.ENCODER_ONNX}.ba9876543210.tmp.onnx"
    stale.write_bytes(b"")
    young.write_bytes(b"")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    (model_dir / onnx_export.ONNX_RECORD).unlink()
    result = run_script(SINGLE, "Crunch", "100", "E4", "--runtime", "onnx", cwd=trained)
    assert result.returncode == 0, result.stderr
    assert not stale.exists() and young.exists()


def test_both_runtimes_give_the_same_spectra_and_mostly_the_same_waveforms(trained_project):
    """What the README promises: the decoded spectrograms agree to float32 rounding; inverted
    (Griffin-Lim, the same seed), every note's audio has the same spectral convergence to its
    spectrogram within 2e-3, and most notes the same samples within 1e-3 (not all: Griffin-Lim
    can turn the rounding differences into another phase, equally good)."""
    from semantic_timbre import pipeline as generation
    from semantic_timbre.data import spectrogram
    from semantic_timbre.network.vae import VAE

    model_dir = trained_project / layout.MODEL_DIR
    onnx, vae = inference.OnnxModel(model_dir), VAE.load(model_dir)
    notes = processed_data.require_spectrograms(trained_project / layout.SPECTROGRAMS_DIR)
    min_max = processed_data.load_min_max(trained_project / layout.MINMAX_DIR)
    batch = np.stack([processed_data.load_spectrogram(trained_project / layout.SPECTROGRAMS_DIR / n.spectrogram_name)
                      for n in notes])
    mu = vae.encode(batch)[0]
    ours, theirs = onnx.decode(mu), vae.decode(mu)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    same = 0
    for index, note in enumerate(notes):
        low, high = processed_data.min_max_of(min_max, note)
        magnitude = spectrogram.db_to_amplitude(spectrogram.denormalise(theirs[index, ..., 0], low, high))
        audio = [generation.invert(decoded[index, ..., 0], low, high, seed=4) for decoded in (ours, theirs)]
        convergence = [spectrogram.spectral_convergence(one, magnitude) for one in audio]
        assert abs(convergence[0] - convergence[1]) < 2e-3, (note.spectrogram_name, convergence)
        same += np.abs(audio[0] - audio[1]).max() < 1e-3
    assert same >= len(notes) // 2, same


def test_unknown_runtime_is_a_usage_error(trained_project):
    result = run_script(SINGLE, "Crunch", "100", "E4", "--runtime", "torch", cwd=trained_project)
    assert result.returncode == 2 and "invalid choice" in result.stderr


@pytest.mark.parametrize("script, arguments, written", [
    ("generate_timbre_interpolation.py", ("Crunch", "100", "E4", "Dark", "50", "E4", "3", "--seed", "0"),
     ("interpolated_samples/generated/0.wav", "interpolated_samples/generated/1.wav",
      "interpolated_samples/generated/2.wav", "interpolated_samples/original/0.wav",
      "interpolated_samples/original/1.wav")),
    ("generate_from_description.py", ("Crunch", "75", "E4", "--seed", "0"), ("singlesample/generated/Crunch75_E4.wav",)),
    ("visualise_latent_space.py", ("--method", "pca", "--no-html"),
     ("Visualise_VAE_Latent_Space_PCA.png", "Visualise_VAE_Latent_Space_PCA.csv")),
    ("apply_timbre_descriptor.py", ("audio/ModulationFX/Fluttery/0/1-5.wav", "Dark", "100", "-o", "out.wav"),
     ("out.wav",)),
])
def test_commands_run_without_tensorflow_on_onnx(trained, script, arguments, written):
    result, tensorflow_started = run_without_tensorflow_check(script, *arguments, "--runtime", "onnx", cwd=trained)
    assert result.returncode == 0, result.stderr
    assert not tensorflow_started
    for name in written:  # what the command says it wrote, there and not empty
        path = trained / name
        assert name in result.stdout and path.is_file() and path.stat().st_size > 0, (name, result.stdout)
        if path.suffix == ".wav":
            audio, rate = soundfile.read(path)
            assert rate == 22050 and audio.size and np.all(np.isfinite(audio)) and np.abs(audio).max() > 0, name
