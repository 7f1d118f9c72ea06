"""Training: the script on a handful of real spectrograms with a tiny architecture.

Tiny model: the thesis's kernels and strides with 8 filters per layer and a latent size of 8
(--filters 8 8 8 8 8 --latent 8), so a few epochs take seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import (REPO_ROOT, assert_one_line_error, run_script, run_script_subprocess,
                      run_without_tensorflow_check)

SCRIPT = "train_timbre_generation_vae.py"
TINY = ("--filters", 8, 8, 8, 8, 8, "--latent", 8, "--batch-size", 8)


def copy_project(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def read_log(project: Path) -> list[dict]:
    from semantic_timbre import training

    return training.read_training_log(project / "model" / training.LOG_FILE_NAME)


def checkpoint_epoch(project: Path) -> int | None:
    from semantic_timbre import training

    try:
        meta = training.read_checkpoint_meta(training.checkpoint_path(project / "model"))
    except Exception:  # being replaced right now: try again later
        return None
    return None if meta is None else meta["epoch"]


@pytest.fixture(scope="module")
def trained_tiny(processed_project, tmp_path_factory) -> tuple:
    """A project trained for 3 epochs with a 20% validation split and TensorBoard logs in runs/
    (read-only: copy it)."""
    project = copy_project(processed_project, tmp_path_factory.mktemp("training") / "project")
    result = run_script(SCRIPT, *TINY, "--epochs", 3, "--validation-split", 0.2, "--learning-rate", 0.002,
                        "--tensorboard", "runs", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    return project, result


def test_training_lowers_the_loss_and_leaves_a_loadable_model(trained_tiny):
    from semantic_timbre import training
    from semantic_timbre.network.vae import VAE

    project, result = trained_tiny
    history = read_log(project)
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["reconstruction_loss"] < history[0]["reconstruction_loss"]
    for row in history:
        assert set(row) == {"epoch", "loss", "reconstruction_loss", "kl_loss",
                            "val_loss", "val_reconstruction_loss", "val_kl_loss"}
        assert all(np.isfinite(value) for value in row.values())
    # the validation losses are computed on held-out files (4 of 21), not a copy of the training losses
    assert history[-1]["val_loss"] != history[-1]["loss"]
    assert (project / "model" / training.LOSS_CURVE_FILE_NAME).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "validating on 4" in result.stdout
    assert ", no XLA" in result.stdout  # auto: XLA only with a GPU
    assert "re-estimated the batch-norm statistics on 17 training spectrograms" in result.stdout
    held_out = json.loads((project / "model" / training.VALIDATION_SPLIT_FILE_NAME).read_text())["validation"]
    assert len(held_out) == 4 and all((project / "spectrograms" / name).is_file() for name in held_out)

    vae = VAE.load(str(project / "model"))
    assert vae.parameters[1] == [8, 8, 8, 8, 8] and vae.latent_space_dimension == 8
    spectrogram = np.load(sorted((project / "spectrograms").glob("*.npy"))[0])
    reconstruction, latent = vae.reconstruct(spectrogram[None], seed=0)
    assert reconstruction.shape == (1, 512, 64, 1) and latent.shape == (1, 8)
    assert np.all(np.isfinite(reconstruction))


def test_a_killed_run_resumes_from_its_last_epoch(processed_project, tmp_path):
    project = copy_project(processed_project, tmp_path / "project")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    process = subprocess.Popen([sys.executable, str(REPO_ROOT / SCRIPT), *map(str, TINY), "--epochs", "200"],
                               cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while (checkpoint_epoch(project) or 0) < 1:
            assert process.poll() is None, "the training process ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint after 240 s"
            time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    done = checkpoint_epoch(project)
    assert 1 <= done < 200
    before = read_log(project)
    assert [row["epoch"] for row in before] == list(range(1, done + 1))
    assert not (project / "model" / "weights.h5").exists()  # killed: no final model yet

    result = run_script(SCRIPT, *TINY, "--epochs", done + 2, cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"resuming from the checkpoint in model/checkpoint/ after epoch {done} of {done + 2}" in result.stdout
    after = read_log(project)
    assert [row["epoch"] for row in after] == list(range(1, done + 3))
    assert after[:done] == before
    assert checkpoint_epoch(project) == done + 2
    # the weights and optimizer state came back: the resumed epochs go on from where the loss was
    assert after[done]["loss"] < before[0]["loss"]
    assert (project / "model" / "weights.h5").is_file()
    assert not (project / "model" / "training_log.csv").read_text().count("val_")


def test_mirrored_strategy_on_two_logical_cpus_trains(trained_tiny, tmp_path):
    # Also --restart: the 3-epoch checkpoint (with validation) already there is ignored.
    project = copy_project(trained_tiny[0], tmp_path / "project")
    # a process of its own: the CPU can be split into logical devices only before TensorFlow starts
    result = run_script_subprocess(SCRIPT, *TINY, "--epochs", 3, "--learning-rate", 0.002, "--distribute",
                                   "mirrored", "--logical-cpus", 2, "--restart", cwd=project, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "distributing over 2 replica(s) with MirroredStrategy" in result.stdout
    assert "resuming" not in result.stdout
    history = read_log(project)
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert "val_loss" not in history[0]
    assert all(np.isfinite(row["loss"]) for row in history)
    assert history[-1]["loss"] < history[0]["loss"]
    assert (project / "model" / "weights.h5").is_file()


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for handle in sockets:
        handle.bind(("localhost", 0))
    ports = [handle.getsockname()[1] for handle in sockets]
    for handle in sockets:
        handle.close()
    return ports


def test_multi_worker_training_across_two_processes(processed_project, tmp_path):
    # Two workers on this machine stand in for two machines, each with its own copy of the project;
    # the cluster comes from TF_CONFIG. Only worker 0 writes the model folder.
    ports = free_ports(2)
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    projects = [copy_project(processed_project, tmp_path / f"worker{index}") for index in range(2)]
    processes = []
    for index, project in enumerate(projects):
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="2",
                   TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        processes.append(subprocess.Popen(
            [sys.executable, str(REPO_ROOT / SCRIPT), *map(str, TINY), "--epochs", "3", "--learning-rate", "0.002",
             "--distribute", "multi-worker"], cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True))
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=240))
    finally:
        for process in processes:
            process.kill()
            process.wait()
    for process, (stdout, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stdout + stderr
        assert "distributing over 2 replica(s)" in stdout
    history = read_log(projects[0])
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert all(np.isfinite(row["loss"]) for row in history)
    assert history[-1]["loss"] < history[0]["loss"]
    assert (projects[0] / "model" / "weights.h5").is_file()
    assert list((projects[1] / "model").iterdir()) == []


def test_missing_or_empty_spectrograms_folder_names_the_preprocessor(project):
    result = run_script(SCRIPT, *TINY, "--spectrograms-dir", "nowhere", cwd=project)
    assert_one_line_error(result, "nowhere/ does not exist", "process_audio_into_spectrograms.py")
    result = run_script(SCRIPT, *TINY, cwd=project)
    assert_one_line_error(result, "holds no spectrograms", "process_audio_into_spectrograms.py")
    assert list((project / "model").iterdir()) == []


def test_a_spectrogram_of_the_wrong_shape_is_named_before_training(processed_project, tmp_path):
    project = copy_project(processed_project, tmp_path / "project")
    bad = project / "spectrograms" / "CrunchX100X1-7.wav.npy"
    np.save(bad, np.zeros((512, 32), dtype=np.float32))
    result = run_script(SCRIPT, *TINY, "--epochs", 1, cwd=project)
    assert_one_line_error(result, "CrunchX100X1-7.wav.npy", "(512, 32)", "(512, 64)")
    assert "training on" not in result.stdout
    assert list((project / "model").iterdir()) == []


def test_resume_without_a_checkpoint_is_refused(processed_project, tmp_path):
    project = copy_project(processed_project, tmp_path / "project")
    result = run_script(SCRIPT, *TINY, "--resume", cwd=project)
    assert_one_line_error(result, "no checkpoint to resume from")


def test_without_recovery_a_nan_loss_stops_keeps_the_last_good_checkpoint_and_resuming_slower_works(
        trained_tiny, tmp_path):
    # A real divergence: resuming the trained model with an absurd learning rate (1e30) blows the
    # weights up within a step. One batch an epoch (batch 32 > 21 notes, no validation), so an
    # epoch's logged loss is that of the weights before its one update: the update that poisons the
    # weights shows only in the next epoch's loss, and that epoch's checkpoint must never be written.
    from semantic_timbre import training

    project = copy_project(trained_tiny[0], tmp_path / "project")
    model = project / "model"
    kept = {path.name: path.read_bytes() for path in [*model.iterdir(), training.checkpoint_path(model)]
            if path.is_file()}
    one_batch = [*TINY[:-2], "--batch-size", 32, "--epochs", 6]
    result = run_script(SCRIPT, *one_batch, "--learning-rate", 1e30, "--no-nan-recovery", cwd=project)
    error = assert_one_line_error(result, "the loss became nan in epoch 5", "checkpoint (epoch 3)", "untouched",
                                  "--learning-rate")
    assert "resuming" in result.stdout, error
    assert {path.name: path.read_bytes() for path in [*model.iterdir(), training.checkpoint_path(model)]
            if path.is_file()} == kept
    assert checkpoint_epoch(project) == 3 and [row["epoch"] for row in read_log(project)] == [1, 2, 3]
    # the advised fix: a lower learning rate, resuming from the kept checkpoint
    result = run_script(SCRIPT, *one_batch, "--learning-rate", 0.001, cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "resuming from the checkpoint in model/checkpoint/ after epoch 3 of 6" in result.stdout
    history = read_log(project)
    assert [row["epoch"] for row in history] == [1, 2, 3, 4, 5, 6]
    assert all(np.isfinite(row["loss"]) for row in history)


def _files_of(model: Path) -> dict:
    from semantic_timbre import training

    return {path.name: path.read_bytes() for path in [*model.iterdir(), training.checkpoint_path(model)]
            if path.is_file()}


def test_a_learning_rate_that_blows_up_is_recovered_from_and_training_finishes(trained_tiny, tmp_path):
    # Resuming the trained model at a learning rate of 10,000: within an epoch the decoder's
    # activations overflow its batch-norm statistics (infinite). Recovery puts back the state the
    # epoch started from, halves the rate and goes on; the run ends with a finite model.
    from semantic_timbre import training
    from semantic_timbre.network.vae import VAE

    project = copy_project(trained_tiny[0], tmp_path / "project")
    result = run_script(SCRIPT, *TINY, "--epochs", 6, "--learning-rate", 1e4, "--no-batch-norm-recalibration",
                        cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    recoveries = [line for line in result.stdout.splitlines() if "put back the last good weights" in line]
    assert recoveries and "halved the learning rate (now 5e+03)" in recoveries[0], result.stdout
    assert "(recovery 1 of 3)" in recoveries[0]
    history = read_log(project)
    assert [row["epoch"] for row in history] == [1, 2, 3, 4, 5, 6]
    assert all(np.isfinite(value) for row in history for value in row.values())
    vae = VAE.load(project / "model")
    assert all(np.all(np.isfinite(weight.numpy())) for weight in vae.weights)
    meta = training.read_checkpoint_meta(training.checkpoint_path(project / "model"))
    assert meta["epoch"] == 6 and meta["recoveries"] == len(recoveries)
    assert meta["learning_rate_scale"] == pytest.approx(0.5 ** len(recoveries))


def test_a_loss_that_stays_non_finite_stops_after_three_recoveries_and_keeps_the_checkpoint(trained_tiny, tmp_path):
    from semantic_timbre import training

    project = copy_project(trained_tiny[0], tmp_path / "project")
    model = project / "model"
    kept = _files_of(model)
    result = run_script(SCRIPT, *TINY, "--epochs", 6, "--learning-rate", 1e30, cwd=project)
    error = assert_one_line_error(result, "after 3 recoveries", "training stopped", "untouched", "--learning-rate")
    assert result.stdout.count("put back the last good weights") == 3, error
    assert "(recovery 3 of 3)" in result.stdout
    meta = training.read_checkpoint_meta(training.checkpoint_path(model))
    assert meta["epoch"] >= 3
    if meta["epoch"] == 3:  # no epoch at the halved rates was good: the files are exactly as they were
        assert _files_of(model) == kept
    with np.load(training.checkpoint_path(model)) as archive:
        assert not training.non_finite_arrays({name: archive[name] for name in archive.files if name != "meta"})


def test_the_same_seed_gives_the_same_losses(processed_project, tmp_path):
    runs = []
    for name in ("first", "second"):
        project = copy_project(processed_project, tmp_path / name)
        result = run_script(SCRIPT, *TINY, "--epochs", 2, "--seed", 3, "--warmup-epochs", 1, cwd=project)
        assert result.returncode == 0, result.stdout + result.stderr
        runs.append(read_log(project))
    assert runs[0] == runs[1]


def test_bad_stability_options_are_refused_before_tensorflow_starts(processed_project, tmp_path):
    project = copy_project(processed_project, tmp_path / "project")
    for options, message in ((("--warmup-epochs", -1), "--warmup-epochs must be"),
                             (("--clip-gradient-norm", -2), "--clip-gradient-norm must be a number above 0")):
        result, tensorflow_started = run_without_tensorflow_check(SCRIPT, *TINY, *options, cwd=project)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert not tensorflow_started


def test_a_spectrogram_with_nan_values_is_named(processed_project, tmp_path):
    # A file whose header is right but which holds a NaN passes the start-up header check (it reads
    # headers only); the loss becomes NaN at its batch, training stops and the file is named.
    project = copy_project(processed_project, tmp_path / "project")
    bad = project / "spectrograms" / "DarkX50X1-5.wav.npy"
    values = np.load(bad)
    values[100, 10] = np.nan
    np.save(bad, values)
    result = run_script(SCRIPT, *TINY, "--epochs", 1, "--no-xla", cwd=project)
    assert_one_line_error(result, "spectrogram spectrograms/DarkX50X1-5.wav.npy holds NaN", "no checkpoint")
    assert not (project / "model" / "weights.h5").exists()
    assert not (project / "model" / "checkpoint").exists()


def test_dataset_streams_every_file_once_per_epoch_in_a_seeded_order(processed_project):
    from semantic_timbre.data import dataset

    paths = dataset.spectrogram_files(processed_project / "spectrograms")
    stream = iter(dataset.spectrogram_dataset(paths, 8, seed=3))
    epochs = [np.concatenate([next(stream).numpy() for _ in range(dataset.steps_per_epoch(len(paths), 8))])
              for _ in range(2)]
    expected = np.stack([np.load(path) for path in paths])[..., None]
    key = lambda batch: sorted(map(bytes, batch.reshape(len(batch), -1)[:, :64].view(np.uint8)))  # noqa: E731
    for epoch in epochs:
        assert epoch.shape == (21, 512, 64, 1) and epoch.dtype == np.float32
        assert key(epoch) == key(expected)  # every file exactly once
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled each epoch
    # epoch 1 of a stream resumed at epoch 1 has the same order as epoch 1 of an unbroken stream
    resumed = iter(dataset.spectrogram_dataset(paths, 8, seed=3, first_epoch=1))
    again = np.concatenate([next(resumed).numpy() for _ in range(dataset.steps_per_epoch(len(paths), 8))])
    assert np.array_equal(again, epochs[1])


def test_dataset_reads_other_npy_layouts(tmp_path):
    from semantic_timbre.data import dataset

    rng = np.random.default_rng(0)
    plain, wide = rng.random((512, 64), dtype=np.float32), rng.random((512, 64))
    np.save(tmp_path / "CrunchX100X1-0.wav.npy", plain)
    np.save(tmp_path / "CrunchX100X1-1.wav.npy", np.asfortranarray(wide))  # float64, Fortran order
    paths = dataset.spectrogram_files(tmp_path)
    batch = next(iter(dataset.spectrogram_dataset(paths, 2, shuffle=False))).numpy()
    np.testing.assert_array_equal(batch[0, ..., 0], plain)
    np.testing.assert_array_equal(batch[1, ..., 0], wide.astype(np.float32))
    (tmp_path / "CrunchX100X1-2.wav.npy").write_bytes(b"not a spectrogram")
    with pytest.raises(Exception, match="CrunchX100X1-2.wav.npy is not a readable .npy file"):
        dataset.spectrogram_files(tmp_path)


def test_tensorboard_logs_are_written(trained_tiny):
    events = list((trained_tiny[0] / "runs").rglob("events.out.tfevents.*"))
    assert events and all(path.stat().st_size > 0 for path in events)


def test_other_settings_stop_with_the_difference_and_keep_the_model(trained_tiny, tmp_path):
    # A finished 3-epoch model and its checkpoint: another latent size must not replace them.
    project = copy_project(trained_tiny[0], tmp_path / "project")
    model = project / "model"
    kept = {path: path.read_bytes() for path in model.rglob("*") if path.is_file()}
    other = [*TINY[:-4], "--latent", 4, "--batch-size", 8]
    result = run_script(SCRIPT, *other, "--epochs", 5, cwd=project)
    assert_one_line_error(result, "other settings", "latent_space_dimension 4 here, 8 in the checkpoint",
                          "--restart", "another --model-dir")
    assert {path: path.read_bytes() for path in model.rglob("*") if path.is_file()} == kept
    # (--restart, the way to replace them, is exercised by the mirrored-strategy test)


def test_the_same_spectrograms_folder_typed_another_way_resumes(trained_tiny, tmp_path):
    project = copy_project(trained_tiny[0], tmp_path / "project")
    for typed in (f"{project}/spectrograms/", f"../{project.name}/./spectrograms"):
        result = run_script(SCRIPT, *TINY, "--epochs", 3, "--spectrograms-dir", typed, cwd=project)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "nothing to do" in result.stdout, result.stdout
    # a moved project still resumes: the folder is recorded relative to the model folder
    moved = tmp_path / "moved"
    project.rename(moved)
    result = run_script(SCRIPT, *TINY, "--epochs", 4, cwd=moved)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "resuming from the checkpoint in model/checkpoint/ after epoch 3 of 4" in result.stdout


def test_a_finished_model_without_a_checkpoint_is_not_overwritten(trained_tiny, tmp_path):
    project = copy_project(trained_tiny[0], tmp_path / "project")
    shutil.rmtree(project / "model" / "checkpoint")
    weights = (project / "model" / "weights.h5").read_bytes()
    result = run_script(SCRIPT, *TINY, "--epochs", 1, cwd=project)
    assert_one_line_error(result, "already holds a trained model", "--restart", "another --model-dir")
    assert (project / "model" / "weights.h5").read_bytes() == weights
    assert "training on" not in result.stdout


def test_zero_epochs_and_bad_numbers_are_refused_before_tensorflow_starts(processed_project, tmp_path):
    project = copy_project(processed_project, tmp_path / "project")
    for option, value, message in (("--epochs", 0, "--epochs must be at least 1"),
                                   ("--batch-size", 0, "--batch-size must be at least 1"),
                                   ("--learning-rate", -1, "--learning-rate must be a number above 0")):
        result, tensorflow_started = run_without_tensorflow_check(SCRIPT, *TINY, option, value, cwd=project)
        assert_one_line_error(result, message)
        assert not tensorflow_started
    assert list((project / "model").iterdir()) == []


def test_the_demo_preset_trains_with_its_cosine_schedule(processed_project, tmp_path):
    # A smoke test of `make demo`'s training step: the demo architecture, batch and schedule.
    from semantic_timbre.network import config
    from semantic_timbre.network.vae import VAE

    project = copy_project(processed_project, tmp_path / "project")
    result = run_script(SCRIPT, "--preset", "demo", "--epochs", 2, cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    # 21 notes: 2 steps an epoch, so the 3 epochs of warm-up are 6 steps
    assert "batch 16, learning rate 0.002 with cosine decay to 0.02x, warm-up 6 steps, epochs 1-2" in result.stdout
    history = read_log(project)
    assert [row["epoch"] for row in history] == [1, 2] and all(np.isfinite(row["loss"]) for row in history)
    vae = VAE.load(project / "model")
    assert vae.parameters[1] == list(config.DEMO_CONFIGURATION["conv_filters"])
    assert vae.latent_space_dimension == config.DEMO_CONFIGURATION["latent_space_dimension"]


def test_bfloat16_on_a_cpu_without_it_is_refused_before_tensorflow_starts(processed_project, tmp_path):
    from semantic_timbre import training

    if training.bfloat16_is_native():
        pytest.skip("this machine has a GPU or bfloat16 instructions: --mixed-precision bfloat16 is allowed")
    project = copy_project(processed_project, tmp_path / "project")
    result, tensorflow_started = run_without_tensorflow_check(SCRIPT, *TINY, "--mixed-precision", "bfloat16",
                                                              cwd=project)
    assert_one_line_error(result, "--mixed-precision bfloat16 needs a GPU or a CPU with bfloat16 instructions",
                          "train without --mixed-precision")
    assert not tensorflow_started
    assert list((project / "model").iterdir()) == []


def test_native_bfloat16_is_read_from_the_cpu_flags():
    from semantic_timbre.training import cpu_has_native_bfloat16

    epyc_avx2 = ("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\n"
                 "flags\t\t: fpu sse2 ssse3 fma avx f16c avx2 bmi2 sha_ni\n\nprocessor\t: 1\n")
    assert not cpu_has_native_bfloat16(epyc_avx2)
    assert not cpu_has_native_bfloat16("flags\t\t: fpu avx2 avx512f avx512bw avx512vl avx512_vnni\n")
    assert cpu_has_native_bfloat16("flags\t\t: fpu avx2 avx512f avx512_bf16 avx512_fp16\n")  # Sapphire Rapids
    assert cpu_has_native_bfloat16("flags\t\t: fpu avx2 amx_bf16 amx_tile amx_int8\n")
    assert cpu_has_native_bfloat16("processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n")  # Arm (Graviton 3)
    assert not cpu_has_native_bfloat16("processor\t: 0\nFeatures\t: fp asimd evtstrm aes crc32\n")
    assert not cpu_has_native_bfloat16("")


def test_onednn_held_below_its_bfloat16_kernels_counts_as_no_bfloat16(monkeypatch):
    # ONEDNN_MAX_CPU_ISA=AVX2 (make test-avx2) leaves oneDNN no bfloat16 convolution, whatever the CPU.
    from semantic_timbre import training

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert not training.bfloat16_is_native()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx512_core_vnni")
    assert not training.bfloat16_is_native()
