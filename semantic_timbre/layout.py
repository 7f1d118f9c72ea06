"""Data layout and names: the one home of the Semantic Timbre Dataset's conventions.

Audio:         audio/<GROUP>/<DESCRIPTOR>/<MAGNITUDE>/<STRING>-<FRET>.<ext>
Spectrograms:  spectrograms/<DESCRIPTOR>X<MAGNITUDE>X<STRING>-<FRET>.<ext>.npy
Min/max:       minmax/min_max_values.pkl, keyed by "spectrograms/<spectrogram name>"
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

AUDIO_DIR = "audio"
SPECTROGRAMS_DIR = "spectrograms"
MINMAX_DIR = "minmax"
MINMAX_FILE_NAME = "min_max_values.pkl"
MODEL_DIR = "model"
SINGLE_SAMPLE_DIR = "singlesample"
INTERPOLATION_DIR = "interpolated_samples"
GENERATED_SUBDIR = "generated"
ORIGINAL_SUBDIR = "original"

DESCRIPTORS = (
    "Bright", "Crunch", "Crush", "Dark", "Dirt", "Fat", "Fluttery", "Fuzz", "Jittery", "Punch",
    "Resonant", "Sharp", "Shimmery", "Smooth", "Soft", "Stuttering", "Thin", "Tight", "WahWah",
)
#: The clean notes (magnitude 0) of the thesis selection sit only under this descriptor.
CLEAN_DESCRIPTOR = "Fluttery"
THESIS_MAGNITUDES = (25, 50, 75, 100)
RELEASE_MAGNITUDES = tuple(range(0, 101, 5))
THESIS_STRINGS = (1,)
RELEASE_STRINGS = (1, 2, 3, 4, 5, 6)
FRETS = tuple(range(23))

#: MIDI number of each open string in standard tuning (string 1 = high E4 ... string 6 = E2).
OPEN_STRING_MIDI = {1: 64, 2: 59, 3: 55, 4: 50, 5: 45, 6: 40}
_PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")

AUDIO_EXTENSIONS = (".wav", ".flac", ".aif", ".aiff", ".ogg")

REAL_DATA_HINT = (
    "the real data is the Semantic Timbre Dataset (Hugging Face dataset "
    "JoeCameron1/SemanticTimbreDataset, or Zenodo record 11398253): unpack its audio/ folder here; "
    "or make the synthetic demo set with 'python make_demo_audio.py'"
)


class LayoutError(ValueError):
    """A path or name that does not follow the data set's layout."""


def midi_to_note_name(midi: int) -> str:
    """Return the note name of a MIDI number, e.g. 64 -> 'E4', 66 -> 'F#4'."""
    return f"{_PITCH_CLASSES[midi % 12]}{midi // 12 - 1}"


def note_name_to_midi(name: str) -> int:
    """Return the MIDI number of a note name such as 'E4' or 'F#5' (sharps only, as the data set)."""
    match = re.fullmatch(r"([A-G]#?)(-?\d+)", name.strip())
    if not match or match.group(1) not in _PITCH_CLASSES:
        raise LayoutError(f"'{name}' is not a note name like E4 or F#5")
    return _PITCH_CLASSES.index(match.group(1)) + 12 * (int(match.group(2)) + 1)


def pitch_of(string: int, fret: int) -> str:
    """Return the note name sounded by a string (1-6) at a fret (0-22)."""
    return midi_to_note_name(OPEN_STRING_MIDI[string] + fret)


def frets_for_pitch(pitch: str, strings=RELEASE_STRINGS) -> dict[int, int]:
    """Return {string: fret} for every string among `strings` on which `pitch` can be played."""
    midi = note_name_to_midi(pitch)
    return {s: midi - OPEN_STRING_MIDI[s] for s in strings
            if s in OPEN_STRING_MIDI and 0 <= midi - OPEN_STRING_MIDI[s] <= FRETS[-1]}


