"""Descriptor directions in latent space: measuring them, caching them beside the model, and
moving a note along them.

A descriptor's direction at a magnitude is the mean latent code (mu) of that descriptor's notes
at that magnitude minus the mean latent code of the clean notes (magnitude 0). Adding it to a
note's code and decoding applies the descriptor to the note.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from semantic_timbre import layout, safe_io
from semantic_timbre.network import model_files
from semantic_timbre.data import processed_data
from semantic_timbre.errors import UserError

DIRECTIONS_FILE_NAME = "descriptor_directions.npz"
FINGERPRINT_FILE_NAME = "descriptor_directions.json"
_CACHE_FORMAT = 1


class DescriptorRequestError(UserError):
    """A descriptor or magnitude that the data set (or the processed data) does not offer."""


# ---------------------------------------------------------------------------------------------
# Directions (plain arrays)


def descriptor_directions(codes: np.ndarray, descriptors, magnitudes) -> dict[str, dict[int, np.ndarray]]:
    """Return {descriptor: {magnitude: direction}} from latent codes and their labels.

    direction = mean code of the descriptor's notes at the magnitude - mean code of all clean
    notes (magnitude 0, whatever their descriptor label).

    Raises
    ------
    DescriptorRequestError
        If there is no clean note, or no note with a magnitude above 0.
    """
    codes = np.asarray(codes, dtype=np.float64)
    descriptors, magnitudes = np.asarray(descriptors), np.asarray(magnitudes)
    clean = magnitudes == 0
    if not clean.any():
        raise DescriptorRequestError(
            "the processed data holds no clean notes (magnitude 0, e.g. Fluttery/0/): descriptor "
            "directions are measured from them; add them to audio/ and re-run the pre-processor")
    if clean.all():
        raise DescriptorRequestError("the processed data holds only clean notes: no descriptor to apply")
    clean_mean = codes[clean].mean(axis=0)
    directions: dict[str, dict[int, np.ndarray]] = {}
    for descriptor in np.unique(descriptors[~clean]):
        mine = (descriptors == descriptor) & ~clean
        directions[str(descriptor)] = {
            int(magnitude): (codes[mine & (magnitudes == magnitude)].mean(axis=0) - clean_mean).astype(np.float32)
            for magnitude in np.unique(magnitudes[mine])
        }
    return directions


def check_request(descriptor: str, magnitude: float) -> None:
    """Refuse a descriptor that is not one of the 19, or a magnitude outside 0..100."""
    if descriptor not in layout.DESCRIPTORS:
        raise DescriptorRequestError(
            f"'{descriptor}' is not a descriptor; choose one of {', '.join(layout.DESCRIPTORS)}")
    if not (np.isfinite(magnitude) and 0 <= magnitude <= 100):
        raise DescriptorRequestError(f"magnitude {magnitude:g} is outside 0..100; choose a number from 0 "
                                     f"(clean) to 100 (strongest)")


def direction_at(directions: dict[str, dict[int, np.ndarray]], descriptor: str, magnitude: float) -> np.ndarray:
    """Return the latent shift that applies `descriptor` at `magnitude` (0..100).

    Magnitudes the data has give their own direction; 0 gives the zero vector (clean, no change).
    A magnitude between two available ones (0 counting as available, with the zero vector) is the
    linear interpolation of their directions, e.g. 60 with data at 50 and 75 is 0.6 x d50 + 0.4 x d75.
    Above the largest available magnitude the direction is clamped to the largest one (never
    extrapolated past what the data shows).

    Raises
    ------
    DescriptorRequestError
        For a descriptor outside the 19, a magnitude outside 0..100, or a descriptor absent from
        the processed data (the message lists those present).
    """
    check_request(descriptor, magnitude)
    if descriptor not in directions:
        raise DescriptorRequestError(
            f"the processed data has no notes of {descriptor} above magnitude 0; choose one of "
            f"{', '.join(sorted(directions))}")
    return interpolate_direction(directions[descriptor], magnitude)


def interpolate_direction(available: dict[int, np.ndarray], magnitude: float) -> np.ndarray:
    """Interpolate one descriptor's {magnitude: direction} at `magnitude` as `direction_at` does."""
    dimension = len(next(iter(available.values())))
    points = {0: np.zeros(dimension, dtype=np.float32), **available}
    known = np.array(sorted(points))
    if magnitude >= known[-1]:
        return np.asarray(points[int(known[-1])], dtype=np.float32)
    position = int(np.searchsorted(known, magnitude, side="right"))
    lower, upper = int(known[position - 1]), int(known[position])
    weight = (magnitude - lower) / (upper - lower)
    return ((1 - weight) * points[lower] + weight * points[upper]).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Cache beside the model


def data_fingerprint(model_dir, spectrograms_dir, minmax_dir) -> dict:
    """What the cached directions depend on: the model's files and the processed data's names and stamps.

    Model files are hashed (sha1) as well as stamped; spectrograms by sorted name, size and mtime.
    """
    return {
        "format": _CACHE_FORMAT,
        "latent_code": "mu",
        "model": model_files.model_stamp(model_dir),
        "spectrograms": processed_data.spectrograms_stamp(spectrograms_dir),
        "min_max": safe_io.file_stamp(Path(minmax_dir) / layout.MINMAX_FILE_NAME),
    }


