"""The Pipeline (semantic_timbre/pipeline.py), one object from a note to audio, on real small data and
the session's tiny trained model: it writes what the commands write, and one command run reads
the model folder's parameters once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from conftest import run_script
from semantic_timbre import layout

SINGLE = "generate_single_sample.py"
INTERPOLATION = "generate_timbre_interpolation.py"



def pipeline_of(root: Path, runtime: str = "auto"):
    from semantic_timbre.pipeline import Pipeline

    return Pipeline(root / layout.MODEL_DIR, root / layout.SPECTROGRAMS_DIR, root / layout.MINMAX_DIR,
                    root / layout.AUDIO_DIR, runtime=runtime)


def read_wavs(folder: Path) -> dict[str, np.ndarray]:
    return {path.name: soundfile.read(str(path))[0] for path in sorted(folder.iterdir())}


def assert_same_outputs(command_dir: Path, pipeline_dir: Path) -> None:
    for subdir in (layout.GENERATED_SUBDIR, layout.ORIGINAL_SUBDIR):
        ours, theirs = read_wavs(pipeline_dir / subdir), read_wavs(command_dir / subdir)
        assert sorted(ours) == sorted(theirs)
        for name in ours:
            np.testing.assert_array_equal(ours[name], theirs[name], err_msg=f"{subdir}/{name}")


@pytest.fixture
def parameter_reads(monkeypatch) -> list:
    """The model folders whose parameters are read (network.model_files.read_parameters: every
    check of a model folder goes through it), one entry a read."""
    from semantic_timbre.network import model_files

    reads, original = [], model_files.read_parameters

    def counting(folder):
        reads.append(Path(folder))
        return original(folder)

    monkeypatch.setattr(model_files, "read_parameters", counting)
    return reads


@pytest.mark.parametrize("runtime", ["auto", "tensorflow"])
def test_one_single_sample_run_reads_the_model_parameters_once(trained, parameter_reads, runtime):
    result = run_script(SINGLE, "Crunch", "100", "E4", "--seed", "3", "--runtime", runtime, cwd=trained)
    assert result.returncode == 0, result.stderr
    assert parameter_reads == [Path(layout.MODEL_DIR)], f"{len(parameter_reads)} reads"


def test_the_pipeline_writes_the_single_sample_commands_wavs(trained, tmp_path):
    result = run_script(SINGLE, "Crunch", "100", "E4", "--seed", "3", "--output-dir", tmp_path / "command",
                        cwd=trained)
    assert result.returncode == 0, result.stderr
    pipeline = pipeline_of(trained)
    note = pipeline.find("crunch", "100", "e4")
    written = pipeline.single_sample(note, tmp_path / "pipeline", seed=3)
    assert written == [tmp_path / "pipeline" / subdir / "0.wav"
                       for subdir in (layout.GENERATED_SUBDIR, layout.ORIGINAL_SUBDIR)]
    assert_same_outputs(tmp_path / "command", tmp_path / "pipeline")


def test_the_pipeline_writes_the_interpolation_commands_wavs(trained, tmp_path):
    result = run_script(INTERPOLATION, "Crunch", "100", "E4", "Dark", "50", "A4", "4", "--seed", "1", "--use-mean",
                        "--output-dir", tmp_path / "command", cwd=trained)
    assert result.returncode == 0, result.stderr
    pipeline = pipeline_of(trained)
    first, second = pipeline.find("Crunch", 100, "E4"), pipeline.find("Dark", 50, "A4")
    written = pipeline.interpolation(first, second, 4, tmp_path / "pipeline", use_mean=True, seed=1)
    assert len(written) == 6
    assert_same_outputs(tmp_path / "command", tmp_path / "pipeline")


def test_the_pipelines_steps_are_the_single_samples(trained, tmp_path, parameter_reads):
    """find, load, conditions, encode, decode and invert, one at a time, give single_sample's audio;
    the model folder is read once for all of them, and not before it is needed."""
    from semantic_timbre.pipeline import limit_for_writing

    pipeline = pipeline_of(trained, runtime="tensorflow")
    note = pipeline.find("Crunch", "100", "E4")
    assert note.spectrogram_name == "CrunchX100X1-0.wav.npy"
    assert parameter_reads == []  # finding a note needs no model
    spectrograms, ranges = pipeline.load([note])
    conditions = pipeline.conditions([note])
    assert conditions is None and spectrograms.shape == (1, 512, 64)  # the thesis's unconditioned VAE
    code = pipeline.encode(spectrograms, conditions, use_mean=False, seed=3)
    assert code.shape == (1, pipeline.config.latent_space_dimension)
    generated = pipeline.decode(code, conditions)[0]
    audio = pipeline.invert(generated, *ranges[0], seed=3)
    written = pipeline.single_sample(note, tmp_path / "out", seed=3, notice=lambda message: None)
    expected = limit_for_writing(audio, written[0], notice=lambda message: None)  # as it is written
    np.testing.assert_allclose(soundfile.read(str(written[0]))[0], expected, atol=2 ** -22)
    assert len(parameter_reads) == 1


@pytest.mark.parametrize("runtime", ["auto", "tensorflow"])
def test_a_latent_view_reads_the_model_parameters_once(trained, parameter_reads, runtime):
    result = run_script("visualise_latent_space.py", "--method", "pca", "--no-html", "--runtime", runtime, cwd=trained)
    assert result.returncode == 0, result.stderr
    assert parameter_reads == [Path(layout.MODEL_DIR)], f"{len(parameter_reads)} reads"
