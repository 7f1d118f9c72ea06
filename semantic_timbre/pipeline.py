"""Generating notes with a trained VAE: finding the notes asked for, encoding, interpolating,
inverting and writing numbered WAV files; the `Pipeline`, one object from a note to audio over a
project's folders, strings these steps together.

Only the one or two spectrograms a command needs are read: a note is found by its file name, and
the spectrograms folder is listed (names only) just to explain what is there when a request
cannot be met. Nothing here imports TensorFlow; the functions take the model, the Pipeline loads it
(runtime.inference) on first use, from the model folder's configuration read once.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semantic_timbre import layout
from semantic_timbre.errors import UserError
from semantic_timbre.data.processed_data import RUN_PREPROCESSOR, ProcessedDataError

INTERPOLATION_STEPS = range(3, 11)
MAX_GRIFFIN_LIM_ITERS = 1000
#: Pitches of the thesis's selection: string 1, frets 0-22 (E4 .. D6).
THESIS_PITCHES = tuple(layout.pitch_of(1, fret) for fret in layout.FRETS)


class NoteRequestError(UserError):
    """A descriptor, magnitude, pitch or string that is not allowed or not in the processed data."""


@dataclass(frozen=True)
class AvailableValues:
    """What a request may name: the thesis's lists plus whatever the processed data holds."""

    descriptors: tuple[str, ...]
    magnitudes: tuple[int, ...]
    pitches: tuple[str, ...]
    strings: tuple[int, ...]

    def describe(self) -> str:
        return (f"DESCRIPTOR one of {', '.join(self.descriptors)}; "
                f"MAGNITUDE one of {', '.join(map(str, self.magnitudes))} (0 = clean); "
                f"PITCH one of {', '.join(self.pitches)}")


def scan_notes(spectrograms_dir: str | Path) -> list[layout.Note]:
    """Return the Notes of every well-named spectrogram in the folder, from the names alone.

    Raises ProcessedDataError (naming the pre-processor) if the folder is missing or empty.
    """
    folder = Path(spectrograms_dir)
    if not folder.is_dir():
        raise ProcessedDataError(f"{folder}/ does not exist: {RUN_PREPROCESSOR}")
    notes = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.endswith(".npy"):
                try:
                    notes.append(layout.parse_spectrogram_name(entry.name))
                except layout.LayoutError:
                    continue
    if not notes:
        raise ProcessedDataError(f"{folder}/ holds no spectrograms (*.npy): {RUN_PREPROCESSOR}")
    return sorted(notes)


def pitch_sort_key(pitch: str) -> int:
    """Sort key putting note names in pitch order (E4 < F4 < ... < C6), not alphabetical order."""
    return layout.note_name_to_midi(pitch)


def available_values(notes=()) -> AvailableValues:
    """The thesis's lists (19 descriptors, 0 + 25/50/75/100, string-1 pitches E4..D6) plus every
    descriptor, magnitude, pitch and string present in `notes`."""
    descriptors = list(layout.DESCRIPTORS) + sorted({n.descriptor for n in notes} - set(layout.DESCRIPTORS))
    magnitudes = sorted({0, *layout.THESIS_MAGNITUDES} | {n.magnitude for n in notes})
    pitches = sorted(set(THESIS_PITCHES) | {n.pitch for n in notes}, key=pitch_sort_key)
    strings = sorted(set(layout.THESIS_STRINGS) | {n.string for n in notes})
    return AvailableValues(tuple(descriptors), tuple(magnitudes), tuple(pitches), tuple(strings))


def parse_magnitude(text: str) -> int:
    if not re.fullmatch(r"\d+", str(text).strip()) or not 0 <= int(text) <= 100:
        raise NoteRequestError(f"magnitude '{text}' is not a whole number from 0 to 100")
    return int(text)


def _note_label(note: layout.Note) -> str:
    return f"{note.descriptor} {note.magnitude} {note.pitch} (string {note.string})"


