"""Applying a descriptor to a user's note: directions, their cache, interpolation, onset
alignment, and the command line on a small real trained model."""

from __future__ import annotations

import os
import re
import shutil

import numpy as np
import pytest
import soundfile

from semantic_timbre import notes
from conftest import assert_one_line_error, plucked_note, run_script, write_audio
from semantic_timbre.latent import directions as descriptor_control
from semantic_timbre import layout
from semantic_timbre.data import onset, spectrogram
from semantic_timbre.latent.directions import DescriptorRequestError

SCRIPT = "apply_timbre_descriptor.py"
CACHE = descriptor_control.DIRECTIONS_FILE_NAME


@pytest.fixture(scope="module")
def applied_project(trained_project, tmp_path_factory):
    """A private copy of the trained project (the command writes a cache into its model/)."""
    root = tmp_path_factory.mktemp("apply") / "project"
    shutil.copytree(trained_project, root)
    return root


@pytest.fixture(scope="module")
def vae(applied_project):
    from semantic_timbre.network.vae import VAE

    return VAE.load(applied_project / layout.MODEL_DIR)


def fresh_copy(trained_project, tmp_path):
    root = tmp_path / "project"
    shutil.copytree(trained_project, root)
    return root


# --- Directions and interpolation on plain arrays ----------------------------------------------


def test_directions_are_descriptor_means_minus_the_clean_mean():
    codes = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 1.0], [3.0, 1.0], [5.0, 5.0]])
    descriptors = ["Fluttery", "Fluttery", "Crunch", "Crunch", "Crunch"]
    magnitudes = [0, 0, 50, 50, 100]
    directions = descriptor_control.descriptor_directions(codes, descriptors, magnitudes)
    assert set(directions) == {"Crunch"}
    np.testing.assert_allclose(directions["Crunch"][50], [1.0, 1.0])
    np.testing.assert_allclose(directions["Crunch"][100], [4.0, 5.0])
    with pytest.raises(DescriptorRequestError, match="no clean notes"):
        descriptor_control.descriptor_directions(codes[2:], descriptors[2:], magnitudes[2:])


def test_magnitudes_between_the_data_sets_interpolate_and_above_clamp():
    directions = {"Fuzz": {25: np.array([1.0, 0.0]), 50: np.array([2.0, 0.0]),
                           75: np.array([2.0, 2.0]), 100: np.array([4.0, 4.0])}}
    np.testing.assert_allclose(descriptor_control.direction_at(directions, "Fuzz", 0), [0, 0])
    np.testing.assert_allclose(descriptor_control.direction_at(directions, "Fuzz", 10), [0.4, 0])
    np.testing.assert_allclose(descriptor_control.direction_at(directions, "Fuzz", 50), [2, 0])
    np.testing.assert_allclose(descriptor_control.direction_at(directions, "Fuzz", 60), [2, 0.8])
    np.testing.assert_allclose(descriptor_control.direction_at(directions, "Fuzz", 100), [4, 4])
    only_low = {"Fuzz": {25: np.array([1.0, 0.0]), 50: np.array([2.0, 0.0])}}
    np.testing.assert_allclose(descriptor_control.direction_at(only_low, "Fuzz", 90), [2, 0])


@pytest.mark.parametrize("descriptor, magnitude, message", [
    ("Fizz", 50, "choose one of Bright, Crunch"),
    ("Fuzz", 150, "outside 0..100"),
    ("Fuzz", -5, "outside 0..100"),
    ("Dark", 50, "no notes of Dark above magnitude 0; choose one of Fuzz"),
])
def test_refused_requests_say_what_is_allowed(descriptor, magnitude, message):
    directions = {"Fuzz": {100: np.ones(2)}}
    with pytest.raises(DescriptorRequestError, match=message):
        descriptor_control.direction_at(directions, descriptor, magnitude)


# --- With the trained model -----------------------------------------------------------------------


