"""tools/check_demo.py on a real tree of demo outputs: passes when all is there, names each problem."""

from __future__ import annotations

import importlib.util
import json
import shutil

import numpy as np
import pytest
import soundfile

from conftest import REPO_ROOT

spec = importlib.util.spec_from_file_location("check_demo", REPO_ROOT / "tools" / "check_demo.py")
check_demo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_demo)


@pytest.fixture()
def outputs(tmp_path):
    """Every file make demo writes, with plucked-note wavs and a report of LSD 4.5 dB."""
    time = np.arange(16317) / 22050
    note = 0.5 * np.exp(-4 * time) * np.sin(2 * np.pi * 440 * time)
    for names in check_demo.STEPS.values():
        for name in names:
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix == ".wav":
                soundfile.write(str(path), note, 22050, subtype="PCM_24")
            elif path.suffix == ".png":
                path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(16))
            elif name.endswith("training_log.csv"):
                path.write_text("epoch,loss,reconstruction_loss,kl_loss\n1,5000.0,4000.0,1000.0\n")
            elif name.endswith("report.json"):
                path.write_text(json.dumps({"log_spectral_distance_db": {"value": 4.5}}))
            else:
                path.write_bytes(b"x")
    (tmp_path / "spectrograms").mkdir()
    np.save(tmp_path / "spectrograms" / "CrunchX100X1-0.wav.npy", np.zeros((512, 64), np.float32))
    return tmp_path


def test_complete_outputs_pass(outputs, capsys):
    assert check_demo.main(["--root", str(outputs)]) == 0
    assert "every step's files are there" in capsys.readouterr().out


def test_each_problem_is_named_and_fails(outputs, capsys):
    soundfile.write(str(outputs / "singlesample/generated/0.wav"), np.zeros(16317), 22050, subtype="PCM_24")
    soundfile.write(str(outputs / "interpolated_samples/generated/2.wav"), np.sign(np.sin(np.arange(16317) / 5.0)),
                    22050, subtype="PCM_24")
    (outputs / "Visualise_VAE_Latent_Space_tSNE_PitchLabel.png").unlink()
    shutil.rmtree(outputs / "model/checkpoint")
    (outputs / "model/training_log.csv").write_text("epoch,loss,reconstruction_loss,kl_loss\n1,nan,4000.0,1000.0\n")
    (outputs / "evaluation/report.json").write_text(json.dumps({"log_spectral_distance_db": {"value": None}}))
    assert check_demo.main(["--root", str(outputs)]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    expected = ["generate_single_sample.py: ", "singlesample/generated/0.wav is silent",
                "interpolated_samples/generated/2.wav is clipped",
                "visualise_latent_space.py -pitch: Visualise_VAE_Latent_Space_tSNE_PitchLabel.png is missing",
                "model/checkpoint/checkpoint.npz is missing", "training_log.csv holds a non-finite loss",
                "the held-out LSD is not a finite number"]
    for fragment in expected:
        assert any(fragment in line for line in errors), (fragment, errors)
    assert len(errors) == 6


def test_an_lsd_above_the_bound_fails(outputs, capsys):
    (outputs / "evaluation/report.json").write_text(json.dumps({"log_spectral_distance_db": {"value": 7.25}}))
    assert check_demo.main(["--root", str(outputs)]) == 1
    assert "the held-out LSD is 7.25 dB, above the 6 dB" in capsys.readouterr().err
    assert check_demo.main(["--root", str(outputs), "--max-lsd-db", "8"]) == 0
