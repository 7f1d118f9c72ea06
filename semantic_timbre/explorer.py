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
A bad request answers a JSON {"error": "..."} (status 400, 404 or 413) that the page shows.
"""

from __future__ import annotations

import functools
import re
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from . import layout
from .cli import UserError

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aif", ".aiff")
GRIFFIN_LIM_SEED = 0  # every answer reproducible: the same request, the same WAV


class RequestError(UserError):
    """A request the page cannot answer; its message is shown on the page."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


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
        from . import inference, latent_plot, processed_data
        from .conditioning import conditions_for_model
        from .latent import encode_notes

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
        from . import processed_data

        note = self.note(index)
        return (processed_data.load_spectrogram(self.spectrograms_dir / note.spectrogram_name),
                processed_data.min_max_of(self.min_max, note))

    def wav(self, normalised, low, high) -> bytes:
        from . import generation, safe_io, spectrogram

        audio = generation.invert(normalised, low, high, n_iter=self.griffin_lim_iters, seed=GRIFFIN_LIM_SEED)
        return safe_io.wav_bytes(spectrogram.limit_peak(audio)[0], spectrogram.SAMPLE_RATE)

    def directions(self):
        from .descriptor_control import load_or_compute_directions

        with self._lock:  # measured once, by one request
            if self._directions is None:
                self._directions, _ = load_or_compute_directions(self.model, self.model_dir, self.spectrograms_dir,
                                                                 self.minmax_dir, progress=False)
        return self._directions

    def described(self, normalised, descriptor: str, magnitude: float, own_condition=None) -> np.ndarray:
        """The note moved to the description (descriptor_control.apply_description), checked first."""
        from . import descriptor_control

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
        from .generation import pitch_sort_key

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
    def generate(self, descriptor: str, magnitude: float, pitch: str) -> bytes:
        """As generate_from_description.py: the clean note at `pitch` moved to the description."""
        from generate_from_description import clean_note

        from . import conditioning, descriptor_control, generation

        descriptor = layout.canonical_descriptor(descriptor)
        descriptor_control.check_request(descriptor, magnitude)
        note = clean_note(self.notes, pitch, None, self.spectrograms_dir)
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
        from .generation import check_steps, interpolate

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

    def apply(self, data: bytes, filename: str, descriptor: str, magnitude: float) -> bytes:
        """An uploaded note (bytes) with the descriptor applied; decoded in a temporary folder only."""
        from apply_timbre_descriptor import read_note

        from . import descriptor_control

        name = check_upload(data, filename)
        descriptor = layout.canonical_descriptor(descriptor)
        descriptor_control.check_request(descriptor, magnitude)
        with tempfile.TemporaryDirectory(prefix="semantic_timbre_upload_") as folder:
            path = Path(folder) / f"note{Path(name).suffix.lower()}"
            path.write_bytes(data)
            try:
                normalised, low, high, native_window = read_note(path, native=True)
                own = None
                if self.model.conditioning.kind == "descriptor":
                    own = self.model.conditioning.of_descriptors([""], [0])[0]
                elif self.model.conditioning.kind == "perceptual":
                    from .perceptual import window_features

                    own = self.model.conditioning.of_features(window_features(*native_window, name=path))[0]
            except UserError as error:
                raise RequestError(str(error).replace(str(path), name)) from None
        return self.wav(self.described(normalised, descriptor, magnitude, own), low, high)


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


