"""The full release's possible layouts: note files named <STRING>-<FRET> plus more, and a folder
below the magnitude (how the release carries the 5 pickup configurations is not documented).
Names must stay unique in the flat spectrograms/ folder and parse back; the thesis's names stay
exactly as they were. Also the command-line spelling helpers for descriptors and pitches."""

from __future__ import annotations

import itertools
import pickle
from pathlib import Path

import numpy as np
import pytest

from conftest import make_audio_tree, plucked_note, run_script, write_audio
from semantic_timbre import layout, safe_io
from semantic_timbre.data import processed_data

SCRIPT = "process_audio_into_spectrograms.py"
PICKUPS = ("bridge", "bridge-middle", "middle", "middle-neck", "neck")


# --- names -------------------------------------------------------------------------------------

def test_thesis_names_are_unchanged():
    note = layout.parse_audio_path("audio/DistortionFX/Crunch/100/1-0.wav", "audio")
    assert note == layout.Note("Crunch", 100, 1, 0, "1-0.wav")  # the five-argument form still works
    assert note.subfolder == "" and note.suffix == "" and note.variant == "" and note.layout_variant == "plain"
    assert note.spectrogram_name == "CrunchX100X1-0.wav.npy"
    assert note.minmax_key == "spectrograms/CrunchX100X1-0.wav.npy"
    assert layout.spectrogram_file_name("Crunch", 100, "1-0.wav") == "CrunchX100X1-0.wav.npy"
    assert layout.parse_spectrogram_name("spectrograms/CrunchX100X1-0.wav.npy") == note


@pytest.mark.parametrize("relative, string, fret, subfolder, spectrogram_name, kind", [
    ("G/Crunch/100/1-0-3.wav", 1, 0, "", "CrunchX100X1-0-3.wav.npy", "suffix"),
    ("G/Crunch/100/1-0_bridge.wav", 1, 0, "", "CrunchX100X1-0_bridge.wav.npy", "suffix"),
    ("G/Crunch/100/1-0 neck.wav", 1, 0, "", "CrunchX100X1-0 neck.wav.npy", "suffix"),
    ("G/Crunch/100/6-22.bridge.flac", 6, 22, "", "CrunchX100X6-22.bridge.flac.npy", "suffix"),
    ("G/Crunch/100/bridge/1-0.wav", 1, 0, "bridge", "CrunchX100XbridgeX1-0.wav.npy", "folder"),
    ("G/Crunch/100/3/2-7.wav", 2, 7, "3", "CrunchX100X3X2-7.wav.npy", "folder"),
    ("Crunch/100/neck/1-0_take2.wav", 1, 0, "neck", "CrunchX100XneckX1-0_take2.wav.npy", "folder+suffix"),
])
def test_release_variants_parse_and_name_round_trip(relative, string, fret, subfolder, spectrogram_name, kind):
    note = layout.parse_audio_path(Path("audio", relative), "audio")
    assert (note.descriptor, note.magnitude, note.string, note.fret) == ("Crunch", 100, string, fret)
    assert note.subfolder == subfolder and note.file_name == Path(relative).name
    assert note.layout_variant == kind and note.variant
    assert note.spectrogram_name == spectrogram_name
    assert layout.parse_spectrogram_name(spectrogram_name) == note
    assert layout.parse_spectrogram_name(note.minmax_key) == note
    assert note.pitch == layout.pitch_of(string, fret)


def test_every_variant_gets_its_own_name():
    # Paths built to collide under a naive scheme (folder folded into the file name, or a folder
    # named like a note): every one must give a different spectrogram name.
    relatives = ["1-0.wav", "1-0_bridge.wav", "bridge/1-0.wav", "1-0.wav/1-0.wav", "1-0/1-0.wav",
                 "1-0-1.wav", "1/1-0.wav", "1-0.bridge.wav", "bridge/1-0_bridge.wav", "1-0_bridge/1-0.wav",
                 "bridge.wav/1-0.wav", "1-0.wav.wav"]
    names = set()
    for relative in relatives:
        note = layout.parse_audio_path(Path("audio/G/Crunch/100", relative), "audio")
        names.add(note.spectrogram_name)
        assert layout.parse_spectrogram_name(note.spectrogram_name) == note
    assert len(names) == len(relatives)


