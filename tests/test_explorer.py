"""explore_timbre_space.py's app (semantic_timbre/explorer.py) through FastAPI's TestClient: every
endpoint, the bad requests the issue names (non-audio, empty, oversized or ../ uploads, an unknown
descriptor) answered with a JSON message and nothing written outside a temporary folder; the
command's own checks; the latent plot's HTML offline."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile

from conftest import REPO_ROOT, assert_one_line_error, plucked_note, run_script
from semantic_timbre import layout

SCRIPT = "explore_timbre_space.py"


@pytest.fixture(scope="module")
def project(trained_project, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("explorer") / "project"
    shutil.copytree(trained_project, root)
    return root


@pytest.fixture(scope="module")
def client(project):
    from fastapi.testclient import TestClient

    from semantic_timbre.explorer import create_app

    app = create_app(project / layout.MODEL_DIR, project / layout.SPECTROGRAMS_DIR, project / layout.MINMAX_DIR,
                     project / layout.AUDIO_DIR, runtime="onnx", griffin_lim_iters=4, max_upload_bytes=200_000,
                     log=lambda line: None)
    assert app.state.explorer.runtime == "onnx"
    with TestClient(app) as client:
        yield client


def assert_wav(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav"
    assert response.headers["content-disposition"].startswith("inline; filename=")
    audio, rate = soundfile.read(io.BytesIO(response.content))
    assert response.content[:4] == b"RIFF" and rate == 22050 and np.abs(audio).max() > 1e-4
    return audio


def assert_error(response, status: int, *fragments) -> str:
    assert response.status_code == status, response.text
    message = response.json()["error"]
    for fragment in fragments:
        assert fragment in message, message
    return message


def wav_upload(name="note.wav", seconds=1.0, silence=0.2) -> tuple:
    note = np.concatenate([np.zeros(int(44100 * silence), np.float32), plucked_note(329.63, seconds=seconds)])
    buffer = io.BytesIO()
    soundfile.write(buffer, note, 44100, format="WAV", subtype="PCM_16")
    return name, buffer.getvalue(), "audio/wav"


def test_page_and_plotly_are_served_by_the_app(client):
    page = client.get("/")
    assert page.status_code == 200 and '<script src="/plotly.min.js">' in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN, no external fonts
    script = client.get("/plotly.min.js")
    assert script.headers["content-type"].startswith("application/javascript") and len(script.content) > 1_000_000


def test_map_and_a_notes_original_and_reconstruction(client):
    data = client.get("/api/map").json()
    assert len(data["notes"]) == 21 and data["method"] == "pca" and data["runtime"] == "onnx"
    assert data["descriptors"] == ["Crunch", "Dark", "Fluttery"] and data["pitches"] == ["E4", "A4", "E5"]
    note = data["notes"][3]
    assert {"index", "x", "y", "descriptor", "magnitude", "pitch", "name"} <= set(note)
    original = assert_wav(client.get("/api/notes/3/original.wav"))
    reconstruction = assert_wav(client.get("/api/notes/3/reconstruction.wav"))
    assert original.shape == reconstruction.shape and not np.allclose(original, reconstruction)
    assert_error(client.get("/api/notes/21/original.wav"), 404, "no note 21")
    assert_error(client.get("/api/notes/x/reconstruction.wav"), 400, "invalid request")


def test_generate_from_a_description(client, project):
    first = assert_wav(client.get("/api/generate.wav", params={"descriptor": "crunch", "magnitude": 75, "pitch": "a4"}))
    again = assert_wav(client.get("/api/generate.wav", params={"descriptor": "Crunch", "magnitude": 75, "pitch": "A4"}))
    np.testing.assert_array_equal(first, again)
    assert_error(client.get("/api/generate.wav", params={"descriptor": "Spooky", "magnitude": 50, "pitch": "E4"}),
                 400, "'Spooky' is not a descriptor")
    assert_error(client.get("/api/generate.wav", params={"descriptor": "Bright", "magnitude": 50, "pitch": "E4"}),
                 400, "no notes of Bright")
    assert_error(client.get("/api/generate.wav", params={"descriptor": "Dark", "magnitude": 500, "pitch": "E4"}),
                 400, "outside 0..100")
    assert_error(client.get("/api/generate.wav", params={"descriptor": "Dark", "magnitude": 50, "pitch": "B9"}),
                 400, "no clean note at pitch 'B9'")
    assert_error(client.get("/api/generate.wav", params={"descriptor": "Dark", "pitch": "E4"}), 400, "magnitude")


def test_interpolation_steps(client):
    ends = [assert_wav(client.get("/api/interpolate.wav", params={"first": 0, "second": 9, "steps": 4, "step": s}))
            for s in (0, 1, 3)]
    assert not np.allclose(ends[0], ends[2])
    assert_error(client.get("/api/interpolate.wav", params={"first": 0, "second": 9, "steps": 4, "step": 4}), 400,
                 "step 4 is outside 0..3")
    assert_error(client.get("/api/interpolate.wav", params={"first": 0, "second": 99}), 404, "no note 99")
    assert_error(client.get("/api/interpolate.wav", params={"first": 0, "second": 1, "steps": 1}), 400)


def test_upload_a_note_and_bad_uploads_write_nothing(client, project):
    client.get("/api/generate.wav", params={"descriptor": "Dark", "magnitude": 100, "pitch": "E4"})  # directions cached
    before = sorted(project.rglob("*"))
    temporary = set(Path(tempfile.gettempdir()).glob("semantic_timbre_upload_*"))
    form = {"descriptor": "dark", "magnitude": "100"}
    applied = assert_wav(client.post("/api/apply.wav", files={"file": wav_upload()}, data=form))
    assert len(applied) > 15000
    bad = [
        (("../../etc/evil.wav",) + wav_upload()[1:], 400, "not a plain file name"),
        (("notes.txt", b"just text", "text/plain"), 400, "not an audio file"),
        (("empty.wav", b"", "audio/wav"), 400, "'empty.wav' is empty"),
        (("fake.wav", b"RIFF but not really a wav file", "audio/wav"), 400, "fake.wav cannot be read as audio"),
        (wav_upload("long.wav", seconds=4.0), 413, "larger than"),
        ((".hidden.wav",) + wav_upload()[1:], 400, "not a plain file name"),
    ]
    for upload, status, fragment in bad:
        message = assert_error(client.post("/api/apply.wav", files={"file": upload}, data=form), status, fragment)
        assert "semantic_timbre_upload_" not in message  # the temporary folder is not shown
    assert_error(client.post("/api/apply.wav", files={"file": wav_upload()}, data={"descriptor": "Nope",
                                                                                  "magnitude": "50"}),
                 400, "'Nope' is not a descriptor")
    assert_error(client.post("/api/apply.wav", data=form), 400, "file")
    assert sorted(project.rglob("*")) == before
    assert set(Path(tempfile.gettempdir()).glob("semantic_timbre_upload_*")) == temporary


def test_command_refuses_a_busy_port_and_a_missing_model(project, tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_script(SCRIPT, "--no-browser", "--port", port, cwd=project)
    assert_one_line_error(result, f"cannot listen on 127.0.0.1:{port}", "--port")
    result = run_script(SCRIPT, "--no-browser", "--port", 0, cwd=project)
    assert_one_line_error(result, "--port 0 is not a port number")
    (tmp_path / "spectrograms").mkdir()
    result = run_script(SCRIPT, "--no-browser", "--port", 65000, "--model-dir", tmp_path / "none", cwd=project)
    assert_one_line_error(result, "holds no trained model")


def test_the_app_on_onnx_imports_no_tensorflow(project):
    code = ("import sys; from semantic_timbre.explorer import create_app; create_app(log=lambda line: None); "
            "print('tensorflow imported:', 'tensorflow' in sys.modules or 'keras' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode == 0, result.stderr
    assert "tensorflow imported: False" in result.stdout