def _existing_file(folder: Path, descriptor: str, magnitude: int, string: int, fret: int) -> layout.Note | None:
    """The note whose spectrogram exists under any audio extension, checked by name (no listing)."""
    for extension in layout.AUDIO_EXTENSIONS:
        for ext in dict.fromkeys((extension, extension.upper())):
            file_name = f"{string}-{fret}{ext}"
            if (folder / layout.spectrogram_file_name(descriptor, magnitude, file_name)).is_file():
                return layout.Note(descriptor, magnitude, string, fret, file_name)
    return None


def _nearest_suggestions(notes, descriptor, magnitude, midi, limit=4) -> list[str]:
    same_pitch = [n for n in notes if n.descriptor == descriptor and n.midi == midi]
    same_magnitude = [n for n in notes if n.descriptor == descriptor and n.magnitude == magnitude]
    suggestions = sorted(same_pitch, key=lambda n: (abs(n.magnitude - magnitude), n.magnitude))[:2]
    suggestions += sorted(same_magnitude, key=lambda n: (abs(n.midi - midi), n.midi))[:2]
    if not suggestions:
        same_descriptor = [n for n in notes if n.descriptor == descriptor]
        suggestions = sorted(same_descriptor, key=lambda n: (abs(n.magnitude - magnitude) + abs(n.midi - midi)))[:limit]
    seen = []
    for note in suggestions:
        label = f"{note.descriptor} {note.magnitude} {note.pitch}" + (f" (string {note.string})" if note.string != 1 else "")
        if label not in seen:
            seen.append(label)
    return seen[:limit]


PICKUP_HELP = ("the pickup variant of a note of the full release, as the pre-processor's layout summary reports "
               "it: the folder below the magnitude (bridge for Crunch/100/bridge/1-0.wav) or what the file name "
               "carries after <STRING>-<FRET> (bridge for 1-0_bridge.wav); default: the thesis's plain "
               "<STRING>-<FRET>.wav, or the only variant the data has")


def pickups_of(notes) -> list[str]:
    """The --pickup names among `notes` ('' for the plain thesis name), sorted."""
    return sorted({note.pickup for note in notes})


def _describe_pickups(pickups) -> str:
    return ", ".join(name or "(plain: no --pickup)" for name in pickups)


def find_note_with_pickup(descriptor: str, magnitude, pitch: str, string: int | None, spectrograms_dir,
                          pickup: str | None) -> layout.Note:
    """find_note, with the pickup variant `pickup` (--pickup) or, when None, the plain thesis name
    and else the only variant the data has of that note. NoteRequestError lists the variants the
    data has of the note asked for."""
    if pickup is None:
        try:
            return find_note(descriptor, magnitude, pitch, string, spectrograms_dir)
        except NoteRequestError as error:
            if not str(error).startswith("no spectrogram for"):
                raise
            candidates = _variants_of(descriptor, magnitude, pitch, string, spectrograms_dir)
            if not candidates:
                raise
            pickups = pickups_of(candidates)
            if len(pickups) == 1 and len({note.string for note in candidates}) == 1:
                return candidates[0]
            raise NoteRequestError(f"{layout.canonical_descriptor(descriptor)} {magnitude} "
                                   f"{layout.canonical_pitch(pitch)} is in the data only as pickup variants "
                                   f"{_describe_pickups(pickups)}: choose one with --pickup NAME") from None
    find_note(descriptor, magnitude, pitch, string, spectrograms_dir, check_only=True)  # the values allowed
    candidates = _variants_of(descriptor, magnitude, pitch, string, spectrograms_dir, include_plain=True)
    chosen = [note for note in candidates if note.answers_to_pickup(pickup)]
    if not chosen:
        have = (f"it has {_describe_pickups(pickups_of(candidates))}" if candidates
                else "it has no variant of that note")
        raise NoteRequestError(f"no {layout.canonical_descriptor(descriptor)} {magnitude} "
                               f"{layout.canonical_pitch(pitch)} with --pickup {pickup} in {spectrograms_dir}/: {have}")
    strings = sorted({note.string for note in chosen})
    if len(strings) > 1:
        if 1 not in strings:
            raise NoteRequestError(f"{layout.canonical_pitch(pitch)} with --pickup {pickup} is in the data on "
                                   f"strings {', '.join(map(str, strings))}: choose one with --string")
        chosen = [note for note in chosen if note.string == 1]
    if len(chosen) > 1:
        raise NoteRequestError(f"--pickup {pickup} names {len(chosen)} notes "
                               f"({', '.join(note.spectrogram_name for note in chosen[:4])}): give the whole variant, "
                               f"one of {_describe_pickups(sorted({note.variant for note in chosen}))}")
    return chosen[0]


