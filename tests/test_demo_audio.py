"""The synthetic demo data set: layout, determinism, pitch, effects, and the command line."""

from __future__ import annotations

import itertools
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile
from scipy import signal

from conftest import run_script
from semantic_timbre.data import demo_audio
from semantic_timbre import layout

SCRIPT = "make_demo_audio.py"
SMALL = ("--descriptors", "Crunch", "Dark", "--frets", "0", "5", "12", "--magnitudes", "50", "100")
SMALL_FILES = sorted(
    [f"DistortionFX/Crunch/{m}/1-{f}.wav" for m in (50, 100) for f in (0, 5, 12)]
    + [f"FilterFX/Dark/{m}/1-{f}.wav" for m in (50, 100) for f in (0, 5, 12)]
    + [f"ModulationFX/Fluttery/0/1-{f}.wav" for f in (0, 5, 12)])


def wav_files(root: Path) -> list[str]:
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())


def file_bytes(root: Path) -> dict[str, bytes]:
    return {name: (root / name).read_bytes() for name in wav_files(root)}


def db_spectrogram(audio: np.ndarray) -> np.ndarray:
    """dB magnitude relative to the note's own maximum, floored at -80 dB (as the pre-processor sees it)."""
    _, _, stft = signal.stft(audio, fs=demo_audio.SAMPLE_RATE, nperseg=2048, noverlap=1536)
    decibels = 20 * np.log10(np.maximum(np.abs(stft), 1e-10))
    return np.maximum(decibels - decibels.max(), -80.0)


def spectral_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(db_spectrogram(a) - db_spectrogram(b))))


# --- selection and layout (nothing synthesised) -----------------------------------------------

def test_default_selection_is_the_thesis_selection():
    notes = demo_audio.demo_selection()
    assert len(notes) == 1771 == 19 * 4 * 23 + 23
    assert {note.string for note in notes} == {1}
    assert {note.fret for note in notes} == set(range(23))
    clean = [note for note in notes if note.magnitude == 0]
    assert len(clean) == 23 and {note.descriptor for note in clean} == {"Fluttery"}
    assert {note.magnitude for note in notes if not note.is_clean} == {25, 50, 75, 100}
    paths = {demo_audio.audio_path(note).as_posix() for note in notes}
    assert len(paths) == 1771
    assert "ModulationFX/Fluttery/0/1-5.wav" in paths  # the Makefile's demo applies an effect to it
    assert "DistortionFX/Crunch/100/1-0.wav" in paths
    for note in notes:  # every path parses back to the same note through the shared layout code
        assert layout.parse_audio_path(demo_audio.audio_path(note)) == note


def test_full_release_selection_has_the_release_shape():
    notes = demo_audio.demo_selection(full_release=True)
    assert len(notes) == 19 * 21 * 6 * 23  # descriptors x magnitudes 0..100 step 5 x strings x frets
    assert {note.string for note in notes} == set(range(1, 7))
    assert {note.magnitude for note in notes} == set(range(0, 101, 5))
    assert {note.descriptor for note in notes if note.magnitude == 0} == set(layout.DESCRIPTORS)


def test_effect_groups_cover_every_descriptor_once():
    members = [d for group in demo_audio.EFFECT_GROUPS.values() for d in group]
    assert sorted(members) == sorted(layout.DESCRIPTORS)
    assert len(demo_audio.EFFECT_GROUPS) == 4


def test_smaller_selections():
    notes = demo_audio.demo_selection(descriptors=["Crunch", "Dark"], frets=[0, 5, 12], magnitudes=[50, 100])
    assert sorted(demo_audio.audio_path(n).as_posix() for n in notes) == SMALL_FILES
    assert len(demo_audio.demo_selection(descriptors=["Fuzz"], positions=[(1, 5), (2, 10)], clean=False,
                                         magnitudes=[25])) == 2


# --- the clean note ---------------------------------------------------------------------------

@pytest.mark.parametrize("string, fret", [(1, 0), (1, 7), (1, 22), (6, 0)])
def test_clean_note_is_in_tune(string, fret):
    expected = 440.0 * 2 ** ((layout.OPEN_STRING_MIDI[string] + fret - 69) / 12)
    assert demo_audio.note_frequency(string, fret) == pytest.approx(expected)
    note = demo_audio.clean_note(string, fret)
    f0 = librosa.yin(note[2048:30000].astype(np.float64), fmin=expected / 2, fmax=expected * 2,
                     sr=demo_audio.SAMPLE_RATE, frame_length=4096)
    cents = 1200 * np.log2(np.median(f0) / expected)
    assert abs(cents) < 10, f"{layout.pitch_of(string, fret)} is {cents:.1f} cents off"


