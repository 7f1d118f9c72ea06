"""What a file can do to the commands (issue 19): decoding bounded by what is used, headers of
absurd sample rates, channel counts or durations refused before anything is decoded, NaN samples,
FIFOs and symlink loops named; each fed for real, with the one-line error, the exit status and
nothing written checked."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile

from semantic_timbre import notes
from conftest import REPO_ROOT, assert_one_line_error, plucked_note, run_script, write_audio
from semantic_timbre.data import spectrogram

APPLY = "apply_timbre_descriptor.py"


def wav_with_header_rate(path: Path, rate: int, samples: int = 10_000) -> Path:
    """A 16-bit mono WAV whose header gives `rate` (libsndfile writes no rate below 1 Hz or odd
    ones at all, so the rate field is patched in place: the file is otherwise a valid WAV)."""
    soundfile.write(path, (0.3 * np.sin(np.arange(samples) / 5)).astype(np.float32), 44100, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    at = data.index(b"fmt ") + 8
    struct.pack_into("<II", data, at + 4, rate, rate * 2)  # sample rate, byte rate
    path.write_bytes(bytes(data))
    return path


def test_absurd_header_rates_are_refused_before_decoding(tmp_path):
    for rate, said in ((1, "sample rate of 1 Hz"), (4_000, "sample rate of 4000 Hz"),
                       (1_000_000, "sample rate of 1000000 Hz")):
        path = wav_with_header_rate(tmp_path / f"rate{rate}.wav", rate)
        assert soundfile.info(str(path)).samplerate == rate
        with pytest.raises(spectrogram.AudioInputError, match=said):
            spectrogram.load_note(path)
        with pytest.raises(spectrogram.AudioInputError, match="8,000-384,000 Hz"):
            notes.note_window(path)


def test_the_command_refuses_a_tiny_file_whose_header_says_1_hz(trained_project, tmp_path):
    """The issue's 20 KB WAV at '1 Hz' (9 GB before): one line, exit 2, nothing written."""
    note = wav_with_header_rate(tmp_path / "one hertz.wav", 1)
    assert note.stat().st_size < 25_000
    output = tmp_path / "out" / "result.wav"
    result = run_script(APPLY, note, "Crunch", 50, "-o", output, cwd=trained_project)
    assert_one_line_error(result, "one hertz.wav", "sample rate of 1 Hz", "give a WAV")
    assert result.returncode == 2 and not output.exists()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["one hertz.wav", "out"]


def test_a_long_file_is_refused_and_a_long_one_within_the_limit_is_read_in_part(tmp_path):
    rate = 8_000
    long = tmp_path / "long.flac"
    with soundfile.SoundFile(long, "w", rate, 1, subtype="PCM_16") as sound:
        sound.write(plucked_note(330, rate, seconds=1.0))
        block = np.zeros(rate * 60, np.float32)
        for _ in range(11):  # 11 minutes and a second: past the 10-minute limit
            sound.write(block)
    assert long.stat().st_size < 1_000_000
    with pytest.raises(spectrogram.AudioInputError, match=r"duration of 661 s, more than the 600 s"):
        spectrogram.load_note(long)

    # Nine minutes at 48 kHz: decoding it whole (and resampling) would take some 150 MB; only the
    # first 10.84 s are read (the onset search window), about 2 MB at 48 kHz, and resampled.
    rate = 48_000
    within = tmp_path / "nine minutes.flac"
    silence = 2.5
    with soundfile.SoundFile(within, "w", rate, 1, subtype="PCM_16") as sound:
        sound.write(np.zeros(int(rate * silence), np.float32))
        sound.write(plucked_note(330, rate, seconds=1.0))
        block = np.zeros(rate * 60, np.float32)
        for _ in range(9):
            sound.write(block)
    assert soundfile.info(str(within)).duration > 540
    tracemalloc.start()
    try:
        started = time.perf_counter()
        window, skipped = notes.note_window(within)
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 30e6, peak
    assert seconds < 10, seconds
    assert window.shape == (spectrogram.NUM_SAMPLES,)
    assert silence - 0.02 < skipped / spectrogram.SAMPLE_RATE <= silence


