"""A local web page to explore the timbre space by ear (explore_timbre_space.py), on FastAPI.

The model stays loaded (ONNX Runtime when its export is fresh) and every note of the processed
data is encoded once at start-up. The page, served with its own copy of plotly.js (no CDN, no
external fonts), shows the latent map (the 2-D reduction visualise_latent_space.py computes)
coloured by descriptor, magnitude or pitch; a click plays the note and its reconstruction. It
generates a note from a description (descriptor, magnitude, pitch: generate_from_description.py's
code path), interpolates between two notes with a slider over the steps, and applies a descriptor
to an uploaded note (decoded in a temporary folder, aligned at its onset as
apply_timbre_descriptor.py does). Every result is a WAV that can be downloaded.

Endpoints: GET / (the page), /plotly.min.js, /api/map, /api/notes/{index}/original.wav,
/api/notes/{index}/reconstruction.wav, /api/generate.wav, /api/interpolate.wav; POST /api/apply.wav.
A bad request answers a JSON {"error": "..."} (status 400, 403, 404, 413 or 503) that the page shows.

What a request can cost is bounded: only requests whose Host is the explorer's own address (and
whose Origin, when a browser sends one, is the page's) are answered, so no other web page can post
to it; the upload's size limit is enforced while the body streams in; an upload's note is decoded
only as far as it is used (apply_timbre_descriptor.read_note); uploads run in a small pool of
worker threads (more waiting than it holds: 503, try again), each with a time limit, and stop at
the next stage when their client disconnects or the limit passes.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.resources
import ipaddress
import json
import re
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException

from semantic_timbre import layout
from semantic_timbre.errors import UserError

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aif", ".aiff")
GRIFFIN_LIM_SEED = 0  # every answer reproducible: the same request, the same WAV
UPLOAD_WORKERS = 2  # uploads decoded and transformed at once
UPLOAD_QUEUE = 4  # uploads waiting for a worker beyond those; more are answered 503
UPLOAD_TIME_LIMIT_SECONDS = 60.0
FORM_OVERHEAD_BYTES = 64 * 1024  # the multipart headers and the form's other fields


class RequestError(UserError):
    """A request the page cannot answer; its message is shown on the page."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class RequestStopped(Exception):
    """An upload's work stopped between stages: its client went away or its time ran out."""


def _check_stop(stop) -> None:
    if stop is not None and stop.is_set():
        raise RequestStopped()