def test_clean_note_is_a_decaying_pluck_with_headroom():
    note = demo_audio.clean_note(1, 5)
    assert note.dtype == np.float32 and note.shape == (44100,) and np.all(np.isfinite(note))
    assert np.max(np.abs(note)) == pytest.approx(10 ** (-3 / 20), rel=1e-4)
    first, last = np.sqrt(np.mean(note[:4410] ** 2)), np.sqrt(np.mean(note[-4410:] ** 2))
    assert last < first / 5  # a natural decay
    assert last > 0  # still ringing: no truncation to silence
    assert abs(note[-1]) < 1e-6 and abs(note[0]) < 1e-3  # faded at the end, no step at the start
    # A plucked string is rich in harmonics, unlike a sine.
    spectrum = np.abs(np.fft.rfft(note[:8192] * np.hanning(8192)))
    frequencies = np.fft.rfftfreq(8192, 1 / demo_audio.SAMPLE_RATE)
    above_fundamental = spectrum[frequencies > 1.5 * 440].sum() / spectrum.sum()
    assert above_fundamental > 0.2


def test_notes_depend_on_seed_string_and_fret_only():
    a = demo_audio.render(layout.Note("Crunch", 75, 1, 3, "1-3.wav"), seed=5)
    demo_audio.render(layout.Note("Jittery", 50, 2, 9, "2-9.wav"), seed=5)  # some other work in between
    assert np.array_equal(a, demo_audio.render(layout.Note("Crunch", 75, 1, 3, "1-3.wav"), seed=5))
    assert not np.array_equal(a, demo_audio.render(layout.Note("Crunch", 75, 1, 3, "1-3.wav"), seed=6))
    # The clean note under Fluttery/0 is exactly the base note every descriptor is applied to.
    clean = demo_audio.render(layout.Note("Fluttery", 0, 1, 3, "1-3.wav"), seed=5)
    assert np.array_equal(clean, demo_audio.clean_note(1, 3, seed=5))
    assert np.array_equal(demo_audio.render(layout.Note("Dark", 0, 1, 3, "1-3.wav"), seed=5), clean)


# --- the descriptors --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def a4_outputs():
    clean = demo_audio.clean_note(1, 5)
    return clean, {(d, m): demo_audio.apply_descriptor(clean, d, m) for d in layout.DESCRIPTORS for m in (25, 100)}


@pytest.mark.parametrize("descriptor", layout.DESCRIPTORS)
def test_each_descriptor_changes_the_note_more_at_higher_magnitude(a4_outputs, descriptor):
    clean, outputs = a4_outputs
    weak, strong = outputs[descriptor, 25], outputs[descriptor, 100]
    for audio in (weak, strong):
        assert audio.dtype == np.float32 and audio.shape == clean.shape
        assert np.all(np.isfinite(audio)) and np.max(np.abs(audio)) <= 10 ** (-1 / 20) + 1e-6
        assert np.max(np.abs(audio)) >= 10 ** (-12 / 20) - 1e-6  # nothing close to silent
    weak_distance, strong_distance = spectral_distance(weak, clean), spectral_distance(strong, clean)
    assert weak_distance > 0.1, f"{descriptor} 25 is indistinguishable from the clean note"
    assert strong_distance > 1.2 * weak_distance, f"{descriptor}: 100 is not stronger than 25"


def test_descriptors_sound_different_from_each_other(a4_outputs):
    _, outputs = a4_outputs
    for a, b in itertools.combinations(layout.DESCRIPTORS, 2):
        assert spectral_distance(outputs[a, 100], outputs[b, 100]) > 0.5, f"{a} and {b} at 100 sound alike"


def test_magnitude_zero_is_the_clean_note_and_bad_input_is_refused():
    clean = demo_audio.clean_note(1, 0)
    assert np.array_equal(demo_audio.apply_descriptor(clean, "Fuzz", 0), clean)
    with pytest.raises(ValueError, match="unknown descriptor"):
        demo_audio.apply_descriptor(clean, "Spiky", 50)
    with pytest.raises(ValueError, match="between 0 and 100"):
        demo_audio.apply_descriptor(clean, "Fuzz", 150)