@pytest.mark.parametrize("relative, reason", [
    ("G/Crunch/100/1-30.wav", "fret 30"),
    ("G/Crunch/100/7-0.wav", "string 7"),
    ("G/Crunch/100/note.wav", "does not start with <STRING>-<FRET>"),
    ("G/Crunch/100/x1-0.wav", "does not start with <STRING>-<FRET>"),
    ("G/Crunch/100/1-0_X.wav", "contains 'X'"),       # 'X' separates a spectrogram name's fields
    ("G/Crunch/100/BridgeXNeck/1-0.wav", "contains 'X'"),
    ("G/Crunch/100/a/b/1-0.wav", "magnitude folder 'b'"),  # one folder level at most
    ("G/Crunch/150/bridge/1-0.wav", "magnitude folder '150'"),
])
def test_paths_outside_the_layout_are_refused(relative, reason):
    with pytest.raises(layout.LayoutError, match=reason.replace("<", ".").replace(">", ".")):
        layout.parse_audio_path(Path("audio", relative), "audio")


def test_spectrogram_names_outside_the_layout_are_refused():
    for name in ("CrunchX100.npy", "CrunchX100X1-0.wav", "CrunchX100XaXbX1-0.wav.npy", "CrunchX100XX1-0.wav.npy",
                 "CrunchX100Xnote.wav.npy", "CrunchX100XbridgeXnote.wav.npy"):
        with pytest.raises(layout.LayoutError):
            layout.parse_spectrogram_name(name)


def test_list_spectrograms_reads_every_variant(tmp_path):
    names = ["CrunchX100X1-0.wav.npy", "CrunchX100X1-0_bridge.wav.npy", "CrunchX100XneckX1-0.wav.npy",
             "FlutteryX0XmiddleX1-5-2.wav.npy", "README.npy"]
    for name in names:
        np.save(tmp_path / name, np.zeros((512, 64), np.float32))
    notes = layout.list_spectrograms(tmp_path)
    assert sorted(n.spectrogram_name for n in notes) == sorted(names[:-1])
    assert {(n.string, n.fret) for n in notes} == {(1, 0), (1, 5)}
    assert processed_data.require_spectrograms(tmp_path) == notes


# --- the pre-processor on a release-like tree ------------------------------------------------

def release_like_tree(audio: Path) -> dict[str, list[Path]]:
    """The thesis's names, plus the same notes in the two variants the release may use."""
    plain = make_audio_tree(audio, descriptors=("Crunch",), magnitudes=(100,), frets=(0, 5))
    suffix, folder = [], []
    for fret, (number, pickup) in itertools.product((0, 5), enumerate(PICKUPS[:3], start=1)):
        note = plucked_note(329.63 * 2 ** (fret / 12), seed=10 * fret + number)
        suffix.append(write_audio(audio / "TestFX" / "Dark" / "50" / f"1-{fret}-{number}.wav", note))
        suffix.append(write_audio(audio / "TestFX" / "Dark" / "50" / f"1-{fret}_{pickup}.wav", note))
        folder.append(write_audio(audio / "TestFX" / "Dark" / "50" / pickup / f"1-{fret}.wav", note))
    return {"plain": plain, "suffix": suffix, "folder": folder}