def save_directions(model_dir, directions: dict[str, dict[int, np.ndarray]], fingerprint: dict) -> None:
    """Write the directions (npz, fingerprint embedded) and a readable JSON fingerprint, atomically."""
    arrays = {f"{descriptor}/{magnitude}": vector
              for descriptor, by_magnitude in directions.items() for magnitude, vector in by_magnitude.items()}
    safe_io.save_npz_cache(Path(model_dir) / DIRECTIONS_FILE_NAME, arrays, fingerprint)
    safe_io.write_bytes_atomic(Path(model_dir) / FINGERPRINT_FILE_NAME,
                               (json.dumps(fingerprint, indent=2, sort_keys=True) + "\n").encode())


def load_directions(model_dir, fingerprint: dict, latent_size: int | None = None
                    ) -> dict[str, dict[int, np.ndarray]] | None:
    """Return the cached directions if they exist, were measured on the same model and data, and
    are what they should be: '<descriptor>/<magnitude>' keys, finite vectors of `latent_size`
    values (any one size when None). A damaged cache is named in a notice and measured again."""
    directions: dict[str, dict[int, np.ndarray]] = {}

    def check(arrays):
        if not arrays:
            raise ValueError("no directions")
        for key in arrays:
            descriptor, magnitude = key.rsplit("/", 1)
            vector = safe_io.expect(arrays, key, (latent_size,))
            if not descriptor or not 0 < int(magnitude) <= 100:
                raise ValueError(f"'{key}' is not <descriptor>/<magnitude 1-100>")
            directions.setdefault(descriptor, {})[int(magnitude)] = vector.astype(np.float32)
        sizes = {vector.shape for by_magnitude in directions.values() for vector in by_magnitude.values()}
        if len(sizes) != 1:
            raise ValueError(f"directions of different sizes {sorted(sizes)}")

    cache = safe_io.load_npz_cache(Path(model_dir) / DIRECTIONS_FILE_NAME, fingerprint, check=check)
    return directions if cache is not None else None  # none, damaged or of another model or data: measured again


def load_or_compute_directions(vae, model_dir=layout.MODEL_DIR, spectrograms_dir=layout.SPECTROGRAMS_DIR,
                               minmax_dir=layout.MINMAX_DIR, batch_size: int = 64,
                               progress: bool = True) -> tuple[dict[str, dict[int, np.ndarray]], bool]:
    """Return (directions, computed): from the cache beside the model when it matches the model
    and the processed data, otherwise measured by encoding every spectrogram (mu) and cached.

    Raises
    ------
    ProcessedDataError
        If spectrograms/ is missing or empty.
    DescriptorRequestError
        If the processed data holds no clean notes.
    """
    from semantic_timbre.data import processed_data
    from semantic_timbre.latent import encode_notes

    notes = processed_data.require_spectrograms(spectrograms_dir)
    fingerprint = data_fingerprint(model_dir, spectrograms_dir, minmax_dir)
    cached = load_directions(model_dir, fingerprint, getattr(vae, "latent_space_dimension", None))
    if cached is not None:
        return cached, False
    codes = encode_notes(vae, notes, spectrograms_dir=str(spectrograms_dir), batch_size=batch_size,
                         use_mean=True, progress=progress)
    directions = descriptor_directions(codes, [n.descriptor for n in notes], [n.magnitude for n in notes])
    try:
        save_directions(model_dir, directions, fingerprint)
    except OSError as error:  # a read-only model folder: the directions are used all the same
        print(f"notice: the descriptor directions could not be cached in {Path(model_dir) / DIRECTIONS_FILE_NAME} "
              f"({error.strerror or error}); they are measured again on every run: make {model_dir} writable to "
              "keep them", file=sys.stderr)
    return directions, True


# ---------------------------------------------------------------------------------------------
# Applying a direction with the model


def apply_direction(vae, normalised: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Encode a normalised spectrogram (mu), add `direction`, decode: returns (512, 64) in [0, 1]."""
    mu, _, _ = vae.encode(np.asarray(normalised, dtype=np.float32)[None])
    decoded = vae.decode(mu + np.asarray(direction, dtype=np.float32)[None])
    return np.asarray(decoded)[0, ..., 0]


def apply_description(vae, normalised: np.ndarray, descriptor: str, magnitude: float, *, own_condition=None,
                      directions=None) -> np.ndarray:
    """A note moved to `descriptor` at `magnitude`: returns its decoded spectrogram (512, 64) in [0, 1].

    An unconditioned model moves the note's code (mu) along the descriptor's latent direction
    (`directions`, from load_or_compute_directions). A conditioned model encodes the note with its
    own condition (`own_condition`, (size,)) and decodes that code with the description's
    condition (`Conditioning.target`).
    """
    conditioning = vae.conditioning
    if conditioning.kind == "none":
        return apply_direction(vae, normalised, direction_at(directions, descriptor, magnitude))
    check_request(descriptor, magnitude)
    mu, _, _ = vae.encode(np.asarray(normalised, dtype=np.float32)[None],
                          conditions=np.asarray(own_condition, dtype=np.float32)[None])
    target = conditioning.target(descriptor, magnitude)[None]
    return np.asarray(vae.decode(mu, conditions=target))[0, ..., 0]
