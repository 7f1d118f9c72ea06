"""explore_timbre_space.py's app (semantic_timbre/explorer/) through FastAPI's TestClient: every
endpoint, the bad requests the issue names (non-audio, empty, oversized or ../ uploads, an unknown
descriptor) answered with a JSON message and nothing written outside a temporary folder; the
command's own checks; the latent plot's HTML offline."""

from __future__ import annotations

import contextlib
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
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
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
    assert 'id="steps" type="number" min="3" max="10"' in page.text  # the steps the server accepts
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


# -- what a request can cost (issue 19)

def test_only_the_explorers_own_address_and_page_are_answered(client):
    """Another web page cannot post to 127.0.0.1:8000 (Origin, Sec-Fetch-Site) nor reach it under
    another name (DNS rebinding: Host)."""
    assert client.get("/api/map").status_code == 200
    assert client.get("/api/map", headers={"Host": "localhost:8000"}).status_code == 200
    assert client.get("/api/map", headers={"Origin": "http://127.0.0.1:8000",
                                           "Sec-Fetch-Site": "same-origin"}).status_code == 200
    form = {"descriptor": "dark", "magnitude": "100"}
    refused = [
        ({"Host": "evil.example:8000"}, "is not this explorer's address"),
        ({"Host": "127.0.0.1:9999"}, "is not this explorer's address"),
        ({"Host": "127.0.0.1"}, "is not this explorer's address"),
        ({"Origin": "http://evil.example"}, "requests from another page"),
        ({"Origin": "null"}, "requests from another page"),
        ({"Origin": "http://127.0.0.1:8001"}, "requests from another page"),
        ({"Sec-Fetch-Site": "cross-site"}, "from another site"),
    ]
    for headers, fragment in refused:
        assert_error(client.post("/api/apply.wav", files={"file": wav_upload()}, data=form, headers=headers), 403,
                     fragment)
        assert_error(client.get("/api/generate.wav", params={"descriptor": "Dark", "magnitude": 50, "pitch": "E4"},
                                headers=headers), 403, fragment)


def test_a_body_over_the_limit_is_refused_from_its_length(client):
    response = client.post("/api/apply.wav", content=b"x" * 400_000,
                           headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert_error(response, 413, "upload limit")


def test_a_note_with_nan_samples_or_a_5_ms_note_is_a_json_error(client):
    form = {"descriptor": "dark", "magnitude": "100"}
    note = plucked_note(329.63)
    note[10] = np.nan
    buffer = io.BytesIO()
    soundfile.write(buffer, note, 44100, format="WAV", subtype="FLOAT")
    assert_error(client.post("/api/apply.wav", files={"file": ("nan.wav", buffer.getvalue(), "audio/wav")},
                             data=form), 400, "nan.wav", "NaN or infinite samples")
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(100, np.float32), 1, format="WAV", subtype="PCM_16")
    data = bytearray(buffer.getvalue())
    assert_error(client.post("/api/apply.wav", files={"file": ("slow.wav", bytes(data), "audio/wav")}, data=form),
                 400, "slow.wav", "sample rate of 1 Hz")


class LiveServer:
    """The app served by uvicorn in a thread on a free port, for what only a real socket shows."""

    def __init__(self, app, port):
        import threading

        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.port = port

    def __enter__(self):
        import socket
        import time

        self.thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the server did not start")

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _multipart(name: str, data: bytes, descriptor="Dark", magnitude="100") -> tuple[bytes, str]:
    boundary = "----boundary19"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="descriptor"\r\n\r\n{descriptor}\r\n',
             f'--{boundary}\r\nContent-Disposition: form-data; name="magnitude"\r\n\r\n{magnitude}\r\n',
             f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
             f'Content-Type: audio/wav\r\n\r\n']
    body = "".join(parts).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.fixture(scope="module")