def test_pre_processor_takes_the_release_variants_and_keeps_them_apart(project):
    files = release_like_tree(project / "audio")
    every = [path for paths in files.values() for path in paths]
    result = run_script(SCRIPT, "--jobs", "1", "--quiet", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"processed {len(every)} note(s)" in result.stdout
    assert "failed" not in result.stdout
    assert (f"layout: {len(files['plain'])} file(s) <STRING>-<FRET>.<ext>; {len(files['suffix'])} file(s) "
            f"with a suffix after <STRING>-<FRET>; {len(files['folder'])} file(s) in a folder below the "
            f"magnitude") in result.stdout

    written = sorted(p.name for p in (project / "spectrograms").iterdir())
    assert len(written) == len(every)
    assert "CrunchX100X1-0.wav.npy" in written and "FlutteryX0X1-5.wav.npy" in written  # thesis names
    assert "DarkX50X1-0-2.wav.npy" in written and "DarkX50X1-5_middle.wav.npy" in written
    assert "DarkX50XbridgeX1-0.wav.npy" in written and "DarkX50XneckX1-0.wav.npy" not in written
    min_max = processed_data.load_min_max(project / "minmax")
    assert set(min_max) == {f"spectrograms/{name}" for name in written}

    notes = processed_data.require_spectrograms(project / "spectrograms")
    for path in every:
        note = layout.parse_audio_path(path, project / "audio")
        assert note in notes
        processed_data.min_max_of(min_max, note)
        array = processed_data.load_spectrogram(project / "spectrograms" / note.spectrogram_name)
        assert array.shape == (512, 64)
    # Pickups of the same position are different notes with the same pitch.
    dark_e4 = [n for n in notes if n.descriptor == "Dark" and n.pitch == "E4"]
    assert len(dark_e4) == 9 and len({n.variant for n in dark_e4}) == 9

    again = run_script(SCRIPT, "--quiet", cwd=project)
    assert again.returncode == 0, again.stderr
    assert f"nothing new to process: {len(every)} note(s)" in again.stdout


def test_a_thesis_only_tree_reports_one_layout(project):
    files = make_audio_tree(project / "audio", descriptors=("Crunch",), magnitudes=(100,), frets=(0,))
    result = run_script(SCRIPT, "--jobs", "1", "--quiet", cwd=project)
    assert result.returncode == 0, result.stderr
    layout_lines = [line for line in result.stdout.splitlines() if line.startswith("layout:")]
    assert layout_lines == [f"layout: {len(files)} file(s) <STRING>-<FRET>.<ext>"]


def test_min_max_dict_pickles_as_a_plain_dict(tmp_path):
    values = {"spectrograms/CrunchX100X1-0.wav.npy": {"min": np.float32(-80.0), "max": np.float32(0.5)}}
    safe_io.save_pickle_atomic(tmp_path / layout.MINMAX_FILE_NAME, values)
    loaded = processed_data.load_min_max(tmp_path)
    assert loaded == values and loaded.path == tmp_path / layout.MINMAX_FILE_NAME
    # Saving what was read gives a plain dict again, which the thesis's code and the plain-data
    # reader both read.
    safe_io.save_pickle_atomic(tmp_path / "again" / layout.MINMAX_FILE_NAME, loaded)
    again = safe_io.load_plain_pickle(tmp_path / "again" / layout.MINMAX_FILE_NAME)
    assert type(again) is dict and again == values
    assert type(pickle.loads(pickle.dumps(loaded))) is dict


# --- spelling on the command line --------------------------------------------------------------

@pytest.mark.parametrize("given, canonical", [
    ("crunch", "Crunch"), ("CRUNCH", "Crunch"), ("Crunch", "Crunch"), ("wahwah", "WahWah"),
    ("Wahwah", "WahWah"), ("stuttering", "Stuttering"), (" dark ", "Dark"),
    ("Wah", "Wah"), ("loud", "loud"), ("", ""),
])
def test_canonical_descriptor(given, canonical):
    assert layout.canonical_descriptor(given) == canonical


@pytest.mark.parametrize("given, canonical", [
    ("f#5", "F#5"), ("e4", "E4"), ("E4", "E4"), ("c#6", "C#6"), ("d6", "D6"), (" a2", "A2"),
    ("Gb4", "Gb4"), ("h4", "h4"), ("E", "E"), ("f#", "f#"), ("", ""), ("e#4", "e#4"),
])
def test_canonical_pitch(given, canonical):
    assert layout.canonical_pitch(given) == canonical


def test_canonical_spellings_cover_every_descriptor_and_thesis_pitch():
    for descriptor in layout.DESCRIPTORS:
        assert layout.canonical_descriptor(descriptor.lower()) == descriptor
        assert layout.canonical_descriptor(descriptor.upper()) == descriptor
    for fret in layout.FRETS:
        pitch = layout.pitch_of(1, fret)
        assert layout.canonical_pitch(pitch.lower()) == pitch
        assert layout.note_name_to_midi(layout.canonical_pitch(pitch.lower())) == 64 + fret


# --- --pickup: choosing one of the release's pickup variants (issue 19) -------------------------

@pytest.fixture(scope="module")
def pickup_project(trained_project, tmp_path_factory) -> Path:
    """trained_project plus pickup variants of some notes, as the pre-processor names them: a folder
    below the magnitude (bridge) and a file-name suffix (_neck); Crunch 100 A4 only as variants."""
    import shutil

    root = tmp_path_factory.mktemp("pickups") / "project"
    shutil.copytree(trained_project, root)
    spectrograms, minmax_file = root / "spectrograms", root / "minmax" / layout.MINMAX_FILE_NAME
    min_max = safe_io.load_plain_pickle(minmax_file)
    variants = {"DarkX50X1-0.wav.npy": ["DarkX50XbridgeX1-0.wav.npy", "DarkX50X1-0_neck.wav.npy"],
                "FlutteryX0X1-0.wav.npy": ["FlutteryX0XbridgeX1-0.wav.npy"],
                "CrunchX100X1-5.wav.npy": ["CrunchX100XbridgeX1-5.wav.npy", "CrunchX100XneckX1-5.wav.npy"],
                "DarkX100X1-0.wav.npy": ["DarkX100XbridgeX1-0.wav.npy"]}
    for plain, names in variants.items():
        for scale, name in enumerate(names, start=1):
            np.save(spectrograms / name, np.load(spectrograms / plain) * (1 - 0.05 * scale))
            min_max[layout.minmax_key(name)] = min_max[layout.minmax_key(plain)]
    (spectrograms / "CrunchX100X1-5.wav.npy").unlink()
    del min_max[layout.minmax_key("CrunchX100X1-5.wav.npy")]
    safe_io.save_pickle_atomic(minmax_file, min_max)
    return root


FAST = ("--griffin-lim-iters", 2, "--runtime", "onnx", "--seed", 0)


@pytest.mark.parametrize("pickup, used", [
    (None, "DarkX50X1-0.wav.npy"), ("bridge", "DarkX50XbridgeX1-0.wav.npy"),
    ("neck", "DarkX50X1-0_neck.wav.npy"), ("_neck", "DarkX50X1-0_neck.wav.npy"), ("BRIDGE", "DarkX50XbridgeX1-0.wav.npy"),
])
def test_pickup_picks_the_variant_of_a_single_sample(pickup_project, tmp_path, pickup, used):
    extra = ("--pickup", pickup) if pickup else ()
    result = run_script("generate_single_sample.py", "Dark", 50, "E4", *extra, *FAST, "--output-dir", tmp_path / "out",
                        cwd=pickup_project)
    assert result.returncode == 0, result.stderr
    assert f"generated from spectrograms/{used}:" in result.stdout


def test_a_pickup_the_data_lacks_and_a_note_only_in_variants_are_one_line(pickup_project, tmp_path):
    from conftest import assert_one_line_error

    result = run_script("generate_single_sample.py", "Dark", 50, "E4", "--pickup", "middle", *FAST,
                        "--output-dir", tmp_path / "out", cwd=pickup_project)
    assert_one_line_error(result, "no Dark 50 E4 with --pickup middle", "(plain: no --pickup), bridge, neck")
    result = run_script("generate_single_sample.py", "Crunch", 100, "A4", *FAST, "--output-dir", tmp_path / "out",
                        cwd=pickup_project)
    assert_one_line_error(result, "Crunch 100 A4 is in the data only as pickup variants bridge, neck",
                          "--pickup NAME")
    assert not (tmp_path / "out").exists()
    result = run_script("generate_single_sample.py", "Crunch", 100, "A4", "--pickup", "neck", *FAST,
                        "--output-dir", tmp_path / "out", cwd=pickup_project)
    assert result.returncode == 0 and "CrunchX100XneckX1-5.wav.npy" in result.stdout, result.stderr


def test_pickup_in_the_interpolation_and_generation_from_a_description(pickup_project, tmp_path):
    from conftest import assert_one_line_error

    result = run_script("generate_timbre_interpolation.py", "Dark", 50, "E4", "Dark", 100, "E4", 3, "--pickup",
                        "bridge", *FAST, "--output-dir", tmp_path / "inter", cwd=pickup_project)
    assert result.returncode == 0, result.stderr
    assert ("interpolated from spectrograms/DarkX50XbridgeX1-0.wav.npy to spectrograms/DarkX100XbridgeX1-0.wav.npy"
            in result.stdout)
    result = run_script("generate_from_description.py", "Dark", 50, "E4", "--pickup", "bridge", *FAST, "-o",
                        tmp_path / "described.wav", cwd=pickup_project)
    assert result.returncode == 0, result.stderr
    assert "from spectrograms/FlutteryX0XbridgeX1-0.wav.npy)" in result.stdout and (tmp_path / "described.wav").is_file()
    result = run_script("generate_from_description.py", "Dark", 50, "E4", "--pickup", "neck", *FAST, "-o",
                        tmp_path / "none.wav", cwd=pickup_project)
    assert_one_line_error(result, "no clean E4 with --pickup neck", "bridge")
    assert not (tmp_path / "none.wav").exists()


@pytest.mark.parametrize("script", ["generate_single_sample.py", "generate_timbre_interpolation.py",
                                    "generate_from_description.py"])
def test_pickup_is_listed_in_help(script, tmp_path):
    result = run_script(script, "--help", cwd=tmp_path)
    assert result.returncode == 0 and "--pickup NAME" in result.stdout and "bridge" in result.stdout


def test_the_explorer_generates_from_a_pickup_variant(pickup_project):
    from fastapi.testclient import TestClient

    from semantic_timbre.explorer import create_app

    root = pickup_project
    app = create_app(root / "model", root / "spectrograms", root / "minmax", root / "audio", runtime="onnx",
                     griffin_lim_iters=2, log=lambda line: None)
    client = TestClient(app, base_url="http://127.0.0.1:8000")
    params = {"descriptor": "Dark", "magnitude": 50, "pitch": "E4"}
    plain = client.get("/api/generate.wav", params=params)
    bridge = client.get("/api/generate.wav", params={**params, "pickup": "bridge"})
    assert plain.status_code == bridge.status_code == 200 and plain.content != bridge.content
    assert "_bridge.wav" in bridge.headers["content-disposition"]
    missing = client.get("/api/generate.wav", params={**params, "pickup": "neck"})
    assert missing.status_code == 400 and "--pickup neck" in missing.json()["error"]