def create_app(model_dir=layout.MODEL_DIR, spectrograms_dir=layout.SPECTROGRAMS_DIR, minmax_dir=layout.MINMAX_DIR,
               audio_dir=layout.AUDIO_DIR, runtime="auto", method="pca", griffin_lim_iters=32,
               max_upload_bytes=MAX_UPLOAD_BYTES, log=print):
    """The FastAPI app over a loaded Explorer (see the module docstring for its endpoints)."""
    explorer = Explorer(model_dir, spectrograms_dir, minmax_dir, audio_dir, runtime, method, griffin_lim_iters, log)
    app = FastAPI(title="Semantic timbre explorer", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.explorer = explorer

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
        return PAGE.replace("__MAX_UPLOAD__", str(max_upload_bytes))

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
    def generate(descriptor: str, magnitude: float, pitch: str):
        return _wav_response(explorer.generate(descriptor, magnitude, pitch), f"{descriptor}{magnitude:g}_{pitch}.wav")

    @app.get("/api/interpolate.wav")
    def interpolate(first: int, second: int, steps: int = 5, step: int = 0):
        return _wav_response(explorer.interpolate(first, second, steps, step),
                             f"interpolation_{first}_{second}_{step + 1}of{steps}.wav")

    @app.post("/api/apply.wav")
    async def apply(file: UploadFile = File(...), descriptor: str = Form(...), magnitude: float = Form(...)):
        data = await file.read(max_upload_bytes + 1)
        check_upload(data, file.filename, max_upload_bytes)
        wav = await run_in_threadpool(explorer.apply, data, file.filename, descriptor, magnitude)
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
    uvicorn.run(app, host=host, port=port, log_level="warning")


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Timbre space explorer</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<script src="/plotly.min.js"></script>
<style>
body { font-family: system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
header { padding: 8px 16px; background: #2d3e50; color: #fff; }
header h1 { font-size: 18px; margin: 0; display: inline; } header span { margin-left: 12px; font-size: 13px; }
main { display: flex; flex-wrap: wrap; gap: 12px; padding: 12px; }
#left { flex: 1 1 560px; min-width: 0; }
#map { width: 100%; height: 600px; background: #fff; border: 1px solid #ddd; }
aside { flex: 0 1 380px; display: flex; flex-direction: column; gap: 10px; }
section { background: #fff; border: 1px solid #ddd; padding: 8px 10px; }
h2 { font-size: 14px; margin: 0 0 6px; } label { font-size: 13px; margin-right: 6px; }
audio { width: 100%; height: 32px; } .row { margin: 4px 0; } a.dl { font-size: 12px; }
#message { color: #a00; font-size: 13px; min-height: 1em; } .muted { color: #666; font-size: 12px; }
</style></head><body>
<header><h1>Timbre space explorer</h1><span id="info"></span></header>
<main>
<div id="left">
  <div class="row"><label>colour by <select id="colour"><option value="descriptor">descriptor</option>
  <option value="magnitude">magnitude</option><option value="pitch">pitch</option></select></label>
  <span class="muted">click a point to hear it</span></div>
  <div id="map"></div>
</div>
<aside>
  <div id="message" role="alert"></div>
  <section><h2>Selected note <span id="selected" class="muted">(none)</span></h2>
    <div class="row">original <a class="dl" id="original-dl" download>download</a><audio id="original" controls preload="auto"></audio></div>
    <div class="row">reconstruction <a class="dl" id="reconstruction-dl" download>download</a>
      <audio id="reconstruction" controls preload="auto"></audio></div>
    <button id="set-a">use as A</button> <button id="set-b">use as B</button></section>
  <section><h2>Generate from a description</h2>
    <div class="row"><select id="descriptor"></select> <label>magnitude <input id="magnitude" type="number"
      min="0" max="100" value="100" style="width:4em"></label> <select id="pitch"></select>
      <button id="generate">generate</button></div>
    <a class="dl" id="generated-dl" download>download</a><audio id="generated" controls preload="auto"></audio></section>
  <section><h2>Interpolate A &rarr; B</h2>
    <div class="row muted">A: <span id="a">(none)</span>, B: <span id="b">(none)</span></div>
    <div class="row"><label>steps <input id="steps" type="number" min="2" max="50" value="5" style="width:3.5em"></label>
      <input id="step" type="range" min="0" max="4" value="0"> <span id="step-label"></span></div>
    <a class="dl" id="interpolated-dl" download>download</a><audio id="interpolated" controls preload="auto"></audio></section>
  <section><h2>Apply a descriptor to your own note</h2>
    <div class="row"><input id="upload" type="file" accept="audio/*,.wav,.flac,.ogg,.aif,.aiff"></div>
    <div class="row"><select id="apply-descriptor"></select> <label>magnitude <input id="apply-magnitude"
      type="number" min="0" max="100" value="75" style="width:4em"></label> <button id="apply">apply</button></div>
    <a class="dl" id="applied-dl" download>download</a><audio id="applied" controls preload="auto"></audio></section>
</aside>
</main>
<script>
const MAX_UPLOAD = __MAX_UPLOAD__;
let data = null, selected = null, a = null, b = null;
const $ = (id) => document.getElementById(id);
function say(text) { $("message").textContent = text || ""; }
async function play(id, url, options, name) {
  say("");
  const response = await fetch(url, options);
  if (!response.ok) {
    let text = response.status + " " + response.statusText;
    try { text = (await response.json()).error || text; } catch (e) {}
    say(text); return false;
  }
  const blob = await response.blob();
  const audio = $(id);
  if (audio.src.startsWith("blob:")) URL.revokeObjectURL(audio.src);
  audio.src = URL.createObjectURL(blob);
  audio.dataset.url = typeof url === "string" ? url : "";
  const link = $(id + "-dl");
  link.href = audio.src; link.download = name || (id + ".wav");
  return true;
}
function label(note) { return note.descriptor + " " + note.magnitude + " " + note.pitch; }
function draw() {
  const key = $("colour").value, groups = new Map();
  for (const note of data.notes) {
    const group = String(note[key]);
    if (!groups.has(group)) groups.set(group, []);
    groups.get(group).push(note);
  }
  const order = [...groups.keys()];
  if (key === "magnitude") order.sort((x, y) => x - y);
  if (key === "pitch") order.sort((x, y) => data.pitches.indexOf(x) - data.pitches.indexOf(y));
  const traces = order.map((group) => ({
    type: "scatter", mode: "markers", name: group, x: groups.get(group).map((n) => n.x),
    y: groups.get(group).map((n) => n.y), customdata: groups.get(group).map((n) => n.index),
    text: groups.get(group).map(label), hovertemplate: "%{text}<extra></extra>", marker: { size: 7 } }));
  Plotly.react("map", traces, { margin: { l: 40, r: 10, t: 30, b: 40 }, hovermode: "closest",
    title: { text: "latent space (" + data.method + ")", font: { size: 14 } }, legend: { font: { size: 11 } },
    font: { family: "system-ui, sans-serif" } }, { displaylogo: false, responsive: true });
  $("map").on("plotly_click", (event) => select(event.points[0].customdata));
}
async function select(index) {
  selected = data.notes[index];
  $("selected").textContent = label(selected);
  const stem = selected.name.replace(/\\.wav\\.npy$/, "");
  await play("original", "/api/notes/" + index + "/original.wav", undefined, "original_" + stem + ".wav");
  await play("reconstruction", "/api/notes/" + index + "/reconstruction.wav", undefined,
             "reconstruction_" + stem + ".wav");
}
function interpolation() {
  const steps = Number($("steps").value);
  $("step").max = Math.max(steps - 1, 0);
  if (Number($("step").value) > steps - 1) $("step").value = steps - 1;
  const step = Number($("step").value);
  $("step-label").textContent = "step " + (step + 1) + " of " + steps;
  if (a === null || b === null) return;
  play("interpolated", "/api/interpolate.wav?first=" + a + "&second=" + b + "&steps=" + steps + "&step=" + step,
       undefined, "interpolation_" + a + "_" + b + "_" + (step + 1) + "of" + steps + ".wav");
}
async function start() {
  const response = await fetch("/api/map");
  data = await response.json();
  $("info").textContent = data.notes.length + " notes; " + (data.conditioning === "none" ? "unconditioned" :
    data.conditioning + "-conditioned") + " model on " + (data.runtime === "onnx" ? "ONNX Runtime" : "TensorFlow");
  for (const id of ["descriptor", "apply-descriptor"])
    $(id).innerHTML = data.descriptors.map((d) => "<option>" + d + "</option>").join("");
  $("pitch").innerHTML = data.pitches.map((p) => "<option>" + p + "</option>").join("");
  draw();
  $("colour").onchange = draw;
  $("set-a").onclick = () => { if (selected) { a = selected.index; $("a").textContent = label(selected); interpolation(); } };
  $("set-b").onclick = () => { if (selected) { b = selected.index; $("b").textContent = label(selected); interpolation(); } };
  $("steps").onchange = interpolation; $("step").oninput = interpolation;
  $("generate").onclick = () => {
    const d = $("descriptor").value, m = $("magnitude").value, p = $("pitch").value;
    play("generated", "/api/generate.wav?descriptor=" + encodeURIComponent(d) + "&magnitude=" +
         encodeURIComponent(m) + "&pitch=" + encodeURIComponent(p), undefined, d + m + "_" + p + ".wav");
  };
  $("apply").onclick = () => {
    const file = $("upload").files[0];
    if (!file) { say("choose an audio file first"); return; }
    if (file.size > MAX_UPLOAD) { say("'" + file.name + "' is larger than the upload limit"); return; }
    const form = new FormData();
    form.append("file", file); form.append("descriptor", $("apply-descriptor").value);
    form.append("magnitude", $("apply-magnitude").value);
    play("applied", "/api/apply.wav", { method: "POST", body: form }, "applied.wav");
  };
  interpolation();
  document.body.dataset.ready = "1";
}
start().catch((error) => say(String(error)));
</script></body></html>
"""