@dataclass(frozen=True, order=True)
class Note:
    """One note of the data set: a descriptor at a magnitude, played on a string at a fret.

    `file_name` is the audio file's own name, extension included (e.g. '1-0.wav').
    """

    descriptor: str
    magnitude: int
    string: int
    fret: int
    file_name: str

    @property
    def pitch(self) -> str:
        return pitch_of(self.string, self.fret)

    @property
    def midi(self) -> int:
        return OPEN_STRING_MIDI[self.string] + self.fret

    @property
    def spectrogram_name(self) -> str:
        return spectrogram_file_name(self.descriptor, self.magnitude, self.file_name)

    @property
    def minmax_key(self) -> str:
        return minmax_key(self.spectrogram_name)

    @property
    def is_clean(self) -> bool:
        return self.magnitude == 0


_NOTE_FILE = re.compile(r"(\d+)-(\d+)(\.[A-Za-z0-9]+)")


def _parse_note_file(file_name: str) -> tuple[int, int]:
    match = _NOTE_FILE.fullmatch(file_name)
    if not match:
        raise LayoutError(f"file name '{file_name}' is not <STRING>-<FRET>.<ext>, e.g. 1-0.wav")
    string, fret = int(match.group(1)), int(match.group(2))
    if string not in OPEN_STRING_MIDI:
        raise LayoutError(f"string {string} in '{file_name}' is not one of 1-6")
    if fret not in FRETS:
        raise LayoutError(f"fret {fret} in '{file_name}' is not one of 0-22")
    return string, fret


def _parse_magnitude(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 100:
        raise LayoutError(f"magnitude folder '{text}' is not a whole number from 0 to 100")
    return int(text)


def _check_descriptor(descriptor: str) -> str:
    if not descriptor or "X" in descriptor:
        # 'X' separates the fields of a spectrogram name, so it cannot appear in a descriptor.
        raise LayoutError(f"descriptor folder '{descriptor}' is empty or contains 'X'")
    return descriptor


def parse_audio_path(path: str | Path, audio_root: str | Path | None = None) -> Note:
    """Parse `[audio_root/]<GROUP>/<DESCRIPTOR>/<MAGNITUDE>/<STRING>-<FRET>.<ext>` into a Note.

    The group folder is only an umbrella and is ignored; only the last three parts matter.
    """
    path = Path(path)
    if audio_root is not None:
        try:
            path = path.relative_to(audio_root)
        except ValueError:
            pass
    parts = path.parts
    if len(parts) < 3:
        raise LayoutError(f"'{path}' is not <GROUP>/<DESCRIPTOR>/<MAGNITUDE>/<STRING>-<FRET>.<ext>")
    descriptor, magnitude_text, file_name = parts[-3], parts[-2], parts[-1]
    string, fret = _parse_note_file(file_name)
    return Note(_check_descriptor(descriptor), _parse_magnitude(magnitude_text), string, fret, file_name)


def spectrogram_file_name(descriptor: str, magnitude: int, file_name: str) -> str:
    """Return the flat spectrogram name, e.g. ('Crunch', 100, '1-0.wav') -> 'CrunchX100X1-0.wav.npy'."""
    return f"{descriptor}X{magnitude}X{file_name}.npy"


def minmax_key(spectrogram_name: str) -> str:
    """Return the min_max_values.pkl key of a spectrogram: 'spectrograms/<name>' (always '/')."""
    return f"{SPECTROGRAMS_DIR}/{Path(spectrogram_name).name}"


def parse_spectrogram_name(name: str | Path) -> Note:
    """Parse 'CrunchX100X1-0.wav.npy' (a bare name, a path or a min/max key) into a Note."""
    base = Path(str(name)).name
    if not base.endswith(".npy"):
        raise LayoutError(f"'{base}' is not a spectrogram name ending in .npy")
    fields = base[: -len(".npy")].split("X")
    if len(fields) != 3:
        raise LayoutError(f"'{base}' is not <DESCRIPTOR>X<MAGNITUDE>X<STRING>-<FRET>.<ext>.npy")
    descriptor, magnitude_text, file_name = fields
    string, fret = _parse_note_file(file_name)
    return Note(_check_descriptor(descriptor), _parse_magnitude(magnitude_text), string, fret, file_name)


def list_spectrograms(spectrograms_dir: str | Path) -> list[Note]:
    """Return the Notes of every well-named .npy file in a spectrograms folder, sorted."""
    notes = []
    for entry in Path(spectrograms_dir).glob("*.npy"):
        try:
            notes.append(parse_spectrogram_name(entry.name))
        except LayoutError:
            continue
    return sorted(notes)
