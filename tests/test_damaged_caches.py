"""Damaged caches (issue 19): every cache read goes through safe_io.read_npz / load_npz_cache, so a
truncated, empty or non-zip file, or one whose fingerprint matches but whose arrays are of the wrong
shape or hold NaN, is named in one notice and computed again; a damaged checkpoint stops training
with one line naming it and the ways on, and nothing is lost."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_one_line_error, run_script
from semantic_timbre import safe_io

TINY = ("--filters", 8, 8, 8, 8, 8, "--latent", 8, "--batch-size", 8)


def damage(path: Path, how: str) -> None:
    """Damage a cache as a full disk, an interrupted copy or another program would."""
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "not a zip":
        path.write_text("these are not the arrays you are looking for\n" * 20)
    elif how == "tail cut":
        path.write_bytes(data[:-30])
    else:
        raise ValueError(how)


DAMAGES = ("truncated", "empty", "not a zip", "tail cut")


def rewrite(path: Path, change) -> None:
    """Rewrite a cache with its own (matching) fingerprint and `change(arrays)` applied."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    fingerprint = json.loads(str(arrays.pop("fingerprint")))
    change(arrays)
    safe_io.save_npz_cache(path, arrays, fingerprint)


def spoil(path: Path, how: str, key: str, columns: int) -> None:
    """Damage a cache `how`: a NaN in its 2-D array `key` ("nan ..."), that array cut to `columns`
    columns ("wrong shape"), or the file itself (DAMAGES)."""
    if how.startswith("nan "):
        rewrite(path, lambda arrays: arrays[key].__setitem__((0, 0), np.nan))
    elif how == "wrong shape":
        rewrite(path, lambda arrays: arrays.update({key: arrays[key][:, :columns].copy()}))
    else:
        damage(path, how)


def test_the_one_reader_names_the_file_for_every_damage(tmp_path):
    path = tmp_path / "cache.npz"
    for how in DAMAGES:
        safe_io.save_npz_cache(path, {"values": np.arange(1000.0)}, {"of": "this"})
        damage(path, how)
        with pytest.raises(safe_io.CacheReadError, match=f"{path} cannot be read"):
            safe_io.read_npz(path)
        said = []
        assert safe_io.load_npz_cache(path, {"of": "this"}, log=said.append) is None
        assert len(said) == 1 and str(path) in said[0] and "computing it again" in said[0], said
    safe_io.save_npz_cache(path, {"values": np.array([1.0, np.nan])}, {"of": "this"})
    said = []
    check = lambda arrays: safe_io.expect(arrays, "values", (None,))  # noqa: E731
    assert safe_io.load_npz_cache(path, {"of": "this"}, check=check, log=said.append) is None
    assert "'values' holds NaN or infinite values" in said[0]
    assert safe_io.load_npz_cache(path, {"of": "that"}, check=check, log=said.append) is None and len(said) == 1


