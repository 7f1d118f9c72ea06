"""Data layout and names: the one home of the Semantic Timbre Dataset's conventions.

Audio:         audio/<GROUP>/<DESCRIPTOR>/<MAGNITUDE>/<STRING>-<FRET>.<ext>
Spectrograms:  spectrograms/<DESCRIPTOR>X<MAGNITUDE>X<STRING>-<FRET>.<ext>.npy
Min/max:       minmax/min_max_values.pkl, keyed by "spectrograms/<spectrogram name>"

The thesis's selection uses only those names. The full release holds each note in 5 pickup
configurations, and how its names carry the pickup is not documented, so two variants are
accepted as well, and kept apart in the flat spectrograms folder:

- a file name with more after <STRING>-<FRET> (e.g. 1-0-3.wav, 1-0_bridge.wav): the spectrogram
  name keeps the whole file name, CrunchX100X1-0_bridge.wav.npy, as the thesis's recipe does;
- one folder below the magnitude (e.g. Crunch/100/bridge/1-0.wav): the folder becomes a field of
  its own, CrunchX100XbridgeX1-0.wav.npy.

'X' separates the fields, so no descriptor, folder or file name may contain it; a name has three
fields or four, which keeps every variant's names apart from every other's.
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
_DESCRIPTORS_BY_CASEFOLD = {descriptor.casefold(): descriptor for descriptor in DESCRIPTORS}
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


def canonical_pitch(name: str) -> str:
    """Return a note name in the data set's spelling, e.g. 'f#5' -> 'F#5', ' e4' -> 'E4'.

    A name that is not a note name (flats, 'H4', '') is returned unchanged, for the caller's own
    error message.
    """
    match = re.fullmatch(r"([A-Ga-g])(#?)(-?\d+)", str(name).strip())
    if not match or f"{match.group(1).upper()}{match.group(2)}" not in _PITCH_CLASSES:  # E#, B#
        return name
    return f"{match.group(1).upper()}{match.group(2)}{match.group(3)}"


def canonical_descriptor(name: str) -> str:
    """Return the canonical spelling of one of the 19 descriptors, whatever its case.

    'crunch' -> 'Crunch', 'WAHWAH' -> 'WahWah'; a name that is not one of them is returned unchanged.
    """
    return _DESCRIPTORS_BY_CASEFOLD.get(str(name).strip().casefold(), name)


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

    `file_name` is the audio file's own name, extension included (e.g. '1-0.wav', or
    '1-0_bridge.wav' when the name carries more). `subfolder` is the folder between the magnitude
    folder and the file (e.g. 'bridge' for Crunch/100/bridge/1-0.wav), '' in the thesis's layout.
    """

    descriptor: str
    magnitude: int
    string: int
    fret: int
    file_name: str
    subfolder: str = ""

    @property
    def pitch(self) -> str:
        return pitch_of(self.string, self.fret)

    @property
    def midi(self) -> int:
        return OPEN_STRING_MIDI[self.string] + self.fret

    @property
    def suffix(self) -> str:
        """What the file name carries between <STRING>-<FRET> and the extension ('' for 1-0.wav)."""
        match = _NOTE_FILE.fullmatch(self.file_name)
        return (match.group(3) or "") if match else ""

    @property
    def variant(self) -> str:
        """What tells this note apart from the thesis's plain `<STRING>-<FRET>.<ext>` of the same
        descriptor, magnitude and position (e.g. 'bridge', '_bridge', 'bridge/_3'); '' for none."""
        return "/".join(part for part in (self.subfolder, self.suffix) if part)

    @property
    def pickup(self) -> str:
        """The pickup variant as --pickup names it: the folder below the magnitude, then what the
        file name carries after <STRING>-<FRET> less its leading separator ('bridge' for
        bridge/1-0.wav and for 1-0_bridge.wav, 'bridge/3' for bridge/1-0-3.wav); '' for the
        thesis's plain <STRING>-<FRET>.<ext>."""
        return "/".join(part for part in (self.subfolder, self.suffix.lstrip("_- .")) if part)

    def answers_to_pickup(self, name: str) -> bool:
        """Whether --pickup `name` picks this note: its `pickup` or its `variant`, any case."""
        name = name.strip().lower()
        return name in (self.pickup.lower(), self.variant.lower())

    @property
    def layout_variant(self) -> str:
        """Which of `LAYOUT_VARIANTS` this note's audio path follows."""
        kinds = [kind for kind, present in (("folder", self.subfolder), ("suffix", self.suffix)) if present]
        return "+".join(kinds) or "plain"

    @property
    def spectrogram_name(self) -> str:
        return spectrogram_file_name(self.descriptor, self.magnitude, self.file_name, self.subfolder)

    @property
    def minmax_key(self) -> str:
        return minmax_key(self.spectrogram_name)

    @property
    def is_clean(self) -> bool:
        return self.magnitude == 0


