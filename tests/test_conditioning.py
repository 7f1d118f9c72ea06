"""Conditioned VAEs (descriptor one-hot + magnitude, AudioCommons timbral features): training,
model files, every command with a conditioned model, generation from a description, the
comparison of the three models, and the bad input the issue names.

Two tiny conditioned models are trained once for the module (the thesis's kernels and strides,
4 filters per layer, latent size 4) on the 21 notes of `processed_project`, by the real command.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from conftest import assert_one_line_error, run_script, run_without_tensorflow_check

TINY = ("--preset", "demo", "--filters", 4, 4, 4, 4, 4, "--latent", 4, "--batch-size", 8, "--epochs", 2)


@pytest.fixture(scope="module")
def conditioned_project(trained_project, tmp_path_factory) -> Path:
    """trained_project (model/: the unconditioned tiny VAE) plus model_descriptor/ and model_perceptual/."""
    root = tmp_path_factory.mktemp("conditioned") / "project"
    shutil.copytree(trained_project, root)
    for kind in ("descriptor", "perceptual"):
        result = run_script("train_timbre_generation_vae.py", *TINY, "--conditioning", kind,
                            "--model-dir", f"model_{kind}", cwd=root)
        assert result.returncode == 0, result.stderr
        assert f"conditioning: {kind}" in result.stdout
    return root


def copy_of(project: Path, tmp_path: Path) -> Path:
    target = tmp_path / "project"
    shutil.copytree(project, target)
    return target


# ---------------------------------------------------------------- the configuration, no TensorFlow

def test_descriptor_condition_and_target():
    from semantic_timbre import layout
    from semantic_timbre.network.config import ConditionError, Conditioning

    notes = [layout.Note("Crunch", 50, 1, 0, "1-0.wav"), layout.Note("Crunch", 100, 1, 0, "1-0.wav"),
             layout.Note("Fluttery", 0, 1, 0, "1-0.wav")]
    spec = Conditioning.descriptor(notes)
    assert spec.size == 20 and spec.names[-1] == "magnitude"
    conditions = spec.of_descriptors([n.descriptor for n in notes], [n.magnitude for n in notes])
    crunch = layout.DESCRIPTORS.index("Crunch")
    assert conditions[0, crunch] == 1 and conditions[0, -1] == pytest.approx(0.5)
    assert not conditions[2].any()  # a clean note: all-zero one-hot, magnitude 0
    target = spec.target("Crunch", 60)
    assert target[crunch] == 1 and target[-1] == pytest.approx(0.6) and target.sum() == pytest.approx(1.6)
    with pytest.raises(ConditionError, match="no 'Fuzz' note: it knows Crunch"):
        spec.target("Fuzz", 60)


def test_perceptual_target_interpolates_between_magnitudes():
    from semantic_timbre import layout
    from semantic_timbre.network.config import Conditioning, ModelConfig

    notes = [layout.Note("Fuzz", 50, 1, f, "x.wav") for f in (0, 1)] + [layout.Note("Fuzz", 100, 1, 0, "x.wav"),
                                                                        layout.Note("Fluttery", 0, 1, 0, "x.wav")]
    features = np.array([[10.0] * 7, [20.0] * 7, [40.0] * 7, [0.0] * 7]) + np.arange(7)
    spec = Conditioning.perceptual(notes, features)
    mean, std = features.mean(0), features.std(0)
    # 75 lies half-way between the mean at 50 (15 + i) and at 100 (40 + i): 27.5 + i, standardised.
    np.testing.assert_allclose(spec.target("Fuzz", 75), (27.5 + np.arange(7) - mean) / std, rtol=1e-5)
    # 25 lies half-way between the clean notes' mean (0 + i) and 50's.
    np.testing.assert_allclose(spec.target("Fuzz", 25), (7.5 + np.arange(7) - mean) / std, rtol=1e-5)
    # The configuration goes through parameters.json unchanged.
    config = ModelConfig((512, 64, 1), (4, 4, 4, 4, 4), (3, 3, 3, 3, 3), (2, 2, 2, 2, (2, 1)), 4, spec)
    again = ModelConfig.from_json(json.loads(config.dumps()))
    assert again == config and again.conditioning.target("Fuzz", 75) == pytest.approx(spec.target("Fuzz", 75))


def test_timbral_features_of_a_note(conditioned_project):
    """The features of a note's samples are those the training cached from its file."""
    from semantic_timbre.data.perceptual import FEATURES, load_cache, timbral_features

    cached, _ = load_cache(conditioned_project / "minmax")["CrunchX100X1-0.wav.npy"]
    audio, rate = soundfile.read(conditioned_project / "audio" / "TestFX" / "Crunch" / "100" / "1-0.wav")
    features = timbral_features(audio, sample_rate=rate)
    assert features.shape == (len(FEATURES),) and np.all(np.isfinite(features))
    np.testing.assert_allclose(features, cached, rtol=1e-6)
    # The libraries it runs with are left as they were.
    import librosa

    assert not hasattr(np.lib, "pad")
    with pytest.raises(TypeError):
        librosa.onset.onset_strength(np.zeros(2048), 22050)  # positional: refused outside the shim