class Explorer:
    """What the app holds loaded: the model, the notes, their codes and 2-D map, the directions.

    Parameters
    ----------
    model_dir, spectrograms_dir, minmax_dir, audio_dir : the project's folders
    runtime : inference.load_model's runtime ("auto": ONNX when fresh)
    method : the map's 2-D reduction, "pca" (default: instant) or "tsne" (the thesis's plot)
    griffin_lim_iters : iterations of each inversion to audio
    log : where start-up progress is said
    """

    def __init__(self, model_dir=layout.MODEL_DIR, spectrograms_dir=layout.SPECTROGRAMS_DIR,
                 minmax_dir=layout.MINMAX_DIR, audio_dir=layout.AUDIO_DIR, runtime="auto", method="pca",
                 griffin_lim_iters=32, log=print):
        from semantic_timbre.runtime import inference
        from semantic_timbre.latent import plot as latent_plot
        from semantic_timbre.data import processed_data
        from semantic_timbre.network.conditioning import conditions_for_model
        from semantic_timbre.latent import encode_notes

        self.model_dir, self.spectrograms_dir = Path(model_dir), Path(spectrograms_dir)
        self.minmax_dir, self.audio_dir = Path(minmax_dir), Path(audio_dir)
        self.griffin_lim_iters, self.method = griffin_lim_iters, method
        self.notes = processed_data.require_spectrograms(spectrograms_dir)
        self.min_max = processed_data.load_min_max(minmax_dir)
        self.conditions = conditions_for_model(model_dir, self.notes, audio_dir=audio_dir, minmax_dir=minmax_dir,
                                               progress=False)
        self.model = inference.load_model(model_dir, runtime, log=log)
        self.runtime = "tensorflow" if type(self.model).__name__ == "VAE" else "onnx"
        log(f"encoding {len(self.notes)} notes with {self.runtime}...")
        self.codes = encode_notes(self.model, self.notes, spectrograms_dir, progress=False, conditions=self.conditions)
        self.points = latent_plot.reduce_to_2d(self.codes, method, random_state=42) if len(self.notes) > 1 \
            else np.zeros((len(self.notes), 2), np.float32)
        self._directions = None
        self._lock = threading.Lock()

    # -- helpers

    def note(self, index: int):
        if not 0 <= index < len(self.notes):
            raise RequestError(f"no note {index}: the map has notes 0 to {len(self.notes) - 1}", 404)
        return self.notes[index]

    def condition(self, index: int):
        return None if self.conditions is None else self.conditions[index:index + 1]

    def spectrogram(self, index: int):
        from semantic_timbre.data import processed_data

        note = self.note(index)
        return (processed_data.load_spectrogram(self.spectrograms_dir / note.spectrogram_name),
                processed_data.min_max_of(self.min_max, note))

    def wav(self, normalised, low, high) -> bytes:
        from semantic_timbre import pipeline as generation, safe_io
        from semantic_timbre.data import spectrogram

        audio = generation.invert(normalised, low, high, n_iter=self.griffin_lim_iters, seed=GRIFFIN_LIM_SEED)
        return safe_io.wav_bytes(spectrogram.limit_peak(audio)[0], spectrogram.SAMPLE_RATE)

    def directions(self):
        from semantic_timbre.latent.directions import load_or_compute_directions

        with self._lock:  # measured once, by one request
            if self._directions is None:
                self._directions, _ = load_or_compute_directions(self.model, self.model_dir, self.spectrograms_dir,
                                                                 self.minmax_dir, progress=False)
        return self._directions

    def described(self, normalised, descriptor: str, magnitude: float, own_condition=None) -> np.ndarray:
        """The note moved to the description (descriptor_control.apply_description), checked first."""
        from semantic_timbre.latent import directions as descriptor_control

        descriptor_control.check_request(descriptor, magnitude)
        conditioning = self.model.conditioning
        if conditioning.kind != "none":
            conditioning.target(descriptor, magnitude)  # a descriptor it never saw: a clear message
            return descriptor_control.apply_description(self.model, normalised, descriptor, magnitude,
                                                        own_condition=own_condition)
        present = sorted({note.descriptor for note in self.notes if not note.is_clean})
        if magnitude > 0 and descriptor not in present:
            raise RequestError(f"the processed data has no notes of {descriptor} above magnitude 0; choose one of "
                               f"{', '.join(present) if present else '(none: only clean notes)'}")
        return descriptor_control.apply_description(self.model, normalised, descriptor, magnitude,
                                                    directions=self.directions())

    # -- the answers

    def map(self) -> dict:
        from semantic_timbre.pipeline import pitch_sort_key

        return {
            "method": self.method, "runtime": self.runtime, "conditioning": self.model.conditioning.kind,
            "notes": [{"index": index, "x": float(x), "y": float(y), "descriptor": note.descriptor or "clean",
                       "magnitude": note.magnitude, "pitch": note.pitch, "name": note.spectrogram_name}
                      for index, (note, (x, y)) in enumerate(zip(self.notes, self.points))],
            "descriptors": [d for d in layout.DESCRIPTORS if d in {n.descriptor for n in self.notes if not n.is_clean}],
            "pitches": sorted({note.pitch for note in self.notes if note.is_clean}, key=pitch_sort_key),
        }

    @functools.lru_cache(maxsize=256)
    def original(self, index: int) -> bytes:
        normalised, (low, high) = self.spectrogram(index)
        return self.wav(normalised, low, high)

    @functools.lru_cache(maxsize=256)
    def reconstruction(self, index: int) -> bytes:
        _, (low, high) = self.spectrogram(index)
        decoded = self.model.decode(self.codes[index:index + 1], conditions=self.condition(index))
        return self.wav(decoded[0, ..., 0], low, high)

    @functools.lru_cache(maxsize=256)
    def generate(self, descriptor: str, magnitude: float, pitch: str, pickup: str | None = None) -> bytes:
        """As generate_from_description.py: the clean note at `pitch` (with the pickup variant
        `pickup`, if given) moved to the description."""
        from semantic_timbre.notes import clean_note

        from semantic_timbre.network import conditioning
        from semantic_timbre.latent import directions as descriptor_control
        from semantic_timbre import pipeline as generation

        descriptor = layout.canonical_descriptor(descriptor)
        descriptor_control.check_request(descriptor, magnitude)
        note = clean_note(self.notes, pitch, None, self.spectrograms_dir, pickup)
        (normalised,), ((low, high),) = generation.load_notes([note], self.spectrograms_dir, self.minmax_dir)
        own = None
        if self.model.conditioning.kind != "none":
            self.model.conditioning.target(descriptor, magnitude)
            own = conditioning.note_conditions(self.model.conditioning, [note], audio_dir=self.audio_dir,
                                               minmax_dir=self.minmax_dir)[0]
        return self.wav(self.described(normalised, descriptor, magnitude, own), low, high)

    @functools.lru_cache(maxsize=256)
    def interpolate(self, first: int, second: int, steps: int, step: int) -> bytes:
        """Step `step` of `steps` from note `first`'s code (mu) to note `second`'s, decoded (a
        conditioned model: with the conditions and min/max interpolated alike)."""
        from semantic_timbre.pipeline import check_steps, interpolate

        self.note(first), self.note(second)
        try:
            check_steps(steps)
        except UserError as error:
            raise RequestError(str(error)) from None
        if not 0 <= step < steps:
            raise RequestError(f"step {step} is outside 0..{steps - 1}")
        code = interpolate(self.codes[first], self.codes[second], steps)[step:step + 1]
        condition = None if self.conditions is None else \
            interpolate(self.conditions[first], self.conditions[second], steps)[step:step + 1]
        (_, (low_a, high_a)), (_, (low_b, high_b)) = self.spectrogram(first), self.spectrogram(second)
        low, high = interpolate(np.array([low_a, high_a]), np.array([low_b, high_b]), steps)[step]
        return self.wav(self.model.decode(code, conditions=condition)[0, ..., 0], low, high)

    def apply(self, data: bytes, filename: str, descriptor: str, magnitude: float, stop=None) -> bytes:
        """An uploaded note (bytes) with the descriptor applied; decoded in a temporary folder only.
        `stop` (a threading.Event): once set, the work ends at the next stage (RequestStopped)."""
        from semantic_timbre.notes import read_note

        from semantic_timbre.latent import directions as descriptor_control

        _check_stop(stop)  # waited in the queue while its client went away
        name = check_upload(data, filename)
        descriptor = layout.canonical_descriptor(descriptor)
        descriptor_control.check_request(descriptor, magnitude)
        with tempfile.TemporaryDirectory(prefix="semantic_timbre_upload_") as folder:
            path = Path(folder) / f"note{Path(name).suffix.lower()}"
            path.write_bytes(data)
            try:
                normalised, low, high, native_window = read_note(path, native=True)
                _check_stop(stop)
                own = None
                if self.model.conditioning.kind == "descriptor":
                    own = self.model.conditioning.of_descriptors([""], [0])[0]
                elif self.model.conditioning.kind == "perceptual":
                    from semantic_timbre.data.perceptual import window_features

                    own = self.model.conditioning.of_features(window_features(*native_window, name=path))[0]
            except UserError as error:
                raise RequestError(str(error).replace(str(path), name)) from None
        _check_stop(stop)
        described = self.described(normalised, descriptor, magnitude, own)
        _check_stop(stop)
        return self.wav(described, low, high)