def test_a_note_after_the_onset_search_window_is_not_looked_for(tmp_path):
    """Silence longer than ONSET_SEARCH_SECONDS: nothing to align on in the window, nothing skipped."""
    rate = 22050
    path = write_audio(tmp_path / "very late.wav", np.concatenate([
        np.zeros(int(rate * (notes.ONSET_SEARCH_SECONDS + 1)), np.float32),
        plucked_note(330, rate)]), rate)
    window, skipped = notes.note_window(path)
    assert skipped == 0 and not np.any(window)
    with pytest.raises(notes.UserError, match="silent"):
        notes.read_note(path)


def test_too_many_channels_are_refused(tmp_path):
    path = tmp_path / "many.wav"
    soundfile.write(path, np.zeros((1000, 40), np.float32), 44100, subtype="PCM_16")
    with pytest.raises(spectrogram.AudioInputError, match="40 channels"):
        spectrogram.load_note(path)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_or_infinite_samples_give_one_line(trained_project, tmp_path, value):
    note = plucked_note(330)
    note[1000] = value
    path = write_audio(tmp_path / "bad.wav", note, subtype="FLOAT")
    output = tmp_path / "result.wav"
    result = run_script(APPLY, path, "Dark", 50, "-o", output, cwd=trained_project)
    assert_one_line_error(result, "bad.wav", "NaN or infinite samples")
    assert not output.exists()