def test_cache_is_written_reused_and_remeasured_when_the_model_changes(trained_project, tmp_path):
    from semantic_timbre.network.vae import VAE

    root = fresh_copy(trained_project, tmp_path)
    folders = dict(model_dir=root / "model", spectrograms_dir=root / "spectrograms", minmax_dir=root / "minmax")
    model = VAE.load(root / "model")
    first, computed = descriptor_control.load_or_compute_directions(model, progress=False, **folders)
    assert computed
    assert set(first) == {"Crunch", "Dark", "Fluttery"} and set(first["Crunch"]) == {50, 100}
    cache = root / "model" / CACHE
    stamp = cache.stat().st_mtime_ns
    assert (root / "model" / descriptor_control.FINGERPRINT_FILE_NAME).is_file()

    again, computed = descriptor_control.load_or_compute_directions(model, progress=False, **folders)
    assert not computed and cache.stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(again["Dark"][100], first["Dark"][100])

    # Change the model: perturb the encoder's mean layer and save it over the old one.
    layer = model.encoder.get_layer("mu")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel * 1.5, bias + 0.1])
    model.save(str(root / "model"))
    changed, computed = descriptor_control.load_or_compute_directions(
        VAE.load(root / "model"), progress=False, **folders)
    assert computed
    assert not np.allclose(changed["Dark"][100], first["Dark"][100])

    # Change the data: a spectrogram removed.
    (root / "spectrograms" / "DarkX50X1-0.wav.npy").unlink()
    _, computed = descriptor_control.load_or_compute_directions(model, progress=False, **folders)
    assert computed


def test_magnitude_60_lies_between_50_and_100_in_latent_space(applied_project, vae):
    folders = dict(model_dir=applied_project / "model", spectrograms_dir=applied_project / "spectrograms",
                   minmax_dir=applied_project / "minmax")
    directions, _ = descriptor_control.load_or_compute_directions(vae, progress=False, **folders)
    at_50, at_100 = directions["Crunch"][50], directions["Crunch"][100]
    at_60 = descriptor_control.direction_at(directions, "Crunch", 60)
    np.testing.assert_allclose(at_60, 0.8 * at_50 + 0.2 * at_100, rtol=1e-5, atol=1e-6)
    between = np.linalg.norm(at_60 - at_50) + np.linalg.norm(at_100 - at_60)
    assert between == pytest.approx(np.linalg.norm(at_100 - at_50), rel=1e-4)

    note, _, _ = spectrogram.note_to_spectrogram(applied_project / "audio" / "ModulationFX" / "Fluttery" / "0" / "1-5.wav")
    untouched = descriptor_control.apply_direction(vae, note, np.zeros_like(at_60))
    # A large shift, so that even the barely trained test model's decoder output must change.
    moved = descriptor_control.apply_direction(vae, note, np.full_like(at_60, 10.0))
    assert untouched.shape == moved.shape == spectrogram.SPECTROGRAM_SHAPE
    assert np.all((moved >= 0) & (moved <= 1)) and not np.allclose(untouched, moved)


def test_a_stereo_48k_note_of_another_length_becomes_a_22050_hz_24_bit_file(applied_project, tmp_path):
    note = plucked_note(196.0, sample_rate=48000, seconds=1.7, seed=7)
    stereo = np.stack([note, 0.8 * np.roll(note, 30)], axis=1)
    source = write_audio(tmp_path / "my note.flac", stereo, sample_rate=48000, subtype="PCM_16")
    output = tmp_path / "out" / "fuzzed.wav"
    result = run_script(SCRIPT, source, "Crunch", 60, "-o", output, "--seed", 1, "--griffin-lim-iters", 8,
                        cwd=applied_project)
    assert result.returncode == 0, result.stderr
    info = soundfile.info(output)
    assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_24")
    audio, _ = soundfile.read(output)
    assert len(audio) == spectrogram.NUM_SAMPLES and np.all(np.isfinite(audio)) and np.abs(audio).max() > 0
    assert (applied_project / "model" / CACHE).is_file()
    stamp = (applied_project / "model" / CACHE).stat().st_mtime_ns

    # The default output name, in a second run that reuses the cache.
    result = run_script(SCRIPT, source, "Dark", 100, "--griffin-lim-iters", 4, cwd=applied_project)
    assert result.returncode == 0, result.stderr
    assert "using cached descriptor directions" in result.stdout
    assert (applied_project / "model" / CACHE).stat().st_mtime_ns == stamp
    assert soundfile.info(applied_project / "singlesample" / "generated" / "my note_Dark100.wav").samplerate == 22050