def slow_app(project):
    """The app with one upload worker, a queue of one and 6,000 Griffin-Lim iterations (seconds an
    upload): what a busy explorer does with more uploads, late ones and clients that leave."""
    from semantic_timbre.explorer import create_app

    port = _free_port()
    app = create_app(project / layout.MODEL_DIR, project / layout.SPECTROGRAMS_DIR, project / layout.MINMAX_DIR,
                     project / layout.AUDIO_DIR, runtime="onnx", griffin_lim_iters=6000, max_upload_bytes=200_000,
                     log=lambda line: None, port=port, upload_workers=1, upload_queue=1, upload_time_limit=60)
    with LiveServer(app, port) as server:
        yield app, server


def test_the_size_limit_holds_while_a_chunked_body_streams_in(slow_app):
    """No Content-Length: the server answers 413 after about the limit, not after the whole 40 MB."""
    import socket

    app, server = slow_app
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection:
        connection.sendall(f"POST /api/apply.wav HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                           "Content-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n"
                           .encode())
        start = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n'
                 b"Content-Type: audio/wav\r\n\r\n")
        connection.sendall(f"{len(start):x}\r\n".encode() + start + b"\r\n")
        chunk = b"x" * 65536
        sent = 0
        try:
            while sent < 40_000_000:
                connection.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
                connection.settimeout(0.0)
                try:
                    if connection.recv(1, socket.MSG_PEEK):
                        break
                except BlockingIOError:
                    pass
                finally:
                    connection.settimeout(30)
        except (BrokenPipeError, ConnectionResetError):
            pass
        connection.settimeout(30)
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                block = connection.recv(65536)
                if not block:
                    break
                answer += block
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"upload limit" in answer
    assert sent < 10_000_000, sent  # the 200 KB limit plus what the sockets buffer, not the 40 MB


def test_a_busy_explorer_says_so_and_a_client_that_leaves_stops_its_work(slow_app):
    import socket
    import threading
    import time

    import httpx

    app, server = slow_app
    url = f"http://127.0.0.1:{server.port}/api/apply.wav"
    _, upload, _ = wav_upload()
    body, content_type = _multipart("note.wav", upload)
    before = dict(app.state.uploads)
    results = {}

    def first():
        results["first"] = httpx.post(url, content=body, headers={"Content-Type": content_type}, timeout=120)

    worker = threading.Thread(target=first)
    worker.start()
    time.sleep(0.5)  # the first upload holds the only worker
    # The second waits in the queue; its client leaves after a second.
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as leaving:
        leaving.sendall(f"POST /api/apply.wav HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Type: "
                        f"{content_type}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        time.sleep(1.0)
        # A third finds the worker and the queue full.
        busy = httpx.post(url, content=body, headers={"Content-Type": content_type}, timeout=60)
    assert busy.status_code == 503 and "busy" in busy.json()["error"], busy.text
    worker.join(120)
    assert results["first"].status_code == 200 and results["first"].content[:4] == b"RIFF"
    deadline = time.monotonic() + 60
    while app.state.uploads["stopped"] == before["stopped"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert app.state.uploads["stopped"] == before["stopped"] + 1, app.state.uploads
    assert app.state.uploads["done"] == before["done"] + 1, app.state.uploads


def test_an_upload_past_its_time_limit_is_answered_and_stopped(project):
    from fastapi.testclient import TestClient

    from semantic_timbre.explorer import create_app

    app = create_app(project / layout.MODEL_DIR, project / layout.SPECTROGRAMS_DIR, project / layout.MINMAX_DIR,
                     project / layout.AUDIO_DIR, runtime="onnx", griffin_lim_iters=1000, log=lambda line: None,
                     upload_time_limit=0.2)
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        response = client.post("/api/apply.wav", files={"file": wav_upload()}, data={"descriptor": "Dark",
                                                                                     "magnitude": "50"})
    assert_error(response, 503, "longer than the 0.2 s limit")


def test_the_port_is_free_again_at_once_after_the_explorer_stops():
    """Connections the server closed stay in TIME_WAIT for a minute; the port is free all the same."""
    import socket

    from semantic_timbre.cli import explore_timbre_space

    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        accepted.close()  # the server side closes first: its end of the connection is in TIME_WAIT
        client.recv(1)
        client.close()
    explore_timbre_space.check_port_free("127.0.0.1", port)