def check_upload(data: bytes, filename: str | None, limit: int = MAX_UPLOAD_BYTES) -> str:
    """The upload's plain file name, or RequestError: no name, a path ('../x.wav'), a suffix that is
    not audio, an empty or oversized file."""
    name = (filename or "").strip()
    if not name:
        raise RequestError("the upload has no file name: choose an audio file")
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith(".") or "\0" in name:
        raise RequestError(f"'{name}' is not a plain file name (no folders, no '..'): rename the file")
    if Path(name).suffix.lower() not in AUDIO_SUFFIXES:
        raise RequestError(f"'{name}' is not an audio file: give one of {', '.join(AUDIO_SUFFIXES)}")
    if not data:
        raise RequestError(f"'{name}' is empty")
    if len(data) > limit:
        raise RequestError(f"'{name}' is larger than the {limit // (1024 * 1024)} MB limit: trim it to the note", 413)
    return name


def _wav_response(data: bytes, name: str):
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
    return Response(data, media_type="audio/wav", headers={"Content-Disposition": f'inline; filename="{safe}"'})


def _split_host(value: str) -> tuple[str, int | None]:
    """('name', port) of a Host header ('127.0.0.1:8000', '[::1]:8000', 'localhost'); port None when absent."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
    else:
        name, _, port = value.rpartition(":") if value.count(":") == 1 else (value, "", None)
        port = port or None
    if port is not None and not port.isdigit():
        raise ValueError(value)
    return name, None if port is None else int(port)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


class _Guard:
    """ASGI middleware: answers only requests addressed to the explorer's own address, and stops
    reading a body at `max_body` bytes (413), while it streams in.

    The Host header must name this address and port (a loopback address or `localhost` when bound
    to one; when bound to every interface, an IP address or this computer's name), so a web page
    of another name (DNS rebinding) gets 403; a browser's Origin, when sent, must be this page's,
    and a browser's Sec-Fetch-Site must not be cross-site, so another page cannot post here.
    """

    def __init__(self, app, host: str, port: int, max_body: int):
        self.app, self.port, self.max_body = app, port, max_body
        self.wildcard = host in ("0.0.0.0", "::", "")
        names = {host.lower().strip("[]")}
        if host in ("localhost",) or (_is_ip(host) and ipaddress.ip_address(host).is_loopback):
            names |= {"localhost", "127.0.0.1", "::1"}
        if self.wildcard:
            names |= {"localhost", socket.gethostname().lower(), socket.getfqdn().lower()}
        self.names = names

    def problem(self, headers: dict) -> str | None:
        host = headers.get("host", "")
        try:
            name, port = _split_host(host)
        except ValueError:
            return f"the request's Host '{host[:60]}' is not an address"
        if (port or 80) != self.port or not (name in self.names or (self.wildcard and _is_ip(name))):
            return (f"the request's Host '{host[:60]}' is not this explorer's address: open the page at "
                    f"http://127.0.0.1:{self.port}/")
        origin = headers.get("origin")
        if origin is not None and origin.lower() != f"http://{host.lower()}":
            return f"requests from another page ({origin[:60]}) are refused: use the explorer's own page"
        if headers.get("sec-fetch-site") in ("cross-site", "same-site"):
            return "requests from another site are refused: use the explorer's own page"
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        problem = self.problem(headers)
        if problem:
            return await _send_json(send, 403, problem)
        limit = f"the request is larger than the {self.max_body // (1024 * 1024)} MB upload limit: trim the note"
        length = headers.get("content-length")
        if length is not None and (not length.strip().isdigit() or int(length) > self.max_body):
            return await _send_json(send, 413, limit)
        state = {"received": 0, "too_large": False, "started": False}

        async def limited_receive():
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_body:
                    state["too_large"] = True
                    raise _BodyTooLarge()
            return message

        async def guarded_send(message):
            if state["too_large"]:
                return  # the app's own answer to a body cut short is replaced by the 413 below
            state["started"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            pass
        if state["too_large"] and not state["started"]:
            await _send_json(send, 413, limit)


class _BodyTooLarge(Exception):
    pass


async def _send_json(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def create_app(model_dir=layout.MODEL_DIR, spectrograms_dir=layout.SPECTROGRAMS_DIR, minmax_dir=layout.MINMAX_DIR,
               audio_dir=layout.AUDIO_DIR, runtime="auto", method="pca", griffin_lim_iters=32,
               max_upload_bytes=MAX_UPLOAD_BYTES, log=print, host: str = "127.0.0.1", port: int = 8000,
               upload_workers: int = UPLOAD_WORKERS, upload_queue: int = UPLOAD_QUEUE,
               upload_time_limit: float = UPLOAD_TIME_LIMIT_SECONDS):
    """The FastAPI app over a loaded Explorer (see the module docstring for its endpoints), answering
    requests addressed to http://`host`:`port`/ only. `app.state.uploads` counts the uploads
    'done', 'failed' and 'stopped' (client gone or time limit) by the workers."""
    explorer = Explorer(model_dir, spectrograms_dir, minmax_dir, audio_dir, runtime, method, griffin_lim_iters, log)
    app = FastAPI(title="Semantic timbre explorer", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.explorer = explorer
    app.state.uploads = {"done": 0, "failed": 0, "stopped": 0}
    app.add_middleware(_Guard, host=host, port=port, max_body=max_upload_bytes + FORM_OVERHEAD_BYTES)
    pool = ThreadPoolExecutor(upload_workers, thread_name_prefix="explorer-upload")
    slots = threading.BoundedSemaphore(upload_workers + upload_queue)

    def finished(future) -> None:
        slots.release()
        error = future.exception()
        outcome = "done" if error is None else "stopped" if isinstance(error, RequestStopped) else "failed"
        app.state.uploads[outcome] += 1

    @app.exception_handler(UserError)
    def user_error(request: Request, error: UserError):
        return JSONResponse({"error": str(error)}, status_code=getattr(error, "status", 400))

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, error: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(part) for part in problem['loc'][1:]) or 'request'}: {problem['msg']}"
                             for problem in error.errors())
        return JSONResponse({"error": f"invalid request ({problems})"}, status_code=400)

    @app.exception_handler(HTTPException)
    def http_error(request: Request, error: HTTPException):
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code)

    @app.get("/", response_class=HTMLResponse)
    def page():
        from semantic_timbre.pipeline import INTERPOLATION_STEPS

        return (page_template().replace("__MAX_UPLOAD__", str(max_upload_bytes))
                .replace("__MIN_STEPS__", str(INTERPOLATION_STEPS[0])).replace("__MAX_STEPS__", str(INTERPOLATION_STEPS[-1])))

    @app.get("/plotly.min.js")
    def plotly_js():
        return Response(_plotly_js(), media_type="application/javascript",
                        headers={"Cache-Control": "max-age=86400"})

    @app.get("/api/map")
    def latent_map():
        return explorer.map()

    @app.get("/api/notes/{index}/original.wav")
    def original(index: int):
        return _wav_response(explorer.original(index), f"original_{explorer.note(index).spectrogram_name[:-8]}.wav")

    @app.get("/api/notes/{index}/reconstruction.wav")
    def reconstruction(index: int):
        return _wav_response(explorer.reconstruction(index),
                             f"reconstruction_{explorer.note(index).spectrogram_name[:-8]}.wav")

    @app.get("/api/generate.wav")
    def generate(descriptor: str, magnitude: float, pitch: str, pickup: str | None = None):
        return _wav_response(explorer.generate(descriptor, magnitude, pitch, pickup),
                             f"{descriptor}{magnitude:g}_{pitch}{'_' + pickup if pickup else ''}.wav")

    @app.get("/api/interpolate.wav")
    def interpolate(first: int, second: int, steps: int = 5, step: int = 0):
        return _wav_response(explorer.interpolate(first, second, steps, step),
                             f"interpolation_{first}_{second}_{step + 1}of{steps}.wav")

    @app.post("/api/apply.wav")
    async def apply(request: Request, file: UploadFile = File(...), descriptor: str = Form(...),
                    magnitude: float = Form(...)):
        data = await file.read(max_upload_bytes + 1)
        check_upload(data, file.filename, max_upload_bytes)
        if not slots.acquire(blocking=False):
            raise RequestError(f"the explorer is busy with {upload_workers + upload_queue} uploads: try again in a "
                               "moment", 503)
        stop = threading.Event()
        try:
            future = pool.submit(explorer.apply, data, file.filename, descriptor, magnitude, stop)
        except BaseException:
            slots.release()
            raise
        future.add_done_callback(finished)
        waiting = asyncio.wrap_future(future)
        # Retrieved even when nobody waits for it any more (the client left, the time ran out).
        waiting.add_done_callback(lambda done: done.cancelled() or done.exception())
        deadline = time.monotonic() + upload_time_limit
        while True:
            done, _ = await asyncio.wait({waiting}, timeout=0.1)
            if done:
                break
            if await request.is_disconnected():
                stop.set()  # nobody waits for it: it stops at its next stage
                return Response(status_code=499)
            if time.monotonic() > deadline:
                stop.set()
                raise RequestError(f"the upload took longer than the {upload_time_limit:g} s limit: give a shorter "
                                   "note, or try again when the explorer is less busy", 503)
        wav = waiting.result()
        return _wav_response(wav, f"{Path(file.filename).stem}_{descriptor}{magnitude:g}.wav")

    return app


@functools.lru_cache(maxsize=1)
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def serve(app, host: str = "127.0.0.1", port: int = 8000, open_browser: bool = True) -> None:
    """Serve `app` with uvicorn until Ctrl-C, opening the page in the default browser."""
    import uvicorn

    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
    if open_browser:
        import webbrowser

        threading.Timer(1.0, webbrowser.open, [url]).start()
    print(f"exploring the timbre space at {url} (Ctrl-C to stop)", file=sys.stderr)
    # At most 64 connections at once (more: 503), idle ones closed after 5 s.
    uvicorn.run(app, host=host, port=port, log_level="warning", limit_concurrency=64, timeout_keep_alive=5)



@functools.lru_cache(maxsize=1)
def page_template() -> str:
    """The page's HTML and JavaScript (semantic_timbre/explorer/page.html, package data), with the
    placeholders __MAX_UPLOAD__, __MIN_STEPS__ and __MAX_STEPS__ that the app fills in."""
    return importlib.resources.files(__package__).joinpath(PAGE_FILE).read_text(encoding="utf-8")


PAGE_FILE = "page.html"