def _bad_inputs(folder):
    folder.mkdir()
    corrupt = folder / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEnot really audio" * 10)
    silent = write_audio(folder / "silent.wav", np.zeros(44100, dtype=np.float32))
    good = write_audio(folder / "good.wav", plucked_note(330.0))
    return {"missing": folder / "nowhere.wav", "corrupt": corrupt, "silent": silent, "good": good}


@pytest.mark.parametrize("case, descriptor, magnitude, message", [
    ("missing", "Crunch", 50, "does not exist"),
    ("corrupt", "Crunch", 50, "cannot be read as audio"),
    ("silent", "Crunch", 50, "silent"),
    ("good", "Fizz", 50, "is not a descriptor; choose one of Bright"),
    ("good", "Crunch", 150, "outside 0..100"),
    ("good", "Fuzz", 50, "no notes of Fuzz above magnitude 0; choose one of Crunch, Dark, Fluttery"),
])
def test_bad_requests_give_one_line_and_write_nothing(trained_project, tmp_path, case, descriptor, magnitude, message):
    root = trained_project  # read-only here: none of these may write anything
    source = _bad_inputs(tmp_path / "inputs")[case]
    output = tmp_path / "result.wav"
    result = run_script(SCRIPT, source, descriptor, magnitude, "-o", output, cwd=root)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert result.stderr.strip().splitlines()[-1] == errors[0] and "Traceback" not in result.stderr
    assert not output.exists()
    leftovers = [name for name in os.listdir(tmp_path) if name.startswith(".result")]
    assert not leftovers
    assert not (trained_project / "model" / CACHE).exists()


def test_without_a_model_or_data_the_step_to_run_is_named(processed_project, tmp_path):
    source = write_audio(tmp_path / "note.wav", plucked_note(330.0))
    result = run_script(SCRIPT, source, "Crunch", 50, "-o", tmp_path / "x.wav", cwd=processed_project)
    assert result.returncode == 2 and "train_timbre_generation_vae.py" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_script(SCRIPT, source, "Crunch", 50, "-o", tmp_path / "x.wav", cwd=empty)
    assert result.returncode == 2 and "process_audio_into_spectrograms.py" in result.stderr
    assert not (tmp_path / "x.wav").exists()


def test_the_input_note_is_never_overwritten_and_other_files_only_with_overwrite(applied_project, tmp_path):
    source = write_audio(tmp_path / "my_note.wav", plucked_note(330.0))
    recording = source.read_bytes()
    for output in (source, tmp_path / "." / "my_note.wav"):
        for extra in ([], ["--overwrite"]):
            result = run_script(SCRIPT, source, "Crunch", 50, "-o", output, *extra, cwd=applied_project)
            assert_one_line_error(result, "is the input note itself")
            assert source.read_bytes() == recording
    existing = tmp_path / "earlier.wav"
    existing.write_bytes(b"an earlier result")
    result = run_script(SCRIPT, source, "Crunch", 50, "-o", existing, cwd=applied_project)
    assert_one_line_error(result, "already exists", "--overwrite")
    assert existing.read_bytes() == b"an earlier result"
    result = run_script(SCRIPT, source, "crunch", 50, "-o", existing, "--overwrite", "--seed", "1",
                        cwd=applied_project)
    assert result.returncode == 0, result.stderr
    assert soundfile.info(str(existing)).samplerate == spectrogram.SAMPLE_RATE