def _variants_of(descriptor, magnitude, pitch, string, spectrograms_dir, include_plain: bool = False):
    """Every note of the data (listed) of this descriptor, magnitude and pitch (and string)."""
    descriptor, pitch = layout.canonical_descriptor(descriptor), layout.canonical_pitch(pitch)
    magnitude = parse_magnitude(magnitude)
    midi = layout.note_name_to_midi(pitch)
    descriptors = {descriptor} | ({layout.CLEAN_DESCRIPTOR} if magnitude == 0 else set())
    found = [note for note in scan_notes(spectrograms_dir)
             if note.descriptor in descriptors and note.magnitude == magnitude and note.midi == midi
             and (string is None or note.string == string) and (include_plain or note.pickup)]
    if magnitude == 0 and any(note.descriptor == descriptor for note in found):
        found = [note for note in found if note.descriptor == descriptor]  # its own clean notes first
    return sorted(found, key=lambda note: (note.string, note.variant))


def find_note(descriptor: str, magnitude, pitch: str, string: int | None = None,
              spectrograms_dir: str | Path = layout.SPECTROGRAMS_DIR, check_only: bool = False) -> layout.Note:
    """Return the Note of the spectrogram asked for, checking its file by name.

    Descriptors and pitches are matched whatever their case ('crunch', 'f#5').
    Magnitude 0 means the clean note whatever the descriptor: `<DESCRIPTOR>X0X...` when the data
    has it (as the full release does), otherwise the thesis's clean notes under Fluttery/0.
    With no `string`, string 1 is used if it has the note, else the only string that has it.

    Raises
    ------
    ProcessedDataError
        If the spectrograms folder is missing or empty.
    NoteRequestError
        For a value that is not allowed, or a note the processed data lacks; the message lists
        the allowed values, or the nearest notes present and how to pre-process the missing one.
    """
    folder = Path(spectrograms_dir)
    if not folder.is_dir():
        raise ProcessedDataError(f"{folder}/ does not exist: {RUN_PREPROCESSOR}")
    descriptor, pitch = layout.canonical_descriptor(descriptor), layout.canonical_pitch(pitch)
    try:
        magnitude = parse_magnitude(magnitude)
        midi = layout.note_name_to_midi(pitch)
    except (NoteRequestError, layout.LayoutError) as error:
        raise NoteRequestError(f"{error}: {available_values(scan_notes(folder)).describe()}") from None
    playable = layout.frets_for_pitch(pitch)
    notes = None
    if descriptor not in layout.DESCRIPTORS:
        # A descriptor outside the 19 may still be in the data: list the names only then.
        notes = scan_notes(folder)
        allowed = available_values(notes)
        if descriptor not in allowed.descriptors:
            raise NoteRequestError(f"unknown descriptor '{descriptor}': {allowed.describe()}")
    if not playable:
        raise NoteRequestError(f"pitch {pitch} is outside the guitar's range (E2 to D6): "
                               f"{available_values(notes if notes is not None else scan_notes(folder)).describe()}")
    if string is not None and string not in playable:
        raise NoteRequestError(f"{pitch} cannot be played on string {string}: --string is one of "
                               f"{', '.join(map(str, sorted(playable)))}")
    if check_only:
        return None

    descriptors = [descriptor]
    if magnitude == 0 and descriptor != layout.CLEAN_DESCRIPTOR:
        descriptors.append(layout.CLEAN_DESCRIPTOR)
    if string is not None:
        strings = [string]
    else:
        if 1 in playable:  # the thesis's string: the common case costs a few stat calls
            for name in descriptors:
                found = _existing_file(folder, name, magnitude, 1, playable[1])
                if found:
                    return found
        strings = sorted(set(playable) - {1})
    found_on = []
    for candidate in strings:
        for name in descriptors:
            found = _existing_file(folder, name, magnitude, candidate, playable[candidate])
            if found:
                found_on.append(found)
                break
    if string is not None and found_on:
        return found_on[0]
    if len(found_on) == 1:
        return found_on[0]
    if len(found_on) > 1:
        raise NoteRequestError(f"{pitch} is in the data on strings {', '.join(str(n.string) for n in found_on)}: "
                               f"choose one with --string")

    notes = notes if notes is not None else scan_notes(folder)
    wanted_string = string if string is not None else (1 if 1 in playable else min(playable))
    missing = layout.spectrogram_file_name(descriptor, magnitude, f"{wanted_string}-{playable[wanted_string]}.wav")
    nearest = _nearest_suggestions(notes, descriptor if magnitude else descriptors[-1], magnitude, midi)
    present = sorted({n.descriptor for n in notes})
    hint = (f"nearest present: {', '.join(nearest)}; " if nearest
            else f"the data has no {descriptor} notes (it has {', '.join(present)}); ")
    raise NoteRequestError(
        f"no spectrogram for {descriptor} {magnitude} {pitch} ({folder}/{missing}) in the processed data: "
        f"{hint}to add it, put its audio at {layout.AUDIO_DIR}/<GROUP>/{descriptor}/{magnitude}/"
        f"{wanted_string}-{playable[wanted_string]}.wav and run 'python process_audio_into_spectrograms.py'")