def test_effects_never_clip_or_write_nan_even_on_a_full_scale_input():
    loud = demo_audio.clean_note(6, 0) / 10 ** (-3 / 20)  # peak exactly 1.0
    for descriptor in layout.DESCRIPTORS:
        audio = demo_audio.apply_descriptor(loud, descriptor, 100)
        assert np.all(np.isfinite(audio)) and np.max(np.abs(audio)) <= 1.0, descriptor
    broken = np.array([np.nan, np.inf, -np.inf, 3.0, -0.5] + [0.0] * 1000)
    finished = demo_audio.finish(broken)
    assert np.all(np.isfinite(finished)) and np.max(np.abs(finished)) <= 1.0


# --- the command line -------------------------------------------------------------------------

def check_wav_format(path: Path):
    info = soundfile.info(path)
    assert (info.samplerate, info.channels, info.frames, info.subtype, info.format) == \
        (44100, 1, 44100, "PCM_24", "WAV"), path
    audio, _ = soundfile.read(path)
    assert np.all(np.isfinite(audio)) and 0 < np.max(np.abs(audio)) <= 1.0, path


def test_script_writes_the_layout_and_is_deterministic_across_jobs(tmp_path):
    first = run_script(SCRIPT, *SMALL, "--jobs", "2", "--output", "first", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert wav_files(tmp_path / "first") == SMALL_FILES  # no temporary files left over either
    for name in SMALL_FILES:
        check_wav_format(tmp_path / "first" / name)
    assert "SYNTHETIC stand-ins for the Semantic Timbre Dataset" in first.stdout
    assert "JoeCameron1/SemanticTimbreDataset" in first.stdout and "11398253" in first.stdout
    assert "15 synthetic demo files written to first/" in first.stdout.splitlines()[-1]

    second = run_script(SCRIPT, *SMALL, "--jobs", "1", "--output", "second", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert file_bytes(tmp_path / "first") == file_bytes(tmp_path / "second")


def test_script_refuses_a_folder_with_files_unless_forced(tmp_path):
    audio = tmp_path / "audio"
    user_file = audio / "DistortionFX" / "Crunch" / "50" / "1-0.wav"
    user_file.parent.mkdir(parents=True)
    user_file.write_bytes(b"my own recording")
    other = audio / "notes.txt"
    other.write_text("keep me")

    refused = run_script(SCRIPT, *SMALL, cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and refused.stderr.startswith("error: ")
    assert "already holds files" in refused.stderr and "--force" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert wav_files(audio) == ["DistortionFX/Crunch/50/1-0.wav", "notes.txt"]
    assert user_file.read_bytes() == b"my own recording"

    forced = run_script(SCRIPT, *SMALL, "--force", "--jobs", "1", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert wav_files(audio) == sorted(SMALL_FILES + ["notes.txt"])
    check_wav_format(user_file)  # overwritten with the demo note
    assert other.read_text() == "keep me"  # files the demo does not write are left alone
    reference = tmp_path / "reference"
    assert run_script(SCRIPT, *SMALL, "--jobs", "1", "--output", reference, cwd=tmp_path).returncode == 0
    assert user_file.read_bytes() == (reference / "DistortionFX/Crunch/50/1-0.wav").read_bytes()


def test_script_accepts_a_folder_with_only_hidden_files_and_pitch_names(tmp_path):
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / ".gitkeep").touch()
    result = run_script(SCRIPT, "--descriptors", "fuzz", "--pitches", "A4", "D6", "--magnitudes", "75",
                        "--no-clean", "--jobs", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert wav_files(tmp_path / "audio") == [".gitkeep", "DistortionFX/Fuzz/75/1-22.wav",
                                             "DistortionFX/Fuzz/75/1-5.wav"]


@pytest.mark.parametrize("options, message", [
    (("--descriptors", "Spiky"), "unknown descriptor(s) Spiky: choose from Bright"),
    (("--frets", "30"), "fret(s) 30 not allowed: use 0 to 22"),
    (("--magnitudes", "120"), "magnitude(s) 120 not allowed"),
    (("--pitches", "E2"), "pitch E2 cannot be played on the chosen string(s): string 1 plays E4 to D6"),
    (("--pitches", "H4"), "'H4' is not a note name"),
    (("--jobs", "0"), "--jobs 0 is not allowed"),
])
def test_script_rejects_bad_options_in_one_line(tmp_path, options, message):
    result = run_script(SCRIPT, *options, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr
    assert not (tmp_path / "audio").exists()