@pytest.fixture(scope="module")
def project(trained_project, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("caches") / "project"
    shutil.copytree(trained_project, root)
    return root


def _apply(project, tmp_path, name):
    from conftest import plucked_note, write_audio

    note = write_audio(tmp_path / "note.wav", plucked_note(330))
    return run_script("apply_timbre_descriptor.py", note, "Dark", 50, "-o", tmp_path / name, "--seed", 1,
                      "--griffin-lim-iters", 2, "--runtime", "tensorflow", cwd=project)


@pytest.mark.parametrize("how", DAMAGES + ("nan row", "wrong shape", "bad key"))
def test_damaged_descriptor_directions_are_measured_again(project, tmp_path, how):
    cache = project / "model" / "descriptor_directions.npz"
    first = _apply(project, tmp_path, "first.wav")
    assert first.returncode == 0, first.stderr
    assert cache.is_file()
    if how == "nan row":
        rewrite(cache, lambda arrays: arrays["Dark/50"].__setitem__(0, np.nan))
    elif how == "wrong shape":
        rewrite(cache, lambda arrays: arrays.update({"Dark/50": np.zeros(3, np.float32)}))
    elif how == "bad key":
        rewrite(cache, lambda arrays: arrays.update({"Dark": np.zeros(8, np.float32)}))
    else:
        damage(cache, how)
    result = _apply(project, tmp_path, "again.wav")
    assert result.returncode == 0, result.stderr
    notices = [line for line in result.stderr.splitlines() if line.startswith("notice: ignoring the cache")]
    assert len(notices) == 1 and str(Path("model") / "descriptor_directions.npz") in notices[0], result.stderr
    assert "Traceback" not in result.stderr
    assert "measured descriptor directions and cached them in" in result.stdout
    # measured again, the same directions and the same audio as the first time
    import soundfile

    np.testing.assert_allclose(soundfile.read(tmp_path / "again.wav")[0], soundfile.read(tmp_path / "first.wav")[0],
                               atol=1e-4)
    again = _apply(project, tmp_path, "third.wav")
    assert "using cached descriptor directions" in again.stdout and "notice" not in again.stderr


@pytest.mark.parametrize("way", ["read-only folder", "a folder in the way"])
def test_a_model_folder_that_cannot_keep_the_directions_measures_them_and_says_so(project, tmp_path, way):
    """Before: every explorer generation answered 500, and the commands did all the work, then
    advised 'choose another output folder'. (Root writes into a read-only folder: the second way,
    a folder where the cache would go, fails for every user.)"""
    import os

    copy = tmp_path / "project"
    shutil.copytree(project, copy)
    (copy / "model" / "descriptor_directions.npz").unlink(missing_ok=True)
    (copy / "model" / "descriptor_directions.json").unlink(missing_ok=True)
    if way == "read-only folder":
        os.chmod(copy / "model", 0o555)
        if os.access(copy / "model", os.W_OK):
            os.chmod(copy / "model", 0o755)
            pytest.skip("running as a user who can write anywhere (root)")
    else:
        (copy / "model" / "descriptor_directions.npz").mkdir()
    before = sorted(path.relative_to(copy) for path in copy.rglob("*"))
    try:
        result = _apply(copy, tmp_path, "out.wav")
        assert result.returncode == 0, result.stderr
        assert "could not be cached in model/descriptor_directions.npz" in result.stderr
        assert "choose another output folder" not in result.stderr and "cached them in" not in result.stdout
        assert (tmp_path / "out.wav").is_file()
        result = run_script("generate_from_description.py", "Dark", 50, "E4", "-o", tmp_path / "described.wav",
                            "--griffin-lim-iters", 2, "--runtime", "tensorflow", cwd=copy)
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "described.wav").is_file()

        from fastapi.testclient import TestClient

        from semantic_timbre.explorer import create_app

        app = create_app(copy / "model", copy / "spectrograms", copy / "minmax", copy / "audio", runtime="tensorflow",
                         griffin_lim_iters=2, log=lambda line: None)
        client = TestClient(app, base_url="http://127.0.0.1:8000")
        for _ in range(2):
            response = client.get("/api/generate.wav", params={"descriptor": "Dark", "magnitude": 50, "pitch": "E4"})
            assert response.status_code == 200 and response.content[:4] == b"RIFF", response.text
        assert sorted(path.relative_to(copy) for path in copy.rglob("*")) == before
    finally:
        os.chmod(copy / "model", 0o755)


@pytest.mark.parametrize("how", DAMAGES + ("nan points", "wrong shape"))
def test_a_damaged_embedding_cache_is_computed_again(project, tmp_path, how):
    plot = tmp_path / "plot.png"
    args = ("--method", "pca", "--output", plot, "--no-html", "--runtime", "tensorflow")
    first = run_script("visualise_latent_space.py", *args, cwd=project)
    assert first.returncode == 0, first.stderr
    caches = list(tmp_path.glob("*embedding*.npz"))
    assert len(caches) == 1, list(tmp_path.iterdir())
    cache = caches[0]
    good = np.load(cache)["points"]
    spoil(cache, how, "points", 1)
    result = run_script("visualise_latent_space.py", *args, cwd=project)
    assert result.returncode == 0, result.stderr
    assert f"notice: ignoring the cache {cache}" in result.stderr and "Traceback" not in result.stderr
    np.testing.assert_allclose(np.load(cache)["points"], good, atol=1e-4)