def check_griffin_lim_iters(iterations: int) -> int:
    """Refuse an iteration count outside 1..MAX_GRIFFIN_LIM_ITERS (a typo could run for hours)."""
    if not 1 <= iterations <= MAX_GRIFFIN_LIM_ITERS:
        raise UserError(f"--griffin-lim-iters must be from 1 to {MAX_GRIFFIN_LIM_ITERS}, got {iterations} "
                        f"(32 is the thesis's; a few hundred converge as far as Griffin-Lim goes)")
    return iterations


def check_steps(steps) -> int:
    try:
        value = int(str(steps).strip())
    except ValueError:
        value = None
    if value not in INTERPOLATION_STEPS:
        raise NoteRequestError(f"STEPS must be a whole number from {INTERPOLATION_STEPS[0]} to "
                               f"{INTERPOLATION_STEPS[-1]}, got '{steps}'")
    return value


# ---------------------------------------------------------------------------------------------
# Latent codes and inversion


def encode_spectrograms(vae, spectrograms: np.ndarray, use_mean: bool = False, seed=None,
                        conditions=None) -> np.ndarray:
    """Encode spectrograms (N, 512, 64) (with their conditions, for a conditioned model): a sampled
    z as the thesis did, or mu with `use_mean`."""
    mu, _, z = vae.encode(np.asarray(spectrograms, dtype=np.float32), seed=seed, conditions=conditions)
    return mu if use_mean else z


def interpolate(start: np.ndarray, end: np.ndarray, steps: int) -> np.ndarray:
    """Linear interpolation from `start` to `end` in `steps` points, both ends included.

    Works for latent vectors (returns (steps, latent)) and scalars such as min/max (returns (steps,)).
    """
    weights = np.linspace(0.0, 1.0, steps, dtype=np.float64)
    start, end = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
    shape = (steps,) + (1,) * start.ndim
    result = (1 - weights.reshape(shape)) * start + weights.reshape(shape) * end
    result[0], result[-1] = start, end
    return result.astype(np.float32)


def interpolation_latents(vae, first: np.ndarray, second: np.ndarray, steps: int, use_mean: bool = False,
                          seed=None, conditions=None) -> np.ndarray:
    """Encode two spectrograms (each with its condition, for a conditioned model) and return
    `steps` latent codes from the first to the second."""
    codes = encode_spectrograms(vae, np.stack([first, second]), use_mean=use_mean, seed=seed, conditions=conditions)
    return interpolate(codes[0], codes[1], steps)


