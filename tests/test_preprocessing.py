"""process_audio_into_spectrograms.py on real small audio: thesis values to the byte, names, bad
input, incremental runs, serial vs parallel, interruption."""

from __future__ import annotations

import io
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile

import conftest
from conftest import REPO_ROOT, make_audio_tree, plucked_note, run_script, write_audio
from semantic_timbre import layout, safe_io
from semantic_timbre.data import preprocessing, processed_data, spectrogram

SCRIPT = "process_audio_into_spectrograms.py"


def thesis_spectrogram(path):
    """The thesis's pre-processing of one file, call by call, with librosa directly.

    Returns (normalised spectrogram, min, max, dB spectrogram, loaded signal length).
    """
    signal_ = librosa.load(path, sr=22050, duration=0.74, mono=True)[0]
    loaded_length = len(signal_)
    num_expected_samples = int(22050 * 0.74)
    if len(signal_) < num_expected_samples:
        signal_ = np.pad(signal_, (0, num_expected_samples - len(signal_)), mode="constant")
    stft = librosa.stft(signal_, n_fft=1024, hop_length=256)[:-1]
    log_spectrogram = librosa.amplitude_to_db(np.abs(stft))
    minimum, maximum = log_spectrogram.min(), log_spectrogram.max()
    normalised = (log_spectrogram - minimum) / (maximum - minimum)
    normalised = normalised * (1 - 0) + 0  # the thesis's MinMaxNormaliser to [0, 1]
    return normalised, minimum, maximum, log_spectrogram, loaded_length


def npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


# Notes beyond conftest's tree, one per format and case the release or a user may bring.
EXTRA_GOOD = {
    "short": "TestFX/Soft/100/1-3.wav",           # 0.3 s: zero-padded
    "stereo48k": "TestFX/Bright/50/1-9.wav",      # stereo 48 kHz: mixed down, resampled
    "flac": "TestFX/Fuzz/75/1-2.flac",
    "aiff": "TestFX/Thin/25/1-4.AIFF",            # upper-case extension
    "ogg": "TestFX/WahWah/60/2-1.ogg",            # string 2, a release magnitude
    "string6": "TestFX/Fat/35/6-22.wav",
}
BAD = {
    "corrupt": ("TestFX/Crush/100/1-1.wav", "cannot be read as audio"),
    "empty": ("TestFX/Crush/100/1-2.wav", "empty (0 bytes)"),
    "silent": ("TestFX/Crush/100/1-3.wav", "silent"),
    "nan": ("TestFX/Crush/100/1-4.wav", "NaN"),
    "bad_name": ("TestFX/Crush/100/note.wav", "does not fit the layout"),
    "bad_fret": ("TestFX/Crush/100/1-30.wav", "does not fit the layout"),
    "bad_magnitude": ("TestFX/Crush/loud/1-0.wav", "does not fit the layout"),
    "too_shallow": ("1-0.wav", "does not fit the layout"),
}
IGNORED = (".DS_Store", "TestFX/Crunch/100/._1-0.wav", "TestFX/notes.txt")