@pytest.mark.parametrize("how", DAMAGES + ("nan coefficients", "wrong shape"))
def test_a_damaged_judge_cache_is_trained_again(processed_project, tmp_path, how, capsys):
    from semantic_timbre import judge

    project = tmp_path / "project"
    shutil.copytree(processed_project, project)
    spectrograms, minmax = project / "spectrograms", project / "minmax"
    first = judge.load_or_train_judge(spectrograms, minmax)
    cache = minmax / judge.CACHE_FILE_NAME
    spoil(cache, how, "model_coef", 3)
    capsys.readouterr()
    again = judge.load_or_train_judge(spectrograms, minmax)
    said = capsys.readouterr().err
    assert f"notice: ignoring the cache {cache}" in said, said
    assert again.status.startswith("trained on the processed notes and cached")
    np.testing.assert_allclose(again.model.coef, first.model.coef, rtol=1e-6, atol=1e-9)
    assert judge.load_or_train_judge(spectrograms, minmax).status.startswith("read from")


@pytest.mark.parametrize("how", DAMAGES + ("nan features", "wrong shape"))
def test_a_damaged_perceptual_cache_is_computed_again(processed_project, tmp_path, how, capsys):
    from semantic_timbre.data import perceptual, processed_data

    project = tmp_path / "project"
    shutil.copytree(processed_project, project)
    notes = processed_data.require_spectrograms(project / "spectrograms")[:2]
    options = dict(audio_dir=project / "audio", minmax_dir=project / "minmax", progress=False, log=lambda line: None)
    first = perceptual.note_features(notes, **options)
    cache = perceptual.cache_path(project / "minmax")
    spoil(cache, how, "features", 5)
    capsys.readouterr()
    again = perceptual.note_features(notes, **options)
    assert f"notice: ignoring the cache {cache}" in capsys.readouterr().err
    np.testing.assert_allclose(again, first, rtol=1e-6)
    assert len(perceptual.load_cache(project / "minmax")) == 2


def test_the_perceptual_fingerprint_names_the_libraries_it_was_computed_with():
    from semantic_timbre.data import perceptual

    fingerprint = perceptual.cache_fingerprint()
    assert fingerprint["timbral_models"] == "0.4.0" and fingerprint["librosa"] and fingerprint["numpy"]


@pytest.fixture(scope="module")
def checkpointed(processed_project, tmp_path_factory) -> Path:
    project = tmp_path_factory.mktemp("checkpoint") / "project"
    shutil.copytree(processed_project, project)
    result = run_script("train_timbre_generation_vae.py", *TINY, "--epochs", 1, cwd=project)
    assert result.returncode == 0, result.stderr
    return project


@pytest.mark.parametrize("how", DAMAGES + ("nan weight", "missing weight", "no meta"))
def test_a_damaged_checkpoint_stops_training_naming_it_and_nothing_is_lost(checkpointed, tmp_path, how):
    from semantic_timbre import training

    project = tmp_path / "project"
    shutil.copytree(checkpointed, project)
    checkpoint = training.checkpoint_path(project / "model")
    if how in DAMAGES:
        damage(checkpoint, how)
    else:
        with np.load(checkpoint, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
        if how == "nan weight":
            arrays["weight_0"] = arrays["weight_0"].copy()
            arrays["weight_0"].flat[0] = np.nan
        elif how == "missing weight":
            del arrays["weight_3"]
        else:
            del arrays["meta"]
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        checkpoint.write_bytes(buffer.getvalue())
    before = {path.relative_to(project): path.read_bytes() for path in (project / "model").rglob("*") if path.is_file()}
    result = run_script("train_timbre_generation_vae.py", *TINY, "--epochs", 2, cwd=project)
    line = assert_one_line_error(result, "checkpoint model/checkpoint/checkpoint.npz", "--restart", "--model-dir")
    assert result.returncode == 2
    assert ("cannot be read" if how in DAMAGES else "holds unexpected contents") in line, line
    after = {path.relative_to(project): path.read_bytes() for path in (project / "model").rglob("*") if path.is_file()}
    assert after == before  # the damaged checkpoint and the finished model as they were; nothing added