#: The layouts a note's audio path may follow, as the pre-processor's summary names them.
LAYOUT_VARIANTS = {
    "plain": "<STRING>-<FRET>.<ext>",
    "suffix": "with a suffix after <STRING>-<FRET>",
    "folder": "in a folder below the magnitude",
    "folder+suffix": "in a folder below the magnitude, with a suffix after <STRING>-<FRET>",
}

# <STRING>-<FRET>, then anything not starting with a digit (the suffix), then the extension.
_NOTE_FILE = re.compile(r"(\d+)-(\d+)(\D.*?)?(\.[A-Za-z0-9]+)")


def _parse_note_file(file_name: str) -> tuple[int, int]:
    match = _NOTE_FILE.fullmatch(file_name)
    if not match:
        raise LayoutError(f"file name '{file_name}' does not start with <STRING>-<FRET> and end in "
                          f".<ext>, e.g. 1-0.wav or 1-0_bridge.wav")
    if "X" in file_name:
        raise LayoutError(f"file name '{file_name}' contains 'X', which separates the fields of a "
                          f"spectrogram name")
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
    if descriptor.isdigit():
        # A number there means a folder level too many or too few around the magnitude folder.
        raise LayoutError(f"descriptor folder '{descriptor}' is a number, not a descriptor")
    return descriptor


def _check_subfolder(subfolder: str) -> str:
    if not subfolder or "X" in subfolder:
        raise LayoutError(f"folder '{subfolder}' below the magnitude is empty or contains 'X' (which "
                          f"separates the fields of a spectrogram name)")
    return subfolder


_PATH_FORM = "<GROUP>/<DESCRIPTOR>/<MAGNITUDE>/[<FOLDER>/]<STRING>-<FRET>[...].<ext>"


def parse_audio_path(path: str | Path, audio_root: str | Path | None = None) -> Note:
    """Parse `[audio_root/]<GROUP>/<DESCRIPTOR>/<MAGNITUDE>/[<FOLDER>/]<STRING>-<FRET>[...].<ext>`.

    The group folder is only an umbrella and is ignored. A path whose third part from the end is a
    whole number has a folder below the magnitude (e.g. Crunch/100/bridge/1-0.wav), which becomes
    the Note's `subfolder`; otherwise only the last three parts matter.
    """
    path = Path(path)
    if audio_root is not None:
        try:
            path = path.relative_to(audio_root)
        except ValueError:
            pass
    parts = path.parts
    if len(parts) < 3:
        raise LayoutError(f"'{path}' is not {_PATH_FORM}")
    if len(parts) >= 4 and parts[-3].isdigit():
        descriptor, magnitude_text, subfolder, file_name = parts[-4:]
        _check_subfolder(subfolder)
    else:
        (descriptor, magnitude_text, file_name), subfolder = parts[-3:], ""
    string, fret = _parse_note_file(file_name)
    return Note(_check_descriptor(descriptor), _parse_magnitude(magnitude_text), string, fret, file_name,
                subfolder)


def spectrogram_file_name(descriptor: str, magnitude: int, file_name: str, subfolder: str = "") -> str:
    """Return the flat spectrogram name of a note.

    ('Crunch', 100, '1-0.wav') -> 'CrunchX100X1-0.wav.npy' (the thesis's names);
    ('Crunch', 100, '1-0.wav', 'bridge') -> 'CrunchX100XbridgeX1-0.wav.npy'.
    """
    if subfolder:
        return f"{descriptor}X{magnitude}X{subfolder}X{file_name}.npy"
    return f"{descriptor}X{magnitude}X{file_name}.npy"


def minmax_key(spectrogram_name: str) -> str:
    """Return the min_max_values.pkl key of a spectrogram: 'spectrograms/<name>' (always '/')."""
    return f"{SPECTROGRAMS_DIR}/{Path(spectrogram_name).name}"


def parse_spectrogram_name(name: str | Path) -> Note:
    """Parse 'CrunchX100X1-0.wav.npy' or 'CrunchX100XbridgeX1-0.wav.npy' (a bare name, a path or a
    min/max key) into a Note."""
    base = Path(str(name)).name
    if not base.endswith(".npy"):
        raise LayoutError(f"'{base}' is not a spectrogram name ending in .npy")
    fields = base[: -len(".npy")].split("X")
    if len(fields) == 3:
        (descriptor, magnitude_text, file_name), subfolder = fields, ""
    elif len(fields) == 4:
        descriptor, magnitude_text, subfolder, file_name = fields
        _check_subfolder(subfolder)
    else:
        raise LayoutError(f"'{base}' is not <DESCRIPTOR>X<MAGNITUDE>X[<FOLDER>X]<STRING>-<FRET>.<ext>.npy")
    string, fret = _parse_note_file(file_name)
    return Note(_check_descriptor(descriptor), _parse_magnitude(magnitude_text), string, fret, file_name,
                subfolder)


def list_spectrograms(spectrograms_dir: str | Path) -> list[Note]:
    """Return the Notes of every well-named .npy file in a spectrograms folder, sorted."""
    notes = []
    for entry in Path(spectrograms_dir).glob("*.npy"):
        try:
            notes.append(parse_spectrogram_name(entry.name))
        except LayoutError:
            continue
    return sorted(notes)