def invert(normalised: np.ndarray, original_min: float, original_max: float, n_iter: int = 32,
           thesis_inversion: bool = False, seed=None) -> np.ndarray:
    """De-normalise a [0, 1] spectrogram and invert it to audio (float32, 22,050 Hz)."""
    from semantic_timbre.data import spectrogram

    audio = spectrogram.spectrogram_to_audio(normalised, original_min, original_max, n_iter=n_iter,
                                             thesis_inversion=thesis_inversion, random_state=seed)
    return np.asarray(audio, dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# Output


_NUMBERED_WAV = re.compile(r"(\d+)\.wav")


def check_output_folders(output_dir: str | Path) -> None:
    """Create output_dir/generated and output_dir/original if needed and check they can be written,
    before any work (raises OSError naming the folder)."""
    from semantic_timbre import safe_io

    for subdir in (layout.GENERATED_SUBDIR, layout.ORIGINAL_SUBDIR):
        safe_io.check_writable_folder(Path(output_dir) / subdir)


def limit_for_writing(audio: np.ndarray, path: str | Path, notice=print) -> np.ndarray:
    """The audio as it will be written: scaled to a -1 dBFS peak, with a notice, where it would clip."""
    from semantic_timbre.data.spectrogram import limit_peak

    limited, gain_db = limit_peak(audio)
    if gain_db:
        notice(f"note: {path} would have clipped (peak {-gain_db - 1:+.1f} dBFS): scaled down by "
               f"{-gain_db:.1f} dB to a peak of -1 dBFS")
    return limited


def write_numbered_wavs(folder: str | Path, audios, notice=print) -> list[Path]:
    """Write audios as folder/0.wav, 1.wav, ... (24-bit PCM, 22,050 Hz); see write_outputs."""
    return write_outputs({folder: audios}, notice)


def write_outputs(folders: dict, notice=print) -> list[Path]:
    """Write {folder: [audio, ...]} as folder/0.wav, 1.wav, ... (24-bit PCM, 22,050 Hz), all files
    or none, each scaled below full scale where it would clip (with a notice); then remove
    numbered files (<int>.wav) left in those folders by an earlier, longer run. Returns the paths."""
    from semantic_timbre import safe_io
    from semantic_timbre.data.spectrogram import SAMPLE_RATE

    items = []
    for folder, audios in folders.items():
        for index, audio in enumerate(audios):
            path = Path(folder) / f"{index}.wav"
            items.append((path, limit_for_writing(audio, path, notice)))
    safe_io.write_wavs_atomic(items, SAMPLE_RATE)
    for folder, audios in folders.items():
        for entry in Path(folder).iterdir():
            match = _NUMBERED_WAV.fullmatch(entry.name)
            if match and int(match.group(1)) >= len(audios) and entry.is_file():
                entry.unlink()
    return [path for path, _ in items]


def load_notes(notes, spectrograms_dir, minmax_dir):
    """Load the spectrograms of `notes` and their (min, max), reading only those files."""
    from semantic_timbre.data import processed_data

    min_max = processed_data.load_min_max(minmax_dir)
    spectrograms = np.stack([processed_data.load_spectrogram(Path(spectrograms_dir) / n.spectrogram_name)
                             for n in notes])
    ranges = [processed_data.min_max_of(min_max, n) for n in notes]
    return spectrograms, ranges


def generate_single_sample(vae, note, spectrograms_dir=layout.SPECTROGRAMS_DIR, minmax_dir=layout.MINMAX_DIR,
                           output_dir=layout.SINGLE_SAMPLE_DIR, use_mean=False, seed=None, n_iter=32,
                           thesis_inversion=False, notice=print, loaded=None, conditions=None) -> list[Path]:
    """Encode and decode one note; write output_dir/generated/0.wav and output_dir/original/0.wav
    (both or neither). `loaded`: what load_notes([note], ...) returned, if already read;
    `conditions`: the note's own condition (1, size), for a conditioned model."""
    (spectrogram,), ((low, high),) = loaded or load_notes([note], spectrograms_dir, minmax_dir)
    code = encode_spectrograms(vae, spectrogram[None], use_mean=use_mean, seed=seed, conditions=conditions)
    generated = vae.decode(code, conditions=conditions)[0]
    output_dir = Path(output_dir)
    return write_outputs({output_dir / layout.GENERATED_SUBDIR: [invert(generated, low, high, n_iter,
                                                                         thesis_inversion, seed)],
                          output_dir / layout.ORIGINAL_SUBDIR: [invert(spectrogram, low, high, n_iter,
                                                                        thesis_inversion, seed)]}, notice)


def generate_interpolation(vae, first, second, steps, spectrograms_dir=layout.SPECTROGRAMS_DIR,
                           minmax_dir=layout.MINMAX_DIR, output_dir=layout.INTERPOLATION_DIR, use_mean=False,
                           seed=None, n_iter=32, thesis_inversion=False, progress=False, notice=print,
                           loaded=None, conditions=None) -> list[Path]:
    """Interpolate between two notes in latent space; write output_dir/generated/0..steps-1.wav and
    the end points' own spectrograms inverted to output_dir/original/0.wav, 1.wav (all or none).
    `loaded`: what load_notes([first, second], ...) returned, if already read; `conditions`: the
    two notes' own conditions (2, size), for a conditioned model (each step is decoded with the
    condition interpolated as its code is)."""
    spectrograms, ranges = loaded or load_notes([first, second], spectrograms_dir, minmax_dir)
    latents = interpolation_latents(vae, spectrograms[0], spectrograms[1], steps, use_mean=use_mean, seed=seed,
                                    conditions=conditions)
    decoded = vae.decode(latents, conditions=None if conditions is None else
                         interpolate(conditions[0], conditions[1], steps))
    lows = interpolate(ranges[0][0], ranges[1][0], steps)
    highs = interpolate(ranges[0][1], ranges[1][1], steps)
    indices = range(steps)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc="inverting", unit="note", leave=False)
    generated = [invert(decoded[i], float(lows[i]), float(highs[i]), n_iter, thesis_inversion, seed) for i in indices]
    originals = [invert(spectrograms[i], *ranges[i], n_iter, thesis_inversion, seed) for i in range(2)]
    output_dir = Path(output_dir)
    return write_outputs({output_dir / layout.GENERATED_SUBDIR: generated,
                          output_dir / layout.ORIGINAL_SUBDIR: originals}, notice)


