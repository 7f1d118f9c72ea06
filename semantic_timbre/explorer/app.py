"""A local web page to explore the timbre space by ear (explore_timbre_space.py), on FastAPI.

The app serves a loaded Explorer (semantic_timbre/explorer/service.py). The page
(semantic_timbre/explorer/page.html, package data), served with its own copy of plotly.js (no CDN,
no external fonts), shows the latent map coloured by descriptor, magnitude or pitch; a click plays
the note and its reconstruction. It generates a note from a description, interpolates between two
notes with a slider over the steps, and applies a descriptor to an uploaded note. Every result is
a WAV that can be downloaded.

Endpoints: GET / (the page), /plotly.min.js, /api/map, /api/notes/{index}/original.wav,
/api/notes/{index}/reconstruction.wav, /api/generate.wav, /api/interpolate.wav; POST /api/apply.wav.
A bad request answers a JSON {"error": "..."} (status 400, 403, 404, 413 or 503) that the page shows.

What a request can cost is bounded: only requests whose Host is the explorer's own address (and
whose Origin, when a browser sends one, is the page's) are answered, so no other web page can post
to it; the upload's size limit is enforced while the body streams in; uploads run in a small pool
of worker threads (more waiting than it holds: 503, try again), each with a time limit, and stop
at the next stage when their client disconnects or the limit passes.
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
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException

from semantic_timbre import layout
from semantic_timbre.errors import UserError
from semantic_timbre.explorer.service import MAX_UPLOAD_BYTES, Explorer, RequestError, RequestStopped, check_upload

UPLOAD_WORKERS = 2  # uploads decoded and transformed at once
UPLOAD_QUEUE = 4  # uploads waiting for a worker beyond those; more are answered 503
UPLOAD_TIME_LIMIT_SECONDS = 60.0
FORM_OVERHEAD_BYTES = 64 * 1024  # the multipart headers and the form's other fields


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
