"""Shared test helpers: real audio written to disk, the scripts run as a user runs them."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile

REPO_ROOT = Path(__file__).resolve().parent.parent  # on sys.path through pytest.ini's pythonpath
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@dataclass
class ScriptResult:
    """What a command left: its exit status and what it wrote to stdout and stderr."""

    returncode: int
    stdout: str
    stderr: str


def _script_module(script: str):
    name = Path(script).stem
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO_ROOT / script)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def run_script(script: str, *args, cwd) -> ScriptResult:
    """Run a top-level script's main(argv) in this process, in `cwd`, as its command line does
    (`run_main`: one-line errors, exit statuses), capturing stdout and stderr. An unexpected
    exception propagates, so the test fails with its traceback. (No time limit: it runs in this
    process; run_script_subprocess has one.)"""
    from semantic_timbre.cli import run_main

    module = _script_module(script)
    stdout, stderr = io.StringIO(), io.StringIO()
    previous = os.getcwd()
    debug = os.environ.pop("SEMANTIC_TIMBRE_DEBUG", None)
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                status = run_main(module.main, [str(arg) for arg in args])
            except SystemExit as exit_:  # argparse: --help, usage errors
                status = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
                if isinstance(exit_.code, str):
                    print(exit_.code, file=sys.stderr)
    finally:
        os.chdir(previous)
        if debug is not None:
            os.environ["SEMANTIC_TIMBRE_DEBUG"] = debug
    return ScriptResult(status, stdout.getvalue(), stderr.getvalue())


def run_script_subprocess(script: str, *args, cwd, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run a top-level script in a new Python process, for tests where a separate process is the
    point (a fresh TensorFlow, signals)."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("SEMANTIC_TIMBRE_DEBUG", None)
    return _run_with_timeout([sys.executable, str(REPO_ROOT / script), *map(str, args)], script, timeout, cwd=cwd,
                             env=env)


def _run_with_timeout(command, what: str, timeout: float, **options) -> subprocess.CompletedProcess:
    """subprocess.run(command) that fails the test, with what it had written, past `timeout` seconds."""
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, **options)
    except subprocess.TimeoutExpired as expired:
        def text(output):
            return (output.decode(errors="replace") if isinstance(output, bytes) else output or "")[-2000:]

        pytest.fail(f"{what} ran past its {timeout:g} s time limit (killed); stdout: {text(expired.stdout)!r}; "
                    f"stderr: {text(expired.stderr)!r}")


_TENSORFLOW_PROBE = """
import sys
from semantic_timbre.cli import run_main
import {module} as script
status = run_main(script.main, {argv!r})
print("tensorflow imported:", "tensorflow" in sys.modules)
sys.exit(status)
"""


def run_without_tensorflow_check(script: str, *args, cwd, timeout: float = 120):
    """Run a script's main(argv) in a fresh Python (the point: nothing imported yet) and return
    (result, whether TensorFlow was imported by the time it returned)."""
    code = _TENSORFLOW_PROBE.format(module=Path(script).stem, argv=[str(a) for a in args])
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="2")  # the top-level script
    env.pop("SEMANTIC_TIMBRE_DEBUG", None)
    result = _run_with_timeout([sys.executable, "-c", code], script, timeout, cwd=cwd, env=env)
    return result, "tensorflow imported: True" in result.stdout


def assert_one_line_error(result, *fragments, only_output: bool = False) -> str:
    """Check a command failed with exactly one 'error: ...' line holding every fragment, and no
    traceback; with only_output, that line must be all it wrote to stderr. Returns the line."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    if only_output:
        assert result.stderr.strip() == errors[0], result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def plucked_note(frequency: float, sample_rate: int = 44100, seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """A decaying harmonic tone with a noisy attack: a cheap, real stand-in for a guitar note."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    note = sum(np.sin(2 * np.pi * frequency * k * t + rng.uniform(0, 2 * np.pi)) / k ** 1.5
               for k in range(1, 12) if frequency * k < sample_rate / 2)
    note = note * np.exp(-3.0 * t)
    note[: sample_rate // 100] += 0.3 * rng.standard_normal(sample_rate // 100)
    return (0.5 * note / np.max(np.abs(note))).astype(np.float32)


def write_audio(path: Path, audio: np.ndarray, sample_rate: int = 44100, subtype: str = "PCM_24") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, audio, sample_rate, subtype=subtype)
    return path


# Small effects for test data: each descriptor changes the note measurably, more at higher magnitude.
def _apply_test_effect(note: np.ndarray, descriptor: str, magnitude: int) -> np.ndarray:
    amount = magnitude / 100
    if descriptor == "Crunch":
        drive = 1 + 30 * amount
        return (np.tanh(drive * note) / np.tanh(drive)).astype(np.float32)
    if descriptor == "Dark":
        kernel = np.ones(1 + int(20 * amount)) / (1 + int(20 * amount))
        return np.convolve(note, kernel, mode="same").astype(np.float32)
    if descriptor == "Fluttery":
        t = np.arange(len(note)) / 44100
        return (note * (1 - 0.8 * amount * (0.5 + 0.5 * np.sin(2 * np.pi * 9 * t)))).astype(np.float32)
    raise ValueError(descriptor)


TEST_DESCRIPTORS = ("Crunch", "Dark", "Fluttery")


def make_audio_tree(root: Path, descriptors=TEST_DESCRIPTORS, magnitudes=(50, 100), frets=(0, 5, 12),
                    clean=True) -> list[Path]:
    """Write a small audio/ tree in the release layout (string 1) and return the files written."""
    written = []
    for fret in frets:
        note = plucked_note(329.63 * 2 ** (fret / 12), seed=fret)
        if clean:
            written.append(write_audio(root / "ModulationFX" / "Fluttery" / "0" / f"1-{fret}.wav", note))
        for descriptor in descriptors:
            for magnitude in magnitudes:
                path = root / "TestFX" / descriptor / str(magnitude) / f"1-{fret}.wav"
                written.append(write_audio(path, _apply_test_effect(note, descriptor, magnitude)))
    return written


def make_processed_data(project: Path, **tree_options) -> Path:
    """Write audio/, then spectrograms/ and minmax/min_max_values.pkl exactly as the thesis's
    pre-processor does (computed here with the shared spectrogram maths, one file at a time)."""
    from semantic_timbre import layout, safe_io
    from semantic_timbre.data import spectrogram

    files = make_audio_tree(project / layout.AUDIO_DIR, **tree_options)
    min_max = {}
    for path in files:
        note = layout.parse_audio_path(path, project / layout.AUDIO_DIR)
        normalised, low, high = spectrogram.note_to_spectrogram(path)
        np.save(project / layout.SPECTROGRAMS_DIR / note.spectrogram_name, normalised)
        min_max[note.minmax_key] = {"min": low, "max": high}
    safe_io.save_pickle_atomic(project / layout.MINMAX_DIR / layout.MINMAX_FILE_NAME, min_max)
    return project


@pytest.fixture
def project(tmp_path) -> Path:
    """An empty project folder with the thesis's folders, for running the scripts in."""
    for folder in ("audio", "spectrograms", "minmax", "model"):
        (tmp_path / folder).mkdir()
    return tmp_path


@pytest.fixture(scope="session")
def processed_project(tmp_path_factory) -> Path:
    """A project folder with a small real audio tree already pre-processed (read-only: copy it
    before changing anything). 3 descriptors x 2 magnitudes x 3 pitches + 3 clean notes = 21."""
    root = tmp_path_factory.mktemp("processed")
    for folder in ("audio", "spectrograms", "minmax", "model"):
        (root / folder).mkdir()
    return make_processed_data(root)


@pytest.fixture(scope="session")
def trained_project(processed_project, tmp_path_factory) -> Path:
    """processed_project plus model/ holding a tiny VAE trained 20 short epochs on its 21 spectrograms
    (the thesis's kernels and strides, 8 filters per layer, latent size 8; read-only: copy it)."""
    import shutil

    import keras

    from semantic_timbre import layout
    from semantic_timbre.data import processed_data
    from semantic_timbre.network.vae import VAE

    root = tmp_path_factory.mktemp("trained") / "project"
    shutil.copytree(processed_project, root)
    notes = processed_data.require_spectrograms(root / layout.SPECTROGRAMS_DIR)
    spectrograms = np.stack([processed_data.load_spectrogram(root / layout.SPECTROGRAMS_DIR / note.spectrogram_name)
                             for note in notes])
    keras.utils.set_random_seed(0)
    vae = VAE((512, 64, 1), (8, 8, 8, 8, 8), (3, 3, 3, 3, 3), (2, 2, 2, 2, (2, 1)), 8, seed=0)
    # Enough steps for outputs that follow the input and beat the mean spectrogram, then the
    # batch-norm statistics re-estimated as training does; XLA would take longer to compile than to train.
    vae.compile(learning_rate=0.01, jit_compile=False)
    vae.train(spectrograms, batch_size=3, num_epochs=20, verbose=0)
    vae.recalibrate_batch_norm([spectrograms])
    vae.save(root / layout.MODEL_DIR)
    return root


@pytest.fixture
def trained(trained_project, tmp_path) -> Path:
    """A private copy of the session's trained project (the fixture itself is read-only)."""
    import shutil

    root = tmp_path / "project"
    shutil.copytree(trained_project, root)
    return root