# ---------------------------------------------------------------------------------------------
# One object from a note to audio


class Pipeline:
    """One object from a note to audio over a project's folders: find the notes, load their
    spectrograms and min/max, their conditions, encode, decode, invert, write.

    The model folder's configuration is read and checked once, when first needed (`config`: after
    the notes are found and read, so that a missing note is reported before a missing model, as
    the commands always have), and passed on to the runtime; the model itself is loaded on first
    use (`model`: TensorFlow starts only then, and only for --runtime tensorflow or a folder
    without a fresh ONNX export).

    Parameters
    ----------
    model_dir, spectrograms_dir, minmax_dir, audio_dir : the project's folders (audio_dir: a
        perceptual-conditioned model's notes' audio, for features not yet cached)
    runtime : "auto", "onnx" or "tensorflow" (runtime.inference.load_model)
    """

    def __init__(self, model_dir=layout.MODEL_DIR, spectrograms_dir=layout.SPECTROGRAMS_DIR,
                 minmax_dir=layout.MINMAX_DIR, audio_dir=layout.AUDIO_DIR, runtime: str = "auto"):
        self.model_dir, self.spectrograms_dir = model_dir, spectrograms_dir
        self.minmax_dir, self.audio_dir, self.runtime = minmax_dir, audio_dir, runtime
        self._config = self._model = None

    @property
    def config(self):
        """The model folder's network.config.ModelConfig, read and checked (without TensorFlow) once."""
        if self._config is None:
            from semantic_timbre.network.model_files import check_model_config

            self._config = check_model_config(self.model_dir)
        return self._config

    @property
    def model(self):
        """The model for inference (an OnnxModel or the VAE), loaded on first use from `config`."""
        if self._model is None:
            from semantic_timbre.runtime.inference import load_model

            self._model = load_model(self.model_dir, self.runtime, config=self.config)
        return self._model

    def find(self, descriptor: str, magnitude, pitch: str, string: int | None = None,
             pickup: str | None = None) -> layout.Note:
        """The note asked for (find_note_with_pickup: NoteRequestError says what the data has)."""
        return find_note_with_pickup(descriptor, magnitude, pitch, string, self.spectrograms_dir, pickup)

    def load(self, notes):
        """(spectrograms (N, 512, 64), [(min, max), ...]) of `notes` (load_notes)."""
        return load_notes(notes, self.spectrograms_dir, self.minmax_dir)

    def conditions(self, notes):
        """The notes' own conditions (N, size) for a conditioned model, None for the thesis's."""
        from semantic_timbre.network.conditioning import note_conditions

        return note_conditions(self.config.conditioning, notes, audio_dir=self.audio_dir, minmax_dir=self.minmax_dir)

    def encode(self, spectrograms, conditions=None, use_mean: bool = False, seed=None) -> np.ndarray:
        """Latent codes of spectrograms (N, 512, 64): a sampled z, or mu with `use_mean`."""
        return encode_spectrograms(self.model, spectrograms, use_mean=use_mean, seed=seed, conditions=conditions)

    def decode(self, z, conditions=None) -> np.ndarray:
        """Spectrograms (N, 512, 64, 1) in [0, 1] of latent codes (N, latent)."""
        return self.model.decode(z, conditions=conditions)

    @staticmethod
    def invert(normalised, original_min: float, original_max: float, n_iter: int = 32,
               thesis_inversion: bool = False, seed=None) -> np.ndarray:
        """A [0, 1] spectrogram de-normalised and inverted to audio (invert)."""
        return invert(normalised, original_min, original_max, n_iter, thesis_inversion, seed)

    def _prepare(self, notes, output_dir):
        """What generating does first, in this order: the notes' spectrograms and min/max read,
        their conditions checked, the output folders checked (it creates them), then the model
        loaded. Returns (loaded, conditions, model)."""
        loaded = self.load(notes)
        conditions = self.conditions(notes)
        check_output_folders(output_dir)  # last before the model: it creates them
        return loaded, conditions, self.model

    def single_sample(self, note, output_dir=layout.SINGLE_SAMPLE_DIR, use_mean: bool = False, seed=None,
                      n_iter: int = 32, thesis_inversion: bool = False, notice=print) -> list[Path]:
        """generate_single_sample: output_dir/generated/0.wav and output_dir/original/0.wav."""
        loaded, conditions, model = self._prepare([note], output_dir)
        return generate_single_sample(model, note, self.spectrograms_dir, self.minmax_dir, output_dir,
                                      use_mean=use_mean, seed=seed, n_iter=n_iter, thesis_inversion=thesis_inversion,
                                      notice=notice, loaded=loaded, conditions=conditions)

    def interpolation(self, first, second, steps: int, output_dir=layout.INTERPOLATION_DIR, use_mean: bool = False,
                      seed=None, n_iter: int = 32, thesis_inversion: bool = False, progress: bool = False,
                      notice=print) -> list[Path]:
        """generate_interpolation: output_dir/generated/0..steps-1.wav and output_dir/original/0.wav, 1.wav."""
        loaded, conditions, model = self._prepare([first, second], output_dir)
        return generate_interpolation(model, first, second, steps, self.spectrograms_dir, self.minmax_dir,
                                      output_dir, use_mean=use_mean, seed=seed, n_iter=n_iter,
                                      thesis_inversion=thesis_inversion, progress=progress, notice=notice,
                                      loaded=loaded, conditions=conditions)