def test_the_compatibility_shim_never_patches_this_process():
    """timbral_models' numpy and librosa patches apply in the features worker process only: this
    process (the explorer's threads) keeps its own functions, before, during and after."""
    import threading

    import librosa

    from semantic_timbre.data import perceptual
    from conftest import plucked_note

    watched = [(np, "pad"), (np.lib, "pad"), (librosa.onset, "onset_detect"), (librosa.onset, "onset_strength"),
               (librosa.core, "resample"), (librosa, "resample")]
    before = [owner.__dict__.get(name) for owner, name in watched]
    seen_during = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            seen_during.append([owner.__dict__.get(name) for owner, name in watched])
            stop.wait(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        features = perceptual.window_features(plucked_note(330.0, seconds=0.74), 44100)
    finally:
        stop.set()
        watcher.join()
    assert features.shape == (len(perceptual.FEATURES),) and np.all(np.isfinite(features))
    after = [owner.__dict__.get(name) for owner, name in watched]
    assert all(a is b for a, b in zip(after, before)), "numpy or librosa was patched in this process"
    assert seen_during and all(all(a is b for a, b in zip(seen, before)) for seen in seen_during)
    assert "timbral_models" not in sys.modules  # it runs in the worker only


# ---------------------------------------------------------------- training and the model folder

def test_conditioned_model_folders(conditioned_project, trained_project):
    from semantic_timbre.data.perceptual import CACHE_FILE_NAME, FEATURES
    from semantic_timbre.network.vae import VAE

    # The unconditioned model keeps the thesis's files and format exactly.
    thesis = json.loads((trained_project / "model" / "parameters.json").read_text())
    assert list(thesis) == ["input_shape", "conv_filters", "conv_kernels", "conv_strides", "latent_space_dimension"]
    assert (trained_project / "model" / "parameters.pkl").is_file()
    for kind, size in (("descriptor", 20), ("perceptual", 7)):
        folder = conditioned_project / f"model_{kind}"
        recorded = json.loads((folder / "parameters.json").read_text())["conditioning"]
        assert recorded["kind"] == kind and len(recorded["names"]) == size
        assert not (folder / "parameters.pkl").exists()  # the thesis's code could not build it
        assert set(recorded["trained_on"]) == {"clean", "Crunch", "Dark", "Fluttery"}
        vae = VAE.load(folder)
        assert vae.conditioning.kind == kind and vae.config.conditioning.size == size
        spectrograms = np.stack([np.load(p) for p in sorted((conditioned_project / "spectrograms").glob("*.npy"))[:3]])
        conditions = np.random.default_rng(0).normal(size=(3, size)).astype(np.float32)
        mu, _, _ = vae.encode(spectrograms, conditions=conditions)
        decoded = vae.decode(mu, conditions=conditions)
        other = vae.decode(mu, conditions=conditions[::-1].copy())
        assert decoded.shape == (3, 512, 64, 1) and np.all(np.isfinite(decoded))
        assert np.abs(decoded[0] - other[0]).max() > 1e-4  # the decoder does use the condition
        with pytest.raises(ValueError, match="needs conditions"):
            vae.encode(spectrograms)
    normalisation = json.loads((conditioned_project / "model_perceptual" / "parameters.json").read_text())[
        "conditioning"]["normalisation"]
    assert len(normalisation["mean"]) == len(FEATURES) and min(normalisation["std"]) > 0
    cache = np.load(conditioned_project / "minmax" / CACHE_FILE_NAME)
    assert len(cache["names"]) == 21 and np.all(np.isfinite(cache["features"]))


def test_feature_cache_recomputes_only_changed_audio(conditioned_project, tmp_path):
    from semantic_timbre import layout
    from semantic_timbre.data import perceptual

    project = copy_of(conditioned_project, tmp_path)
    notes = layout.list_spectrograms(project / "spectrograms")
    before = perceptual.load_cache(project / "minmax")
    changed = project / "audio" / "TestFX" / "Dark" / "50" / "1-5.wav"
    audio, rate = soundfile.read(changed)
    soundfile.write(changed, 0.5 * audio, rate, subtype="PCM_24")
    messages = []
    features = perceptual.note_features(notes, audio_dir=project / "audio", minmax_dir=project / "minmax",
                                        progress=False, log=messages.append)
    assert messages and "of 1 note(s)" in messages[0]
    after = perceptual.load_cache(project / "minmax")
    assert after["DarkX50X1-5.wav.npy"][1] != before["DarkX50X1-5.wav.npy"][1]
    assert all(np.array_equal(after[name][0], before[name][0]) for name in before if name != "DarkX50X1-5.wav.npy")
    assert features.shape == (21, 7)


def test_resuming_with_another_conditioning_is_refused(conditioned_project, tmp_path):
    project = copy_of(conditioned_project, tmp_path)
    result, tensorflow_started = run_without_tensorflow_check(
        "train_timbre_generation_vae.py", *TINY, "--epochs", 3, "--conditioning", "perceptual", "--model-dir",
        "model_descriptor", cwd=project)
    assert_one_line_error(result, "conditioning perceptual here, descriptor in the checkpoint", "--restart")
    assert not tensorflow_started


# ---------------------------------------------------------------- every command with a conditioned model

def test_every_command_with_conditioned_models(conditioned_project, tmp_path):
    """Each command once, with one conditioned model or the other (the condition code is shared)."""
    project = copy_of(conditioned_project, tmp_path)
    descriptor, perceptual = ("--model-dir", "model_descriptor"), ("--model-dir", "model_perceptual")
    result = run_script("generate_single_sample.py", "Crunch", 100, "E4", *perceptual, "--use-mean", "--seed", 1,
                        cwd=project)
    assert result.returncode == 0, result.stderr
    result = run_script("generate_timbre_interpolation.py", "Crunch", 100, "E4", "Dark", 50, "E4", 3, *descriptor,
                        cwd=project)
    assert result.returncode == 0, result.stderr
    assert len(list((project / "interpolated_samples" / "generated").glob("*.wav"))) == 3
    result = run_script("visualise_latent_space.py", "-timbre", "--method", "pca", "--no-html", *descriptor,
                        "--output", "latent.png", cwd=project)
    assert result.returncode == 0, result.stderr
    assert (project / "latent.png").is_file()
    for kind, model in (("descriptor", descriptor), ("perceptual", perceptual)):
        result = run_script("apply_timbre_descriptor.py", "audio/ModulationFX/Fluttery/0/1-5.wav", "dark", 75,
                            "-o", f"applied_{kind}.wav", *model, cwd=project)
        assert result.returncode == 0, result.stderr
        assert f"{kind}-conditioned model" in result.stdout
        audio, rate = soundfile.read(project / f"applied_{kind}.wav")
        assert rate == 22050 and np.all(np.isfinite(audio)) and np.abs(audio).max() > 1e-3


def test_conditioned_models_export_to_onnx_and_both_runtimes_agree(conditioned_project, tmp_path):
    from semantic_timbre.runtime import inference
    from semantic_timbre.network import onnx_export
    from semantic_timbre.data import processed_data
    from semantic_timbre.network.vae import VAE

    project = copy_of(conditioned_project, tmp_path)
    notes = processed_data.require_spectrograms(project / "spectrograms")[:6]
    batch = np.stack([processed_data.load_spectrogram(project / "spectrograms" / n.spectrogram_name) for n in notes])
    for kind in ("descriptor", "perceptual"):
        model_dir = project / f"model_{kind}"
        assert onnx_export.onnx_fresh(model_dir)  # written by the training's save
        onnx, vae = inference.OnnxModel(model_dir), VAE.load(model_dir)
        conditions = np.random.default_rng(0).random((len(batch), vae.conditioning.size), dtype=np.float32)
        for ours, theirs in zip(onnx.encode(batch, seed=1, conditions=conditions),
                                vae.encode(batch, seed=1, conditions=conditions)):
            np.testing.assert_allclose(ours, theirs, atol=1e-4)
        z = vae.encode(batch, conditions=conditions)[0]
        np.testing.assert_allclose(onnx.decode(z, conditions=conditions), vae.decode(z, conditions=conditions),
                                   atol=1e-5)
        with pytest.raises(ValueError, match="conditioned model needs"):
            onnx.decode(z)
        written = []
        for runtime in ("onnx", "tensorflow"):
            output = f"{kind}_{runtime}.wav"
            result = run_script("generate_from_description.py", "Crunch", 60, "A4", "--model-dir", model_dir,
                                "--seed", 0, "--runtime", runtime, "-o", output, cwd=project)
            assert result.returncode == 0, result.stderr
            written.append(soundfile.read(project / output)[0])
        # Griffin-Lim can turn the runtimes' ~1e-6 differences into another, equally good phase (the
        # README): the two are compared by their magnitude spectra, what is heard.
        import librosa

        spectra = [np.abs(librosa.stft(audio.astype(np.float32), n_fft=1024, hop_length=256)) for audio in written]
        distance = np.linalg.norm(spectra[0] - spectra[1]) / np.linalg.norm(spectra[1])
        assert distance < 0.05, distance


def test_explorer_with_conditioned_models(conditioned_project, tmp_path):
    from fastapi.testclient import TestClient

    from conftest import plucked_note, write_audio
    from semantic_timbre.explorer import create_app

    project = copy_of(conditioned_project, tmp_path)
    upload = write_audio(tmp_path / "upload.wav", plucked_note(440.0)).read_bytes()
    for kind in ("descriptor", "perceptual"):
        app = create_app(project / f"model_{kind}", project / "spectrograms", project / "minmax", project / "audio",
                         runtime="onnx", griffin_lim_iters=4, log=lambda line: None)
        client = TestClient(app, base_url="http://127.0.0.1:8000")
        assert client.get("/api/map").json()["conditioning"] == kind
        responses = [client.get("/api/notes/2/reconstruction.wav"),
                     client.get("/api/generate.wav", params={"descriptor": "Dark", "magnitude": 60, "pitch": "A4"}),
                     client.get("/api/interpolate.wav", params={"first": 0, "second": 5, "steps": 3, "step": 1})]
        if kind == "descriptor":  # (a perceptual model measures the upload's timbral features: slow, as the command)
            responses.append(client.post("/api/apply.wav", files={"file": ("a.wav", upload, "audio/wav")},
                                         data={"descriptor": "Crunch", "magnitude": "75"}))
        for response in responses:
            assert response.status_code == 200 and response.content[:4] == b"RIFF", response.text
        response = client.get("/api/generate.wav", params={"descriptor": "Bright", "magnitude": 60, "pitch": "A4"})
        assert response.status_code == 400 and "Bright" in response.json()["error"]


def test_generate_from_description_between_the_data_magnitudes(conditioned_project, tmp_path):
    project = copy_of(conditioned_project, tmp_path)
    for kind in ("none", "descriptor", "perceptual"):
        model_dir = "model" if kind == "none" else f"model_{kind}"
        result = run_script("generate_from_description.py", "crunch", 60, "A4", "--model-dir", model_dir,
                            "--seed", 0, "--overwrite", cwd=project)
        assert result.returncode == 0, result.stderr
        written = project / "singlesample" / "generated" / "Crunch60_A4.wav"
        assert f"wrote {Path('singlesample/generated/Crunch60_A4.wav')}" in result.stdout
        audio, rate = soundfile.read(written)
        assert rate == 22050 and len(audio) > 10000 and np.all(np.isfinite(audio)) and np.abs(audio).max() > 1e-3
    # The same request with the same seed writes the same note; another magnitude another one.
    first = soundfile.read(written)[0]
    run_script("generate_from_description.py", "Crunch", 60, "A4", "--model-dir", "model_perceptual", "--seed", 0,
               "--overwrite", cwd=project)
    np.testing.assert_allclose(soundfile.read(written)[0], first, atol=1e-6)
    result = run_script("generate_from_description.py", "Crunch", 100, "A4", "--model-dir", "model_perceptual",
                        "--seed", 0, cwd=project)
    assert result.returncode == 0, result.stderr
    stronger = soundfile.read(project / "singlesample" / "generated" / "Crunch100_A4.wav")[0]
    assert np.abs(stronger - first).max() > 1e-4


def test_generate_from_description_bad_input(conditioned_project, tmp_path):
    project = copy_of(conditioned_project, tmp_path)
    cases = [
        (("Fuzz", 60, "E4", "--model-dir", "model_descriptor"), ("no 'Fuzz' note", "Crunch, Dark")),
        (("Fuzz", 60, "E4", "--model-dir", "model_perceptual"), ("no 'Fuzz' note", "Crunch, Dark")),
        (("Blurry", 60, "E4"), ("'Blurry' is not a descriptor", "Bright, Crunch")),
        (("Crunch", 150, "E4"), ("magnitude 150 is outside 0..100",)),
        (("Crunch", "loud", "E4"), ("magnitude 'loud' is not a number",)),
        (("Crunch", 60, "C2"), ("no clean note at pitch 'C2'", "E4, A4, E5")),
        (("Crunch", 60, "E4", "--string", 3), ("no clean E4 on string 3",)),
    ]
    for args, fragments in cases:
        result = run_script("generate_from_description.py", *args, cwd=project)
        assert_one_line_error(result, *fragments)
    assert not list((project / "singlesample" / "generated").glob("*.wav"))


def test_conditioned_model_without_features_is_reported(conditioned_project, tmp_path):
    """A perceptual model over spectrograms whose features are not cached and whose audio is gone."""
    project = copy_of(conditioned_project, tmp_path)
    shutil.rmtree(project / "audio")
    (project / "minmax" / "perceptual_features.npz").unlink()
    result, tensorflow_started = run_without_tensorflow_check(
        "generate_single_sample.py", "Crunch", 100, "E4", "--model-dir", "model_perceptual", cwd=project)
    assert_one_line_error(result, "perceptual features of 1 note(s)", "audio is missing",
                          "audio/<GROUP>/Crunch/100/1-0.wav", "--audio-dir")
    assert not tensorflow_started
    assert not list((project / "singlesample").rglob("*.wav"))
    result, tensorflow_started = run_without_tensorflow_check(
        "train_timbre_generation_vae.py", *TINY, "--conditioning", "perceptual", "--model-dir", "model_new",
        cwd=project)
    assert_one_line_error(result, "perceptual features of 21 note(s)", "and 18 more")
    assert not tensorflow_started
    assert not (project / "model_new").exists() or not any((project / "model_new").iterdir())


def test_unknown_conditioning(processed_project):
    result = run_script("train_timbre_generation_vae.py", "--conditioning", "timbre", cwd=processed_project)
    assert result.returncode == 2
    assert "invalid choice: 'timbre'" in result.stderr and "'perceptual'" in result.stderr


def test_compare_three_models(conditioned_project, tmp_path):
    project = copy_of(conditioned_project, tmp_path)
    result = run_script("evaluate_timbre_generation_vae.py", "--compare", "model", "model_descriptor",
                        "model_perceptual", "--inverted-notes", 1, "--transfer-clean-notes", 2, cwd=project)
    assert result.returncode == 0, result.stderr
    comparison = json.loads((project / "evaluation" / "comparison.json").read_text())
    assert [row["conditioning"] for row in comparison["models"]] == ["none", "descriptor", "perceptual"]
    assert [row["model_dir"] for row in comparison["models"]] == ["model", "model_descriptor", "model_perceptual"]
    held_out = {json.loads((project / "evaluation" / name / "report.json").read_text())["run"]["held_out_notes"]
                for name in ("model", "model_descriptor", "model_perceptual")}
    assert len(held_out) == 1 and held_out.pop() > 0  # the same held-out notes for every model
    for row in comparison["models"]:
        for key in ("silhouette_descriptor", "classifier_accuracy", "reconstruction_mse", "log_spectral_distance_db",
                    "spectral_convergence", "audio_descriptor_recognition"):
            assert row[key] is not None and np.isfinite(row[key]), (row["model_dir"], key, row)
    table = (project / "evaluation" / "comparison.md").read_text()
    assert "| model_perceptual | perceptual |" in table
    assert (project / "evaluation" / "comparison.png").stat().st_size > 1000


def test_preprocessor_computes_perceptual_features(project):
    from conftest import make_audio_tree

    from semantic_timbre.data.perceptual import load_cache

    make_audio_tree(project / "audio", descriptors=("Crunch",), magnitudes=(100,), frets=(5,))
    result = run_script("process_audio_into_spectrograms.py", "--perceptual-features", "--quiet", cwd=project)
    assert result.returncode == 0, result.stderr
    cache = load_cache(project / "minmax")
    assert sorted(cache) == ["CrunchX100X1-5.wav.npy", "FlutteryX0X1-5.wav.npy"]
    assert all(np.all(np.isfinite(features)) for features, _ in cache.values())


# ---------------------------------------------------------------- a user's note and the perceptual model (issue 19)

def test_the_perceptual_condition_of_a_users_note_is_that_of_the_074_s_the_model_encodes(conditioned_project,
                                                                                         tmp_path):
    """Before, the features were computed over the whole file: a long loud tail after the note
    changed the condition (and took minutes for a long file); now only the window counts."""
    from conftest import plucked_note, write_audio

    project = copy_of(conditioned_project, tmp_path)
    rate = 44100
    note = plucked_note(440.0, seconds=1.0)
    tail = (0.5 * np.random.default_rng(0).standard_normal(rate * 5)).astype(np.float32)
    long = write_audio(tmp_path / "with tail.wav", np.concatenate([note, tail]))
    short = write_audio(tmp_path / "cut.wav", note[: int(rate * 0.74)])
    outputs = []
    for path in (long, short):
        output = tmp_path / f"{path.stem}_out.wav"
        result = run_script("apply_timbre_descriptor.py", path, "Dark", 75, "-o", output, "--seed", 3,
                            "--griffin-lim-iters", 4, "--model-dir", "model_perceptual", "--runtime", "onnx",
                            cwd=project)
        assert result.returncode == 0, result.stderr
        outputs.append(soundfile.read(output)[0])
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_a_5_ms_note_with_the_perceptual_model_is_answered_not_a_crash(conditioned_project, tmp_path):
    """Before: a traceback (command) and a 500 (explorer)."""
    import io

    from fastapi.testclient import TestClient

    from conftest import plucked_note, write_audio
    from semantic_timbre.explorer import create_app

    project = copy_of(conditioned_project, tmp_path)
    blip = plucked_note(440.0)[: int(44100 * 0.005)]
    path = write_audio(tmp_path / "blip.wav", blip)
    result = run_script("apply_timbre_descriptor.py", path, "Dark", 75, "-o", tmp_path / "blip_out.wav",
                        "--griffin-lim-iters", 4, "--model-dir", "model_perceptual", "--runtime", "onnx", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "lasts only 5 ms" in result.stderr
    assert soundfile.read(tmp_path / "blip_out.wav")[1] == 22050
    app = create_app(project / "model_perceptual", project / "spectrograms", project / "minmax", project / "audio",
                     runtime="onnx", griffin_lim_iters=4, log=lambda line: None)
    client = TestClient(app, base_url="http://127.0.0.1:8000")
    buffer = io.BytesIO()
    soundfile.write(buffer, blip, 44100, format="WAV", subtype="PCM_16")
    response = client.post("/api/apply.wav", files={"file": ("blip.wav", buffer.getvalue(), "audio/wav")},
                           data={"descriptor": "Dark", "magnitude": "75"})
    assert response.status_code == 200 and response.content[:4] == b"RIFF", response.text
    silent = io.BytesIO()
    soundfile.write(silent, np.zeros(2000, np.float32), 44100, format="WAV", subtype="PCM_16")
    response = client.post("/api/apply.wav", files={"file": ("silent.wav", silent.getvalue(), "audio/wav")},
                           data={"descriptor": "Dark", "magnitude": "75"})
    assert response.status_code == 400 and "silent.wav" in response.json()["error"], response.text
