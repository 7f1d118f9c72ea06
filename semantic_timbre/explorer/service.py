"""What the explorer's app holds loaded and answers with (semantic_timbre/explorer/app.py serves it).

The model stays loaded (ONNX Runtime when its export is fresh) and every note of the processed
data is encoded once at start-up, with its 2-D map (the reduction visualise_latent_space.py
computes). An Explorer answers the map, a note and its reconstruction, a note generated from a
description (descriptor, magnitude, pitch: generate_from_description.py's code path), a step of an
interpolation between two notes, and a descriptor applied to an uploaded note (decoded in a
temporary folder, aligned at its onset as apply_timbre_descriptor.py does), each as WAV bytes.
An upload's note is decoded only as far as it is used (apply_timbre_descriptor.read_note), and its
work stops at the next stage once its `stop` event is set. A request it cannot answer raises
RequestError (its message and HTTP status are what the page shows); check_upload checks an upload.
"""

from __future__ import annotations

import functools
import tempfile
import threading
from pathlib import Path

import numpy as np

from semantic_timbre import layout
from semantic_timbre.errors import UserError

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aif", ".aiff")
GRIFFIN_LIM_SEED = 0  # every answer reproducible: the same request, the same WAV


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
        config, self.conditions = conditions_for_model(model_dir, self.notes, audio_dir=audio_dir,
                                                       minmax_dir=minmax_dir, progress=False)
        self.model = inference.load_model(model_dir, runtime, log=log, config=config)
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