def test_a_folder_as_input_and_a_truncated_note_are_named(applied_project, tmp_path):
    result = run_script(SCRIPT, tmp_path, "Crunch", 50, "-o", tmp_path / "out.wav", cwd=applied_project)
    assert_one_line_error(result, "is a folder")
    short = write_audio(tmp_path / "short.wav", plucked_note(330.0, seconds=0.037))
    result = run_script(SCRIPT, short, "Crunch", 50, "-o", tmp_path / "out.wav", "--seed", "1", cwd=applied_project)
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stderr and "lasts only 37 ms" in result.stderr


# --- Onset alignment ----------------------------------------------------------------------------

LEAD_SECONDS = 2.0
FEW_MS = 0.005  # what trimming may take off a note that starts at once


def _noise(shape, dbfs, seed):
    return (10 ** (dbfs / 20) * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


@pytest.mark.parametrize("noise_dbfs", [None, -50.0])
def test_leading_silence_finds_the_note_after_silence_or_noise(noise_dbfs):
    rate = spectrogram.SAMPLE_RATE
    note = plucked_note(110.0, sample_rate=rate, seconds=1.0, seed=2)
    note = note / np.abs(note).max() * 10 ** (-6 / 20)  # peaks at -6 dBFS
    late = np.concatenate([np.zeros(int(LEAD_SECONDS * rate), np.float32), note])
    if noise_dbfs is not None:  # noise under the whole recording, the note included
        late = late + _noise(late.shape, noise_dbfs, seed=1)
        note = late[int(LEAD_SECONDS * rate):]
    skipped = onset.leading_silence(late, sample_rate=rate)
    # The pre-roll (5 ms) and the RMS frame put the start a little before the onset, never after.
    assert LEAD_SECONDS - 0.02 < skipped / rate <= LEAD_SECONDS
    assert onset.leading_silence(late, sample_rate=rate, pre_roll=0.0) - skipped == round(0.005 * rate)
    # A note that starts at once (as the data set's do) is left (almost) as it is.
    assert onset.leading_silence(note, sample_rate=rate) <= FEW_MS * rate
    # Multi-channel input: any loud channel counts.
    stereo = np.stack([late, 0.5 * late])
    assert abs(onset.leading_silence(stereo, sample_rate=rate) - skipped) <= 64


def test_leading_silence_of_silence_is_nothing_and_bad_options_are_refused():
    assert onset.leading_silence(np.zeros(22050, np.float32), sample_rate=22050) == 0
    assert onset.leading_silence(np.zeros(0, np.float32), sample_rate=22050) == 0
    with pytest.raises(ValueError, match="pre_roll"):
        onset.leading_silence(np.ones(100), sample_rate=22050, pre_roll=-0.01)
    with pytest.raises(ValueError, match="top_db"):
        onset.leading_silence(np.ones(100), sample_rate=22050, top_db=0)


@pytest.fixture(scope="module")
def late_note(tmp_path_factory):
    """A 44.1 kHz stereo recording: 2 s of low background noise (-50 dBFS), then a note peaking at
    -6 dBFS (the noise goes on under it); and the same note cut at its onset, in its own file."""
    folder = tmp_path_factory.mktemp("onset")
    rate, lead = 44100, int(LEAD_SECONDS * 44100)
    note = plucked_note(196.0, sample_rate=rate, seconds=1.2, seed=4)
    note = note / np.abs(note).max() * 10 ** (-6 / 20)
    mono = np.concatenate([np.zeros(lead, np.float32), note])
    stereo = np.stack([mono, 0.9 * np.roll(mono, 20)], axis=1) + _noise((len(mono), 2), -50.0, seed=3)
    return {"recording": write_audio(folder / "late note.wav", stereo),
            "note": write_audio(folder / "note alone.wav", stereo[lead:])}


def test_the_window_starts_at_the_onset_and_matches_the_note_without_its_silence(late_note, capsys):
    window, skipped = notes.note_window(late_note["recording"])
    assert window.shape == (spectrogram.NUM_SAMPLES,)
    assert LEAD_SECONDS - 0.02 < skipped / spectrogram.SAMPLE_RATE <= LEAD_SECONDS

    own, own_low, own_high = spectrogram.note_to_spectrogram(late_note["note"])
    aligned, low, high = notes.read_note(late_note["recording"])
    said = re.search(r"aligned at the onset: skipped (\d+\.\d\d) s of leading silence \(--no-trim",
                     capsys.readouterr().out)
    assert said and float(said.group(1)) == pytest.approx(skipped / spectrogram.SAMPLE_RATE, abs=0.005)
    np.testing.assert_array_equal(aligned, spectrogram.normalise(spectrogram.log_spectrogram(window))[0])
    thesis, thesis_low, thesis_high = notes.read_note(late_note["recording"], trim=False)
    assert capsys.readouterr().out == ""

    aligned_error, thesis_error = np.abs(aligned - own).mean(), np.abs(thesis - own).mean()
    assert aligned_error < 0.1 and aligned_error < thesis_error / 5, (aligned_error, thesis_error)
    assert abs(high - own_high) < 1.0 and thesis_high < own_high - 40  # the untrimmed window is noise
    # --no-trim: the thesis's window, the first 0.74 s of the file, exactly.
    for mine, theirs in zip((thesis, thesis_low, thesis_high), spectrogram.note_to_spectrogram(late_note["recording"])):
        np.testing.assert_array_equal(mine, theirs)
    window, skipped = notes.note_window(late_note["recording"], trim=False)
    assert skipped == 0
    np.testing.assert_array_equal(window, spectrogram.load_note(late_note["recording"]))


def test_a_note_that_starts_at_once_is_read_as_the_thesis_read_it(late_note, capsys):
    window, skipped = notes.note_window(late_note["note"])
    assert skipped <= FEW_MS * spectrogram.SAMPLE_RATE
    normalised, low, high = notes.read_note(late_note["note"])
    assert capsys.readouterr().out == ""
    # This one (noise and all) skips nothing, so it gets exactly the data set's pre-processing.
    assert skipped == 0
    np.testing.assert_array_equal(window, spectrogram.load_note(late_note["note"]))
    for mine, theirs in zip((normalised, low, high), spectrogram.note_to_spectrogram(late_note["note"])):
        np.testing.assert_array_equal(mine, theirs)


def test_the_command_says_it_skipped_the_silence_and_no_trim_keeps_the_first_074_s(applied_project, late_note,
                                                                                  tmp_path):
    outputs = {}
    for name, extra in (("aligned", []), ("thesis", ["--no-trim"])):
        outputs[name] = tmp_path / f"{name}.wav"
        result = run_script(SCRIPT, late_note["recording"], "Dark", 50, "-o", outputs[name], "--seed", 1,
                            "--griffin-lim-iters", 4, *extra, cwd=applied_project)
        assert result.returncode == 0, result.stderr
        said = re.search(r"aligned at the onset: skipped (\d+\.\d\d) s of leading silence", result.stdout)
        if name == "aligned":
            assert said and abs(float(said.group(1)) - LEAD_SECONDS) <= 0.02, result.stdout
            assert "--no-trim for the thesis's exact window" in result.stdout
        else:
            assert said is None and "aligned" not in result.stdout, result.stdout
    # The untrimmed window is background noise, so its result is some 50 dB quieter.
    peak = {name: np.abs(soundfile.read(path)[0]).max() for name, path in outputs.items()}
    assert 20 * np.log10(peak["aligned"] / peak["thesis"]) > 20, peak