def write_extras(audio: Path) -> None:
    write_audio(audio / EXTRA_GOOD["short"], plucked_note(349.23, seconds=0.3, seed=3))
    stereo = np.stack([plucked_note(466.16, 48000, seed=9), 0.5 * plucked_note(466.16, 48000, seed=10)], axis=1)
    write_audio(audio / EXTRA_GOOD["stereo48k"], stereo, 48000)
    write_audio(audio / EXTRA_GOOD["flac"], plucked_note(369.99, seed=2), subtype="PCM_24")
    write_audio(audio / EXTRA_GOOD["aiff"], plucked_note(415.30, seed=4), subtype="PCM_16")
    write_audio(audio / EXTRA_GOOD["ogg"], plucked_note(261.63, seed=1), subtype="VORBIS")
    write_audio(audio / EXTRA_GOOD["string6"], plucked_note(293.66, seed=22))

    (audio / BAD["corrupt"][0]).parent.mkdir(parents=True, exist_ok=True)
    (audio / BAD["corrupt"][0]).write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(range(200)))
    (audio / BAD["empty"][0]).write_bytes(b"")
    write_audio(audio / BAD["silent"][0], np.zeros(44100, dtype=np.float32))
    with_nan = plucked_note(392.0, seed=5)
    with_nan[1000] = np.nan
    write_audio(audio / BAD["nan"][0], with_nan, subtype="FLOAT")
    for name in ("bad_name", "bad_fret", "bad_magnitude", "too_shallow"):
        write_audio(audio / BAD[name][0], plucked_note(330.0, seed=7))
    for name in IGNORED:
        (audio / name).parent.mkdir(parents=True, exist_ok=True)
        (audio / name).write_bytes(b"not audio")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One project run serially (--jobs 1) and once more in parallel into other folders."""
    project = tmp_path_factory.mktemp("preprocessing")
    audio = project / "audio"
    good = make_audio_tree(audio, descriptors=("Crunch", "Dark"), magnitudes=(100,), frets=(0, 7))
    write_extras(audio)
    good += [audio / relative for relative in EXTRA_GOOD.values()]
    serial = run_script(SCRIPT, "--jobs", "1", cwd=project)
    parallel = run_script(SCRIPT, "--jobs", "2", "--spectrograms-dir", "parallel/spectrograms",
                          "--minmax-dir", "parallel/minmax", cwd=project)
    return project, good, serial, parallel


def expected_note(path: Path, project: Path) -> layout.Note:
    return layout.parse_audio_path(path, project / "audio")


def test_runs_succeed_with_a_summary(runs):
    project, good, serial, parallel = runs
    assert serial.returncode == 0, serial.stderr
    assert parallel.returncode == 0, parallel.stderr
    assert "Traceback" not in serial.stderr + parallel.stderr
    assert f"processed {len(good)} note(s)" in serial.stdout
    assert f"failed {len(BAD)} file(s)" in serial.stdout
    assert f"ignored {len(IGNORED)} file(s)" in serial.stdout
    for name in IGNORED:
        assert f"ignored (not audio): {Path('audio', name)}" in serial.stdout


def test_every_bad_input_is_listed_with_its_reason(runs):
    _, _, serial, _ = runs
    lines = serial.stdout.splitlines()
    for relative, reason in BAD.values():
        listed = [line for line in lines if line.strip().startswith(f"{Path('audio', relative)}:")]
        assert len(listed) == 1, (relative, serial.stdout)
        assert reason in listed[0]


def test_outputs_have_thesis_names_shape_and_range(runs):
    project, good, _, _ = runs
    expected = {expected_note(path, project).spectrogram_name for path in good}
    written = {p.name for p in (project / "spectrograms").iterdir()}
    assert written == expected  # nothing for the bad inputs, no temporary files
    assert "CrunchX100X1-0.wav.npy" in written and "FlutteryX0X1-7.wav.npy" in written
    assert "WahWahX60X2-1.ogg.npy" in written and "ThinX25X1-4.AIFF.npy" in written
    for name in written:
        array = np.load(project / "spectrograms" / name, allow_pickle=False)
        assert array.shape == (512, 64) and array.dtype == np.float32
        assert np.all(np.isfinite(array))
        assert array.min() == 0.0 and array.max() == 1.0


def test_min_max_pickle_has_thesis_keys_and_float32_values(runs):
    project, good, _, _ = runs
    with open(project / "minmax" / "min_max_values.pkl", "rb") as handle:
        min_max = pickle.load(handle)  # our own output, just written by this test
    assert set(min_max) == {f"spectrograms/{expected_note(p, project).spectrogram_name}" for p in good}
    for entry in min_max.values():
        assert set(entry) == {"min", "max"}
        assert type(entry["min"]) is np.float32 and type(entry["max"]) is np.float32
        assert np.isfinite(entry["min"]) and np.isfinite(entry["max"]) and entry["min"] < entry["max"]
    assert processed_data.load_min_max(project / "minmax") == min_max


@pytest.mark.parametrize("relative", ["ModulationFX/Fluttery/0/1-0.wav", "TestFX/Crunch/100/1-7.wav",
                                      EXTRA_GOOD["short"], EXTRA_GOOD["stereo48k"], EXTRA_GOOD["flac"],
                                      EXTRA_GOOD["aiff"], EXTRA_GOOD["ogg"]])
def test_spectrogram_bytes_equal_the_thesis_recipe(runs, relative):
    project, _, _, _ = runs
    path = project / "audio" / relative
    note = expected_note(path, project)
    normalised, minimum, maximum, _, _ = thesis_spectrogram(path)
    assert (project / "spectrograms" / note.spectrogram_name).read_bytes() == npy_bytes(normalised)
    entry = processed_data.load_min_max(project / "minmax")[note.minmax_key]
    assert entry["min"] == minimum and entry["max"] == maximum
    assert type(entry["min"]) is type(minimum)


def test_short_note_is_zero_padded(runs):
    project, _, _, _ = runs
    path = project / "audio" / EXTRA_GOOD["short"]
    *_, loaded_length = thesis_spectrogram(path)
    assert loaded_length == int(0.3 * 22050) < spectrogram.NUM_SAMPLES
    array = np.load(project / "spectrograms" / expected_note(path, project).spectrogram_name)
    assert array.shape == (512, 64)
    # The padding is digital silence: the last frames sit at the spectrogram's floor.
    assert np.all(array[:, -5:] == 0.0) and array[:, :10].max() == 1.0


def test_stereo_48k_is_mixed_down_and_resampled(runs):
    project, _, _, _ = runs
    path = project / "audio" / EXTRA_GOOD["stereo48k"]
    assert soundfile.info(str(path)).channels == 2 and soundfile.info(str(path)).samplerate == 48000
    mono = librosa.load(path, sr=22050, mono=True, duration=0.74)[0]
    assert len(mono) == spectrogram.NUM_SAMPLES
    expected = librosa.amplitude_to_db(np.abs(librosa.stft(mono, n_fft=1024, hop_length=256)[:-1]))
    expected = (expected - expected.min()) / (expected.max() - expected.min())
    array = np.load(project / "spectrograms" / expected_note(path, project).spectrogram_name)
    assert np.array_equal(array, expected)


def test_denormalising_gives_back_the_db_values(runs):
    project, _, _, _ = runs
    path = project / "audio" / "TestFX/Dark/100/1-0.wav"
    note = expected_note(path, project)
    _, _, _, log_spectrogram, _ = thesis_spectrogram(path)
    low, high = processed_data.min_max_of(processed_data.load_min_max(project / "minmax"), note)
    array = processed_data.load_spectrogram(project / "spectrograms" / note.spectrogram_name)
    np.testing.assert_allclose(spectrogram.denormalise(array, low, high), log_spectrogram, atol=1e-3)
    assert low == pytest.approx(log_spectrogram.min()) and high - low == pytest.approx(80.0, abs=1e-3)


def test_serial_and_parallel_write_identical_bytes(runs):
    project, good, _, parallel = runs
    assert "2 job(s)" in parallel.stdout
    serial_files = sorted((project / "spectrograms").iterdir())
    parallel_dir = project / "parallel" / "spectrograms"
    assert [p.name for p in serial_files] == sorted(p.name for p in parallel_dir.iterdir())
    assert len(serial_files) == len(good)
    for path in serial_files:
        assert path.read_bytes() == (parallel_dir / path.name).read_bytes(), path.name
    assert ((project / "minmax" / "min_max_values.pkl").read_bytes()
            == (project / "parallel" / "minmax" / "min_max_values.pkl").read_bytes())


# --- no data ---------------------------------------------------------------------------------

def assert_one_line_error(result, *needles):
    conftest.assert_one_line_error(result, *needles, only_output=True)


def test_missing_audio_folder_says_where_data_comes_from(project):
    shutil.rmtree(project / "audio")
    result = run_script(SCRIPT, cwd=project)
    assert_one_line_error(result, "does not exist", "Hugging Face", "JoeCameron1/SemanticTimbreDataset",
                          "11398253", "make_demo_audio.py")
    assert not any((project / "spectrograms").iterdir())
    assert not (project / "minmax" / "min_max_values.pkl").exists()


def test_audio_folder_without_audio_says_where_data_comes_from(project):
    (project / "audio" / ".DS_Store").write_bytes(b"x")
    result = run_script(SCRIPT, cwd=project)
    assert_one_line_error(result, "holds no audio", "Hugging Face", "make_demo_audio.py")


def test_nothing_processable_exits_non_zero_after_the_summary(project):
    (project / "audio" / "FX" / "Crunch" / "100").mkdir(parents=True)
    (project / "audio" / "FX" / "Crunch" / "100" / "1-0.wav").write_bytes(b"")
    write_audio(project / "audio" / "FX" / "Crunch" / "100" / "1-1.wav", np.zeros(4410, dtype=np.float32))
    result = run_script(SCRIPT, cwd=project)
    assert_one_line_error(result, "none of the 2 audio file(s) could be processed")
    assert "failed 2 file(s)" in result.stdout
    assert not any((project / "spectrograms").iterdir())
    assert not (project / "minmax" / "min_max_values.pkl").exists()


def test_a_malicious_min_max_pickle_is_refused_before_any_work(project, tmp_path):
    make_audio_tree(project / "audio", descriptors=("Crunch",), magnitudes=(100,), frets=(0,), clean=False)
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (project / "minmax" / "min_max_values.pkl").write_bytes(pickle.dumps({"x": Exploit()}))
    result = run_script(SCRIPT, cwd=project)
    assert_one_line_error(result, "refusing to read", "min_max_values.pkl")
    assert not marker.exists()
    assert not any((project / "spectrograms").iterdir())


# --- incremental runs ------------------------------------------------------------------------

def test_incremental_rerun_skips_keeps_and_adds(project):
    audio = project / "audio"
    make_audio_tree(audio, descriptors=("Crunch",), magnitudes=(100,), frets=(0, 5), clean=False)
    first = run_script(SCRIPT, "--jobs", "1", cwd=project)
    assert first.returncode == 0 and "processed 2 note(s)" in first.stdout
    spectrograms = project / "spectrograms"
    stamps = {p.name: p.stat().st_mtime_ns for p in spectrograms.iterdir()}
    saved = processed_data.load_min_max(project / "minmax")

    again = run_script(SCRIPT, cwd=project)
    assert again.returncode == 0, again.stderr
    assert "nothing new to process: 2 note(s) already in spectrograms/" in again.stdout
    assert {p.name: p.stat().st_mtime_ns for p in spectrograms.iterdir()} == stamps
    assert processed_data.load_min_max(project / "minmax") == saved

    write_audio(audio / "TestFX" / "Crunch" / "100" / "1-9.wav", plucked_note(493.88, seed=9))
    # A note whose min/max entry was never saved (a killed run) is processed again.
    del saved["spectrograms/CrunchX100X1-5.wav.npy"]
    safe_io.save_pickle_atomic(project / "minmax" / "min_max_values.pkl", saved)
    added = run_script(SCRIPT, cwd=project)
    assert added.returncode == 0, added.stderr
    assert "processed 2 note(s)" in added.stdout and "skipped 1 note(s)" in added.stdout
    merged = processed_data.load_min_max(project / "minmax")
    assert set(merged) == {f"spectrograms/CrunchX100X1-{fret}.wav.npy" for fret in (0, 5, 9)}
    assert merged["spectrograms/CrunchX100X1-0.wav.npy"] == saved["spectrograms/CrunchX100X1-0.wav.npy"]
    assert (spectrograms / "CrunchX100X1-0.wav.npy").stat().st_mtime_ns == stamps["CrunchX100X1-0.wav.npy"]

    forced = run_script(SCRIPT, "--force", "--quiet", cwd=project)
    assert forced.returncode == 0 and "processed 3 note(s)" in forced.stdout
    assert (spectrograms / "CrunchX100X1-0.wav.npy").stat().st_mtime_ns != stamps["CrunchX100X1-0.wav.npy"]
    assert processed_data.load_min_max(project / "minmax") == merged


def test_entries_of_notes_no_longer_in_audio_are_kept(project):
    make_audio_tree(project / "audio", descriptors=("Dark",), magnitudes=(50,), frets=(3,), clean=False)
    foreign = {"spectrograms/BrightX100X1-0.wav.npy": {"min": np.float32(-80.0), "max": np.float32(0.0)}}
    safe_io.save_pickle_atomic(project / "minmax" / "min_max_values.pkl", foreign)
    result = run_script(SCRIPT, cwd=project)
    assert result.returncode == 0, result.stderr
    merged = processed_data.load_min_max(project / "minmax")
    assert set(merged) == set(foreign) | {"spectrograms/DarkX50X1-3.wav.npy"}


# --- interruption ----------------------------------------------------------------------------

def many_notes(audio: Path, count: int) -> None:
    """`count` notes in the layout, copies of a few real ones (cheap to write)."""
    seeds = [write_audio(audio / "FX" / "Crunch" / "100" / f"1-{fret}.wav",
                         plucked_note(329.63 * 2 ** (fret / 12), seed=fret)) for fret in range(4)]
    magnitudes = [m for m in range(0, 101)]
    written = 4
    for magnitude in magnitudes:
        for fret in layout.FRETS:
            if written >= count:
                return
            target = audio / "FX" / "Dark" / str(magnitude) / f"1-{fret}.wav"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(seeds[fret % 4], target)
            written += 1


@pytest.mark.parametrize("jobs, signal_number", [("1", signal.SIGINT), ("2", signal.SIGINT), ("2", signal.SIGTERM)],
                         ids=["serial-ctrl-c", "parallel-ctrl-c", "parallel-kill"])
def test_interrupted_run_leaves_complete_files_and_resumes(project, jobs, signal_number):
    many_notes(project / "audio", 300)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    # Ctrl-C as in a terminal: a suite started in the background (`make test &`) ignores SIGINT,
    # and children inherit that, so the command gets the default disposition back.
    process = subprocess.Popen([sys.executable, str(REPO_ROOT / SCRIPT), "--jobs", jobs, "--quiet"],
                               cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    spectrograms = project / "spectrograms"
    deadline = time.monotonic() + 60
    # Chunks of results reach the parent as a whole: wait until a few chunks are done.
    while sum(1 for _ in spectrograms.glob("*X*.npy")) < 80 and time.monotonic() < deadline:
        time.sleep(0.002)
    if signal_number == signal.SIGINT:
        os.killpg(process.pid, signal_number)  # Ctrl-C in a terminal reaches the workers too
    else:
        process.send_signal(signal_number)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stderr
    assert stderr.strip().startswith("interrupted: saved") and len(stderr.strip().splitlines()) == 1

    saved = processed_data.load_min_max(project / "minmax")
    written = sorted(spectrograms.iterdir())
    assert all(not p.name.startswith(".") for p in written), "temporary file left behind"
    assert 0 < len(saved) < 300
    for key in saved:  # every note with a saved entry has a complete spectrogram
        processed_data.load_spectrogram(project / key.replace("spectrograms", str(spectrograms), 1))

    resumed = run_script(SCRIPT, "--quiet", cwd=project)
    assert resumed.returncode == 0, resumed.stderr
    assert f"skipped {len(saved)} note(s)" in resumed.stdout
    assert len(processed_data.load_min_max(project / "minmax")) == 300


# --- the library side ------------------------------------------------------------------------

def test_find_audio_files_sorts_audio_from_the_rest(tmp_path):
    for name in ("G/D/50/1-0.wav", "G/D/50/1-1.FLAC", "G/D/50/1-2.aif", "G/D/50/.DS_Store",
                 ".hidden/D/50/1-0.wav", "G/D/50/readme.md", "G/D/50/1-3.Ogg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    audio, other = preprocessing.find_audio_files(tmp_path)
    assert [p.name for p in audio] == ["1-0.wav", "1-1.FLAC", "1-2.aif", "1-3.Ogg"]
    assert sorted(p.name for p in other) == [".DS_Store", ".hidden", "readme.md"]


def test_killed_run_stops_its_workers_and_the_next_run_finishes(project):
    many_notes(project / "audio", 300)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    process = subprocess.Popen([sys.executable, str(REPO_ROOT / SCRIPT), "--jobs", "2", "--quiet"],
                               cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    spectrograms = project / "spectrograms"
    deadline = time.monotonic() + 60
    while sum(1 for _ in spectrograms.glob("*X*.npy")) < 40 and time.monotonic() < deadline:
        time.sleep(0.002)
    workers = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    assert workers
    process.kill()  # kill -9: nothing of the script's own clean-up runs
    process.wait()
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = [pid for pid in workers if Path(f"/proc/{pid}").exists()
             and "zombie" not in Path(f"/proc/{pid}/status").read_text()]
    assert not alive, "workers outlived the killed run"

    resumed = run_script(SCRIPT, "--quiet", cwd=project)
    assert resumed.returncode == 0, resumed.stderr
    assert len(processed_data.load_min_max(project / "minmax")) == 300
    assert sorted(p.name for p in spectrograms.iterdir() if p.name.startswith(".")) == []
    for path in spectrograms.iterdir():
        processed_data.load_spectrogram(path)


# --- saving as it goes: kill -9 loses only the last seconds ------------------------------------

def linked_notes(audio: Path, count: int) -> None:
    """`count` notes in the layout, hard links to four real ones (no disk space, real decoding)."""
    seeds = [write_audio(audio / "FX" / "Crunch" / "100" / f"1-{fret}.wav",
                         plucked_note(329.63 * 2 ** (fret / 12), seed=fret)) for fret in range(4)]
    for index in range(count - len(seeds)):
        magnitude, fret = divmod(index, len(layout.FRETS))
        target = audio / "FX" / layout.DESCRIPTORS[magnitude // 101] / str(magnitude % 101) / f"1-{fret}.wav"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(seeds[fret % len(seeds)], target)


def test_kill_9_keeps_the_min_max_of_most_notes_done_and_the_rerun_skips_them(project):
    count = 3000  # more than a fast core does before the kill; the notes never started are removed
    audio = project / "audio"
    linked_notes(audio, count)
    spectrograms, min_max_file = project / "spectrograms", project / "minmax" / "min_max_values.pkl"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    process = subprocess.Popen([sys.executable, str(REPO_ROOT / SCRIPT), "--jobs", "1", "--quiet"],
                               cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not min_max_file.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        # A saved min/max file while notes remain: it is saved as the run goes, not only at its end.
        assert min_max_file.exists() and process.poll() is None, "min/max saved only at the end"
        first = min_max_file.stat().st_ino  # an atomic save replaces the file: a new inode
        while min_max_file.stat().st_ino == first and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        assert process.poll() is None, "the run ended before its second save"
        time.sleep(0.5)  # some more notes, whose entries the kill loses
        process.kill()  # kill -9: nothing of the script's own clean-up runs
    finally:
        process.kill()
        process.wait()
    done = {path.name for path in spectrograms.glob("*X*.npy") if not path.name.startswith(".")}
    saved = processed_data.load_min_max(project / "minmax")
    assert 0 < len(saved) < len(done) < count
    assert len(saved) >= len(done) // 2, (len(saved), len(done))  # most of the notes done, not a few
    for key in saved:  # every saved entry's spectrogram is complete
        assert Path(key).name in done
        processed_data.load_spectrogram(project / key)

    # The re-run (on the notes the killed run started) skips the saved ones and redoes the rest.
    for path in preprocessing.find_audio_files(audio)[0]:
        if layout.parse_audio_path(path, audio).spectrogram_name not in done:
            path.unlink()
    resumed = run_script(SCRIPT, "--quiet", cwd=project)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"processed {len(done) - len(saved)} note(s)" in resumed.stdout
    assert f"skipped {len(saved)} note(s) already processed" in resumed.stdout
    assert len(processed_data.load_min_max(project / "minmax")) == len(done)


# --- truncated notes -------------------------------------------------------------------------

def test_a_truncated_note_is_processed_with_a_notice(project):
    audio = project / "audio"
    write_audio(audio / "FX" / "Crunch" / "100" / "1-0.wav", plucked_note(329.63))
    write_audio(audio / "FX" / "Crunch" / "100" / "1-1.wav", plucked_note(349.23)[: int(0.037 * 44100)])
    write_audio(audio / "FX" / "Crunch" / "100" / "1-2.wav", plucked_note(369.99)[: int(0.5 * 44100)])
    result = run_script(SCRIPT, "--jobs", "1", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "processed 3 note(s)" in result.stdout
    lines = result.stdout.splitlines()
    notice = [index for index, line in enumerate(lines) if line.startswith("notice: 1 note(s) shorter than 0.37 s")]
    assert len(notice) == 1, result.stdout
    assert "0.74 s the thesis reads" in lines[notice[0]]
    assert lines[notice[0] + 1] == f"  {Path('audio/FX/Crunch/100/1-1.wav')}: 0.037 s"
    assert "1-2.wav" not in result.stdout and "1-0.wav" not in result.stdout  # 0.5 s is long enough
    assert (project / "spectrograms" / "CrunchX100X1-1.wav.npy").is_file()


def test_the_short_note_of_the_fixture_is_listed(runs):
    _, _, serial, _ = runs
    assert f"  {Path('audio', EXTRA_GOOD['short'])}: 0.300 s" in serial.stdout


# --- a malformed min/max file ------------------------------------------------------------------

@pytest.mark.parametrize("content, reason", [(b"garbage, not a pickle\n", "not a readable pickle"),
                                             (pickle.dumps([1, 2, 3]), "a pickled list, not a dict"),
                                             (b"", "not a readable pickle")],
                         ids=["garbage", "list", "empty"])
@pytest.mark.parametrize("minmax_dir", ["minmax", "other"])
def test_a_malformed_min_max_file_is_named_for_removal(project, content, reason, minmax_dir):
    make_audio_tree(project / "audio", descriptors=("Crunch",), magnitudes=(100,), frets=(0,), clean=False)
    (project / minmax_dir).mkdir(exist_ok=True)
    (project / minmax_dir / "min_max_values.pkl").write_bytes(content)
    options = [] if minmax_dir == "minmax" else ["--minmax-dir", minmax_dir]
    result = run_script(SCRIPT, *options, cwd=project)
    command = "python process_audio_into_spectrograms.py" + (f" --minmax-dir {minmax_dir}" if options else "")
    assert_one_line_error(result, f"{Path(minmax_dir, 'min_max_values.pkl')} is not a min/max file ({reason}",
                          f"remove it and run '{command}' again")
    assert not any((project / "spectrograms").iterdir())
    # Every reader says the same.
    with pytest.raises(processed_data.ProcessedDataError, match="is not a min/max file .*remove it and run"):
        processed_data.load_min_max(project / minmax_dir)


def test_a_malicious_min_max_file_is_named_for_removal(project):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("true",))

    (project / "minmax" / "min_max_values.pkl").write_bytes(pickle.dumps({"x": Exploit()}))
    with pytest.raises(safe_io.UnsafePickleError, match="refusing to read .*remove it and run"):
        processed_data.load_min_max(project / "minmax")


def test_readers_name_the_folders_they_were_given(tmp_path):
    other = tmp_path / "other"
    note = layout.Note("Crunch", 100, 1, 0, "1-0.wav")
    with pytest.raises(processed_data.ProcessedDataError,
                       match=f"{other}/min_max_values.pkl does not exist: run "
                             f"'python process_audio_into_spectrograms.py --minmax-dir {other}' first"):
        processed_data.load_min_max(other)
    good = {"min": np.float32(-80), "max": np.float32(0)}
    safe_io.save_pickle_atomic(other / "min_max_values.pkl", {"spectrograms/DarkX50X1-0.wav.npy": good,
                                                              "spectrograms/CrunchX50X1-0.wav.npy": [1, 2]})
    values = processed_data.load_min_max(other)
    with pytest.raises(processed_data.ProcessedDataError,
                       match=f"CrunchX100X1-0.wav.npy is missing from {other}/min_max_values.pkl: run "
                             f"'python process_audio_into_spectrograms.py --minmax-dir {other}' to add it"):
        processed_data.min_max_of(values, note)
    with pytest.raises(processed_data.ProcessedDataError,
                       match=f"CrunchX50X1-0.wav.npy in {other}/min_max_values.pkl is malformed"):
        processed_data.min_max_of(values, layout.Note("Crunch", 50, 1, 0, "1-0.wav"))
    assert processed_data.min_max_of(values, layout.Note("Dark", 50, 1, 0, "1-0.wav")) == (-80.0, 0.0)
    with pytest.raises(processed_data.ProcessedDataError,
                       match=f"{tmp_path}/specs/ does not exist: run 'python process_audio_into_spectrograms.py "
                             f"--spectrograms-dir {tmp_path}/specs' first"):
        processed_data.require_spectrograms(tmp_path / "specs")
    with pytest.raises(processed_data.ProcessedDataError,
                       match=f"{other}/ holds no spectrograms .*: run 'python process_audio_into_spectrograms.py "
                             f"--spectrograms-dir {other}' first"):
        processed_data.require_spectrograms(other)
    (other / "CrunchX100X1-0.wav.npy").write_bytes(b"not numpy")
    with pytest.raises(processed_data.ProcessedDataError,
                       match=f"{other}/CrunchX100X1-0.wav.npy cannot be read .*delete it and run "
                             f"'python process_audio_into_spectrograms.py --spectrograms-dir {other}' again"):
        processed_data.load_spectrogram(other / "CrunchX100X1-0.wav.npy")


def test_the_pre_processor_names_the_audio_folder_it_was_given(project):
    audio = project / "data" / "audio"
    make_audio_tree(audio, descriptors=("Crunch",), magnitudes=(100,), frets=(0,), clean=False)
    write_audio(audio / "FX" / "Crunch" / "100" / "note.wav", plucked_note(330.0))
    (audio / "notes.txt").write_text("not audio")
    result = run_script(SCRIPT, "--audio-dir", "data/audio", "--spectrograms-dir", "out/specs",
                        "--minmax-dir", "out/mm", cwd=project)
    assert result.returncode == 0, result.stderr
    assert f"  {Path('data/audio/FX/Crunch/100/note.wav')}: the path does not fit the layout" in result.stdout
    assert f"ignored (not audio): {Path('data/audio/notes.txt')}" in result.stdout
    assert "into out/specs/ (min/max in out/mm/min_max_values.pkl)" in result.stdout
    missing = run_script(SCRIPT, "--audio-dir", "nowhere/audio", cwd=project)
    assert_one_line_error(missing, "nowhere/audio/ does not exist")


# --- output folders that cannot be written -----------------------------------------------------

def run_where_permissions_bind(project, *args):
    """Run the script where file permissions apply: in this process for an ordinary user; for root
    (who may write anywhere) in a process without the capabilities that override permissions."""
    if os.geteuid() != 0:
        return run_script(SCRIPT, *args, cwd=project)
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: a read-only folder is writable")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    env.pop("SEMANTIC_TIMBRE_DEBUG", None)
    return subprocess.run([setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", sys.executable,
                           str(REPO_ROOT / SCRIPT), *map(str, args)], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("folder, option", [("spectrograms", "--spectrograms-dir"), ("minmax", "--minmax-dir"),
                                            ("out/specs", "--spectrograms-dir")])
def test_an_output_folder_that_cannot_be_written_stops_the_run_before_any_work(project, folder, option):
    make_audio_tree(project / "audio", descriptors=("Crunch",), magnitudes=(100,), frets=(0, 5), clean=False)
    read_only = project / folder.split("/")[0]  # out/specs: its parent is read-only, it is missing
    read_only.mkdir(exist_ok=True)
    read_only.chmod(0o555)
    try:
        options = [] if folder in ("spectrograms", "minmax") else [option, folder]
        result = run_where_permissions_bind(project, "--jobs", "1", *options)
    finally:
        read_only.chmod(0o755)
    assert_one_line_error(result, f"cannot write in {folder}/ (Permission denied)", option, "nothing was processed")
    assert "failed" not in result.stdout
    assert not any((project / "spectrograms").iterdir())
    assert not (project / "minmax" / "min_max_values.pkl").exists()


def test_an_output_path_that_is_a_file_is_named(project):
    make_audio_tree(project / "audio", descriptors=("Crunch",), magnitudes=(100,), frets=(0,), clean=False)
    (project / "specs.txt").write_text("a file")
    result = run_script(SCRIPT, "--spectrograms-dir", "specs.txt", cwd=project)
    assert_one_line_error(result, "specs.txt is not a folder", "--spectrograms-dir")


def test_a_failed_write_stops_the_run_with_one_line(project):
    make_audio_tree(project / "audio", descriptors=("Crunch",), magnitudes=(100,), frets=(0, 5, 7), clean=False)
    (project / "spectrograms" / "CrunchX100X1-5.wav.npy").mkdir()  # something in the way of one output
    result = run_script(SCRIPT, "--jobs", "1", cwd=project)
    assert_one_line_error(result, f"cannot write {Path('spectrograms/CrunchX100X1-5.wav.npy')} (Is a directory)",
                          "the min/max of the 1 note(s) done were saved")
    assert "failed" not in result.stdout
    saved = processed_data.load_min_max(project / "minmax")
    assert set(saved) == {"spectrograms/CrunchX100X1-0.wav.npy"}