def test_a_fifo_and_a_symlink_loop_in_audio_are_named_and_skipped(tmp_path):
    """The pre-processor hung on a FIFO named *.wav and called a symlink loop 'System error.'.
    In a subprocess: a hang is the failure looked for (the timeout ends it)."""
    project = tmp_path / "project"
    write_audio(project / "audio" / "FilterFX" / "Dark" / "50" / "1-0.wav", plucked_note(330))
    folder = project / "audio" / "FilterFX" / "Dark" / "100"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "1-0.wav")
    loop = folder / "1-5.wav"
    loop.symlink_to(folder / "1-7.wav")
    (folder / "1-7.wav").symlink_to(loop)
    outcome = subprocess.run([sys.executable, str(REPO_ROOT / "process_audio_into_spectrograms.py"), "--jobs", "1"],
                             cwd=project, capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert outcome.returncode == 0, outcome.stderr
    report = outcome.stdout + outcome.stderr
    assert "1-0.wav: is not a regular file" in report, report
    assert "1-5.wav: cannot be opened (Too many levels of symbolic links)" in report, report
    assert "System error" not in report
    assert sorted(p.name for p in (project / "spectrograms").iterdir()) == ["DarkX50X1-0.wav.npy"]


def test_the_pre_processor_skips_absurd_headers_and_nan_samples(tmp_path):
    project = tmp_path / "project"
    write_audio(project / "audio" / "FilterFX" / "Dark" / "50" / "1-0.wav", plucked_note(330))
    wav_with_header_rate(project / "audio" / "FilterFX" / "Dark" / "50" / "1-1.wav", 1)
    nan = plucked_note(330)
    nan[5] = np.nan
    write_audio(project / "audio" / "FilterFX" / "Dark" / "50" / "1-2.wav", nan, subtype="FLOAT")
    result = run_script("process_audio_into_spectrograms.py", "--jobs", 1, cwd=project)
    assert result.returncode == 0, result.stderr
    assert "1-1.wav: its header gives a sample rate of 1 Hz" in result.stdout + result.stderr
    assert "1-2.wav: the audio holds NaN or infinite samples" in result.stdout + result.stderr
    assert sorted(p.name for p in (project / "spectrograms").iterdir()) == ["DarkX50X1-0.wav.npy"]


def test_a_fifo_given_to_apply_is_named_not_read(trained_project, tmp_path):
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    result = run_script(APPLY, fifo, "Dark", 50, "-o", tmp_path / "out.wav", cwd=trained_project)
    assert_one_line_error(result, "pipe.wav", "not a regular file")
    assert not (tmp_path / "out.wav").exists()


# -- seeds and parameters (issue 19, items 6 and 7)

SEEDED = [
    ("apply_timbre_descriptor.py", ("note.wav", "Dark", 50), "--seed"),
    ("evaluate_timbre_generation_vae.py", (), "--seed"),
    ("generate_from_description.py", ("Dark", 50, "E4"), "--seed"),
    ("generate_single_sample.py", ("Dark", 50, "E4"), "--seed"),
    ("generate_timbre_interpolation.py", ("Dark", 50, "E4", "Crunch", 50, "E4", 3), "--seed"),
    ("make_demo_audio.py", ("--output", "demo"), "--seed"),
    ("train_timbre_generation_vae.py", ("--epochs", 1), "--seed"),
    ("visualise_latent_space.py", ("--method", "pca"), "--random-state"),
]


@pytest.mark.parametrize("script, arguments, option", SEEDED)
@pytest.mark.parametrize("seed", [-1, 2 ** 70])
def test_a_seed_outside_numpys_range_is_one_line(trained_project, tmp_path, script, arguments, option, seed):
    project = tmp_path / "project"
    shutil.copytree(trained_project, project)
    before = sorted(path.relative_to(project) for path in project.rglob("*"))
    result = run_script(script, *arguments, option, seed, cwd=project)
    assert_one_line_error(result, f"{option} must be a whole number from 0 to 4,294,967,295", str(seed))
    assert result.returncode == 2
    assert sorted(path.relative_to(project) for path in project.rglob("*")) == before


def edited_parameters(trained_project, tmp_path, change) -> Path:
    import json

    project = tmp_path / "project"
    shutil.copytree(trained_project, project)
    path = project / "model" / "parameters.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    return project


MODEL_COMMANDS = [
    ("generate_single_sample.py", ("Dark", 50, "E4")),
    ("generate_timbre_interpolation.py", ("Dark", 50, "E4", "Crunch", 50, "E4", 3)),
    ("generate_from_description.py", ("Dark", 50, "E4")),
    ("visualise_latent_space.py", ("--method", "pca")),
    ("evaluate_timbre_generation_vae.py", ()),
]

PERCEPTUAL = {"kind": "perceptual", "names": ["hardness", "depth", "brightness", "roughness", "warmth", "sharpness",
                                               "boominess"],
              "normalisation": {"mean": [0.0] * 7, "std": [1.0] * 7},
              "trained_on": {"clean": {"0": [0.0] * 7}}}


@pytest.mark.parametrize("case, change, said", [
    ("latent of 10^12", lambda data: data.update(latent_space_dimension=10 ** 12), "larger than 65,536"),
    ("4096 filters", lambda data: data.update(conv_filters=[4096] * 5), "would not fit in memory"),
    ("names a string", lambda data: data.update(conditioning={**PERCEPTUAL, "names": "Fuzz"}),
     "'names' is str, not a list"),
    ("NaN mean", lambda data: data.update(conditioning={**PERCEPTUAL, "normalisation": {
        "mean": [float("nan")] + [0.0] * 6, "std": [1.0] * 7}}), "NaN or infinite"),
    ("profile of the wrong length", lambda data: data.update(conditioning={**PERCEPTUAL, "trained_on": {
        "clean": {"0": [0.0] * 3}}}), "holds 3 value(s), expected 7"),
])
@pytest.mark.parametrize("script, arguments", MODEL_COMMANDS)
def test_absurd_or_malformed_parameters_json_is_one_line(trained_project, tmp_path, script, arguments, case, change,
                                                         said):
    project = edited_parameters(trained_project, tmp_path, change)
    before = sorted(path.relative_to(project) for path in project.rglob("*"))
    result = run_script(script, *arguments, "--runtime", "tensorflow", cwd=project)
    assert_one_line_error(result, "parameters.json", said)
    assert sorted(path.relative_to(project) for path in project.rglob("*")) == before


def test_an_edited_parameters_json_says_what_the_weights_were_saved_with(trained_project, tmp_path):
    """Before: 'remove weights.h5 and train again' (the trained weights thrown away for an edit)."""
    project = edited_parameters(trained_project, tmp_path, lambda data: data.update(latent_space_dimension=9))
    result = run_script("generate_single_sample.py", "Dark", 50, "E4", "--runtime", "tensorflow", cwd=project)
    line = assert_one_line_error(result, "weights.h5 was saved with other parameters", "the weights are kept",
                                 "[[512, 64, 1], [8, 8, 8, 8, 8], [3, 3, 3, 3, 3], [2, 2, 2, 2, [2, 1]], 8]",
                                 "model/parameters.json")
    assert "remove" not in line
    assert (project / "model" / "weights.h5").is_file()
