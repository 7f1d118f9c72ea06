"""generate_single_sample.py and generate_timbre_interpolation.py on real small data and a tiny
trained model."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from conftest import assert_one_line_error, run_script, run_without_tensorflow_check
from semantic_timbre import pipeline as generation, layout
from semantic_timbre.data import processed_data, spectrogram

SINGLE = "generate_single_sample.py"
INTERPOLATION = "generate_timbre_interpolation.py"



@pytest.fixture(scope="module")
def vae(trained_project):
    from semantic_timbre.network.vae import VAE

    return VAE.load(trained_project / layout.MODEL_DIR)


def assert_note_file(path: Path) -> np.ndarray:
    info = soundfile.info(str(path))
    assert (info.samplerate, info.subtype, info.channels, info.format) == (22050, "PCM_24", 1, "WAV"), info
    audio, _ = soundfile.read(str(path))
    assert len(audio) == spectrogram.NUM_SAMPLES
    assert np.all(np.isfinite(audio)) and np.max(np.abs(audio)) > 0
    return audio


# --- the commands, end to end


def test_single_sample_writes_generated_and_original_reproducibly(trained, tmp_path):
    first = run_script(SINGLE, "Crunch", "100", "E4", "--seed", "3", cwd=trained)
    assert first.returncode == 0, first.stderr
    generated = trained / "singlesample" / "generated" / "0.wav"
    original = trained / "singlesample" / "original" / "0.wav"
    assert str(Path("singlesample") / "generated" / "0.wav") in first.stdout
    assert sorted(p.name for p in generated.parent.iterdir()) == ["0.wav"]
    assert sorted(p.name for p in original.parent.iterdir()) == ["0.wav"]
    a, b = assert_note_file(generated), assert_note_file(original)
    assert not np.allclose(a, b)

    again = run_script(SINGLE, "Crunch", "100", "E4", "--seed", "3", "--output-dir", tmp_path / "again",
                       cwd=trained)
    assert again.returncode == 0, again.stderr
    np.testing.assert_array_equal(a, assert_note_file(tmp_path / "again" / "generated" / "0.wav"))
    np.testing.assert_array_equal(b, assert_note_file(tmp_path / "again" / "original" / "0.wav"))


def test_interpolation_writes_steps_and_removes_stale_files(trained):
    generated = trained / "interpolated_samples" / "generated"
    generated.mkdir(parents=True, exist_ok=True)
    for stale in ("4.wav", "7.wav", "notes.txt", "take1.wav"):
        (generated / stale).write_bytes(b"old")
    result = run_script(INTERPOLATION, "Crunch", "100", "E4", "Dark", "50", "A4", "4", "--seed", "1",
                        cwd=trained)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in generated.iterdir()) == ["0.wav", "1.wav", "2.wav", "3.wav", "notes.txt",
                                                           "take1.wav"]
    for index in range(4):
        assert_note_file(generated / f"{index}.wav")
        assert str(Path("interpolated_samples") / "generated" / f"{index}.wav") in result.stdout
    originals = trained / "interpolated_samples" / "original"
    assert sorted(p.name for p in originals.iterdir()) == ["0.wav", "1.wav"]
    for path in originals.iterdir():
        assert_note_file(path)


@pytest.mark.parametrize("script, arguments, fragments", [
    (SINGLE, ["Shiny", "50", "E4"], ["unknown descriptor 'Shiny'", "WahWah", "MAGNITUDE one of 0, 25, 50, 75, 100"]),
    (SINGLE, ["Crunch", "120", "E4"], ["magnitude '120'", "0, 25, 50, 75, 100"]),
    (SINGLE, ["Crunch", "fifty", "E4"], ["magnitude 'fifty'"]),
    (SINGLE, ["Crunch", "50", "H4"], ["'H4'", "E4, F4, F#4"]),
    (SINGLE, ["Crunch", "50", "E7"], ["E7", "outside the guitar's range"]),
    (SINGLE, ["Crunch", "75", "E4"], ["no spectrogram for Crunch 75 E4", "Crunch 50 E4, Crunch 100 E4",
                                      "process_audio_into_spectrograms.py"]),
    (SINGLE, ["Crunch", "50", "G4"], ["no spectrogram for Crunch 50 G4", "Crunch 50 E4", "Crunch 50 A4"]),
    (SINGLE, ["Bright", "50", "E4"], ["the data has no Bright notes"]),
    (SINGLE, ["Crunch", "50", "A4", "--string", "6"], ["A4 cannot be played on string 6"]),
    (SINGLE, ["Crunch", "50", "E4", "--griffin-lim-iters", "0"], ["--griffin-lim-iters"]),
    (INTERPOLATION, ["Crunch", "50", "E4", "Dark", "50", "E4", "11"], ["STEPS must be a whole number from 3 to 10"]),
    (INTERPOLATION, ["Crunch", "50", "E4", "Dark", "50", "E4", "2"], ["STEPS must be a whole number from 3 to 10"]),
    (INTERPOLATION, ["Crunch", "50", "E4", "Dirt", "50", "E4", "5"], ["the data has no Dirt notes"]),
])
def test_bad_arguments_give_one_line_and_write_nothing(trained_project, tmp_path, script, arguments, fragments):
    output = tmp_path / "out"
    result = run_script(script, *arguments, "--spectrograms-dir", trained_project / "spectrograms",
                        "--minmax-dir", trained_project / "minmax", "--model-dir", trained_project / "model",
                        "--output-dir", output, cwd=tmp_path)
    assert_one_line_error(result, *fragments)
    assert not output.exists()


def test_missing_arguments_show_usage(trained_project):
    result = run_script(SINGLE, "Crunch", "50", cwd=trained_project)
    assert result.returncode == 2 and "usage:" in result.stderr and "Traceback" not in result.stderr


def test_missing_model_and_spectrograms_name_the_step_to_run_first(trained, tmp_path):
    shutil.rmtree(trained / "model")
    result = run_script(SINGLE, "Crunch", "100", "E4", cwd=trained)
    assert_one_line_error(result, "train_timbre_generation_vae.py")
    shutil.rmtree(trained / "spectrograms")
    result = run_script(INTERPOLATION, "Crunch", "100", "E4", "Dark", "50", "A4", "3", cwd=trained)
    assert_one_line_error(result, "process_audio_into_spectrograms.py")
    assert not (trained / "singlesample").exists() and not (trained / "interpolated_samples").exists()


# --- the library


def test_find_note_by_name_and_clean_notes(trained_project):
    folder = trained_project / "spectrograms"
    assert generation.find_note("Crunch", "100", "A4", spectrograms_dir=folder) == \
        layout.Note("Crunch", 100, 1, 5, "1-5.wav")
    # Magnitude 0: the descriptor's own clean note when present, else the thesis's Fluttery/0 note.
    assert generation.find_note("Dark", 0, "E5", spectrograms_dir=folder).spectrogram_name == "FlutteryX0X1-12.wav.npy"


def test_find_note_prefers_descriptor_clean_note_and_other_strings(trained_project, tmp_path):
    folder = tmp_path / "spectrograms"
    folder.mkdir()
    source = trained_project / "spectrograms" / "CrunchX50X1-0.wav.npy"
    for name in ("CrunchX0X1-0.wav.npy", "FlutteryX0X1-0.wav.npy", "CrunchX50X6-0.wav.npy",
                 "CrunchX50X2-5.wav.npy", "CrunchX50X3-9.wav.npy", "CrunchX35X1-0.wav.npy"):
        shutil.copy(source, folder / name)
    assert generation.find_note("Crunch", 0, "E4", spectrograms_dir=folder).descriptor == "Crunch"
    # E2 sits only on string 6; a magnitude outside the thesis's list is allowed when present.
    assert generation.find_note("Crunch", 50, "E2", spectrograms_dir=folder).string == 6
    assert generation.find_note("Crunch", 35, "E4", spectrograms_dir=folder).magnitude == 35
    # E4 is on strings 2 and 3 here but not on string 1: ask which.
    with pytest.raises(generation.NoteRequestError, match="--string"):
        generation.find_note("Crunch", 50, "E4", spectrograms_dir=folder)
    assert generation.find_note("Crunch", 50, "E4", string=3, spectrograms_dir=folder).fret == 9
    values = generation.available_values(layout.list_spectrograms(folder))
    assert 35 in values.magnitudes and "E2" in values.pitches and values.pitches[0] == "E2"
    assert values.strings == (1, 2, 3, 6)


def test_interpolation_end_points_are_the_encodings_of_the_two_notes(vae, trained_project):
    folder = trained_project / "spectrograms"
    first, second = (processed_data.load_spectrogram(folder / name)
                     for name in ("CrunchX100X1-0.wav.npy", "DarkX50X1-5.wav.npy"))
    latents = generation.interpolation_latents(vae, first, second, 5, use_mean=True)
    mu, _, _ = vae.encode(np.stack([first, second]))
    assert latents.shape == (5, vae.latent_space_dimension)
    np.testing.assert_array_equal(latents[0], mu[0])
    np.testing.assert_array_equal(latents[-1], mu[1])
    np.testing.assert_allclose(latents[2], (mu[0] + mu[1]) / 2, rtol=1e-5, atol=1e-6)
    decoded = vae.decode(latents)
    np.testing.assert_allclose(decoded[[0, -1]], vae.decode(mu), atol=1e-6)
    # Sampled codes (the thesis's default) are reproducible with a seed and differ from mu.
    sampled = generation.interpolation_latents(vae, first, second, 3, seed=7)
    np.testing.assert_array_equal(sampled, generation.interpolation_latents(vae, first, second, 3, seed=7))
    assert not np.allclose(sampled[0], mu[0])


def test_min_max_interpolate_linearly():
    np.testing.assert_allclose(generation.interpolate(-80.0, -40.0, 5), [-80, -70, -60, -50, -40])


def test_default_inversion_beats_the_thesis_inversion(trained_project):
    note = layout.Note("Fluttery", 0, 1, 5, "1-5.wav")
    normalised = processed_data.load_spectrogram(trained_project / "spectrograms" / note.spectrogram_name)
    low, high = processed_data.min_max_of(processed_data.load_min_max(trained_project / "minmax"), note)
    target = spectrogram.librosa.db_to_amplitude(spectrogram.denormalise(normalised, low, high))
    ours = spectrogram.spectral_convergence(generation.invert(normalised, low, high, seed=0), target)
    thesis = spectrogram.spectral_convergence(
        generation.invert(normalised, low, high, thesis_inversion=True, seed=0), target)
    assert ours < thesis
    assert ours < 0.2


def test_write_numbered_wavs_removes_only_stale_numbered_files(tmp_path):
    folder = tmp_path / "generated"
    folder.mkdir()
    for name in ("2.wav", "10.wav", "1.wav.bak", "x.wav"):
        (folder / name).write_bytes(b"old")
    tone = np.sin(np.arange(1000) / 5).astype(np.float32) * 0.5
    written = generation.write_numbered_wavs(folder, [tone, tone])
    assert [p.name for p in written] == ["0.wav", "1.wav"]
    assert sorted(p.name for p in folder.iterdir()) == ["0.wav", "1.wav", "1.wav.bak", "x.wav"]
    with pytest.raises(ValueError):
        generation.write_numbered_wavs(folder, [np.array([np.nan, 0.0])])
    assert sorted(p.name for p in folder.iterdir()) == ["0.wav", "1.wav", "1.wav.bak", "x.wav"]


# --- nothing lost, whatever the user does

def test_an_unwritable_output_folder_is_reported_before_any_work_and_nothing_changes(trained):
    # `original` is a file where the folder should be: the generated note must not be written alone.
    generated = trained / "singlesample" / "generated" / "0.wav"
    generated.parent.mkdir(parents=True)
    generated.write_bytes(b"the previous run's note")
    (trained / "singlesample" / "original").write_bytes(b"in the way")
    result = run_script(SINGLE, "Crunch", "100", "E4", cwd=trained)
    assert_one_line_error(result, "singlesample/original")
    assert generated.read_bytes() == b"the previous run's note"
    assert sorted(p.name for p in generated.parent.iterdir()) == ["0.wav"]  # no temporary files


@pytest.fixture
def file_size_limit():
    """Files above 20 kB cannot be written (EFBIG), as on a full disk: a WAV note is 49 kB."""
    import resource
    import signal

    previous_signal = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    yield lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, hard))
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    signal.signal(signal.SIGXFSZ, previous_signal)


def test_a_full_disk_gives_one_line_and_leaves_the_previous_pair(trained, file_size_limit):
    first = run_script(SINGLE, "Crunch", "100", "E4", "--seed", "1", cwd=trained)
    assert first.returncode == 0, first.stderr
    folder = trained / "singlesample"
    before = {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}
    file_size_limit()
    result = run_script(SINGLE, "Dark", "50", "A4", "--seed", "1", cwd=trained)
    assert_one_line_error(result, "File too large", "free space")
    after = {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}
    assert after == before and len(after) == 2  # both old files, no temporaries


def test_write_outputs_writes_all_files_or_none(tmp_path):
    tone = np.sin(np.arange(1000) / 5).astype(np.float32) * 0.5
    good = tmp_path / "generated"
    good.mkdir()
    (good / "0.wav").write_bytes(b"old")
    (tmp_path / "original").write_bytes(b"a file where a folder should be")
    with pytest.raises(OSError):
        generation.write_outputs({good: [tone], tmp_path / "original": [tone]})
    assert (good / "0.wav").read_bytes() == b"old" and sorted(p.name for p in good.iterdir()) == ["0.wav"]


def test_audio_that_would_clip_is_scaled_below_full_scale_with_a_notice(trained):
    # A loud note: the min/max of Crunch 100 E4 moved 12 dB up, so its inversion peaks above full scale.
    from semantic_timbre import safe_io

    minmax = trained / "minmax" / "min_max_values.pkl"
    values = processed_data.load_min_max(trained / "minmax")
    key = "spectrograms/CrunchX100X1-0.wav.npy"
    values[key] = {"min": values[key]["min"] + np.float32(12), "max": values[key]["max"] + np.float32(12)}
    safe_io.save_pickle_atomic(minmax, values)
    result = run_script(SINGLE, "Crunch", "100", "E4", "--seed", "2", cwd=trained)
    assert result.returncode == 0, result.stderr
    assert "would have clipped" in result.stdout and "to a peak of -1 dBFS" in result.stdout
    for name in ("generated", "original"):
        audio, _ = soundfile.read(trained / "singlesample" / name / "0.wav")
        assert 0.85 < np.max(np.abs(audio)) < 0.9  # -1 dBFS is 0.891
        assert np.sum(np.abs(audio) >= 0.999) == 0


def test_limit_peak_leaves_quiet_audio_alone():
    quiet = np.array([0.5, -0.25, 0.0], np.float32)
    same, gain = spectrogram.limit_peak(quiet)
    assert gain == 0.0 and np.array_equal(same, quiet)
    loud, gain = spectrogram.limit_peak(np.array([2.0, -1.0], np.float32), ceiling_db=-6.0)
    assert gain == pytest.approx(-12.02, abs=0.01) and np.max(np.abs(loud)) == pytest.approx(10 ** (-6 / 20))


def test_descriptors_and_pitches_are_accepted_whatever_their_case(trained):
    result = run_script(SINGLE, "crunch", "100", "e4", "--seed", "1", cwd=trained)
    assert result.returncode == 0, result.stderr
    assert "CrunchX100X1-0.wav.npy" in result.stdout
    result = run_script(INTERPOLATION, "CRUNCH", "100", "e4", "dark", "50", "a4", "3", cwd=trained)
    assert result.returncode == 0, result.stderr


def test_griffin_lim_iterations_have_an_upper_bound(trained):
    result = run_script(SINGLE, "Crunch", "100", "E4", "--griffin-lim-iters", "100000", cwd=trained)
    assert_one_line_error(result, "--griffin-lim-iters must be from 1 to 1000")
    assert not (trained / "singlesample").exists()


def test_a_missing_model_is_reported_before_tensorflow_starts(trained):
    shutil.rmtree(trained / "model")
    result, tensorflow_started = run_without_tensorflow_check(SINGLE, "Crunch", "100", "E4", cwd=trained)
    assert_one_line_error(result, "model/ holds no trained model", "train_timbre_generation_vae.py")
    assert not tensorflow_started
    assert not (trained / "singlesample").exists()
