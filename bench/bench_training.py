"""Benchmark of training: speed against the thesis's Keras 2 code, and memory against data-set size.

1. Speed: examples/s of the thesis configuration trained by the thesis's own code under Keras 2
   (bench/keras2_thesis_training.py: graph mode with eager execution disabled, the legacy Adam,
   the loss 1,000,000 x MSE + KL given to compile with the two metrics, model.fit on a numpy
   array), run by --baseline-python (a venv with tensorflow-cpu 2.15, as the thesis ran it,
   outside the repository) or, without it, by this venv's tf-keras, and by
   ours (semantic_timbre.network.vae.VAE through training.build_vae and model.fit, our train_step),
   interleaved: baseline, ours, baseline, ours, ... for --rounds rounds. Each side of a round runs
   in its own fresh process, so no TensorFlow state (thread pools, allocator, oneDNN caches,
   Keras 2 against Keras 3) of one side reaches the other; the start-up, the model's build and
   --warmup steps are not timed, then --steps steps are. Random spectrograms in memory. Prints the
   median and the spread ((max - min) / median) of each side and of the ratio ours/baseline of
   each round, in wall time and in CPU time (user + system of the process), and the 1-minute
   load average at the start and the end: other processes on the same cores slow both sides'
   wall time (the ratio of a round, whose two sides ran back to back, less so) and their CPU
   time much less. Targets: median ratio >= 3, spread of ours within 10%.
2. Memory: peak RSS of a training run (demo configuration, the real training code: streaming,
   checkpoint, log, final save) over 2,000 and over 20,000 spectrogram files, each in a fresh
   process. Target: within 10% of each other and under 3 GB. Only with --memory.

Usage: python bench/bench_training.py [--batch-size 64] [--rounds 5] [--warmup 1] [--steps 5] [--xla]
       [--baseline-python ../tf215/bin/python] [--quick] [--memory]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from semantic_timbre import layout  # noqa: E402
from semantic_timbre.network.config import DEMO_CONFIGURATION, THESIS_CONFIGURATION  # noqa: E402
from semantic_timbre.data.spectrogram import SPECTROGRAM_SHAPE  # noqa: E402

LEARNING_RATE = 0.0005
BASELINE_SCRIPT = REPO_ROOT / "bench" / "keras2_thesis_training.py"
SIDES = ("baseline", "ours")


# ---------------------------------------------------------------- 1. speed: one side, in its own process

def _spectrograms(count: int, configuration: dict) -> np.ndarray:
    return np.random.default_rng(0).random((count, *configuration["input_shape"]), dtype=np.float32)


def _parameters(configuration: dict) -> list:
    return [configuration[key] for key in
            ("input_shape", "conv_filters", "conv_kernels", "conv_strides", "latent_space_dimension")]


def _step_clock(callback_base):
    """A Keras callback (of either Keras) recording the wall and CPU times at the end of every batch."""

    class StepClock(callback_base):
        def __init__(self):
            super().__init__()
            self.ends = []

        def on_train_batch_begin(self, batch, logs=None):
            if not self.ends:
                self.ends.append((time.perf_counter(), time.process_time()))

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append((time.perf_counter(), time.process_time()))

    return StepClock()


def run_ours(configuration: dict, batch_size: int, warmup: int, steps: int, xla: bool = False) -> list:
    """Our training step (training.build_vae, model.fit as training.train calls it); return the
    (wall, CPU) seconds of each step."""
    from semantic_timbre import training

    training.configure_cpu()  # as train_timbre_generation_vae.py does before TensorFlow starts
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    vae = training.build_vae(configuration, LEARNING_RATE, xla=xla)
    x = _spectrograms(batch_size, configuration)
    data = tf.data.Dataset.from_tensors(x).repeat()
    clock = _step_clock(keras.callbacks.Callback)
    vae.fit(data, epochs=1, steps_per_epoch=warmup + steps, verbose=0, shuffle=False, callbacks=[clock])
    return np.diff(clock.ends, axis=0).tolist()


def run_side(side: str, quick: bool, batch_size: int, warmup: int, steps: int, xla: bool = False) -> float:
    """Run in a fresh process: print a JSON line with the wall and CPU seconds of each step;
    return examples/s."""
    configuration = DEMO_CONFIGURATION if quick else THESIS_CONFIGURATION
    seconds = run_ours(configuration, batch_size, warmup, steps, xla)
    wall, cpu = [step[0] for step in seconds], [step[1] for step in seconds]
    speed = steps * batch_size / sum(wall[warmup:])
    print(json.dumps({"side": side, "step_seconds": wall, "step_cpu_seconds": cpu, "examples_per_second": speed}),
          flush=True)
    return speed


def baseline_python(arguments) -> str:
    """The Python that runs the baseline: --baseline-python when it exists, else ours (tf-keras)."""
    if arguments.baseline_python and Path(arguments.baseline_python).exists():
        return arguments.baseline_python
    return sys.executable


def measure_side(side: str, arguments) -> dict:
    counts = ["--batch-size", str(arguments.batch_size), "--warmup", str(arguments.warmup), "--steps",
              str(arguments.steps)]
    if side == "baseline":
        configuration = DEMO_CONFIGURATION if arguments.quick else THESIS_CONFIGURATION
        command = [baseline_python(arguments), str(BASELINE_SCRIPT), "--parameters",
                   json.dumps(_parameters(configuration))] + counts
    else:
        command = [sys.executable, str(Path(__file__).resolve()), "--child", side] + counts
        command += ["--quick"] if arguments.quick else []
        command += ["--xla"] if arguments.xla else []
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the {side} process failed (exit {done.returncode}): {done.stderr[-2000:]}")
    return json.loads(lines[-1])


def _summary(values: list[float]) -> tuple[float, float]:
    """(median, spread): spread = (max - min) / median."""
    median = statistics.median(values)
    return median, (max(values) - min(values)) / median


def speed_benchmark(arguments) -> dict:
    label = ("demo (--quick)" if arguments.quick else "thesis") + (", ours with XLA" if arguments.xla else "")
    print(f"speed: {label} configuration, batch {arguments.batch_size}, {arguments.rounds} rounds of "
          f"{arguments.warmup} warm-up + {arguments.steps} timed steps, each side in its own process; "
          f"load average (1 min) {os.getloadavg()[0]:.2f} at the start", flush=True)
    if arguments.baseline_python and baseline_python(arguments) != arguments.baseline_python:
        print(f"  {arguments.baseline_python} is absent: the baseline runs under tf-keras in this venv", flush=True)
    speeds, cpu_speeds = {side: [] for side in SIDES}, {side: [] for side in SIDES}
    versions = set()
    for round_ in range(arguments.rounds):
        for side in SIDES:
            result = measure_side(side, arguments)
            if side == "baseline":
                versions.add(f"TensorFlow {result.get('tensorflow')}, Keras {result.get('keras')}")
            speeds[side].append(result["examples_per_second"])
            cpu_speeds[side].append(arguments.steps * arguments.batch_size
                                    / sum(result["step_cpu_seconds"][arguments.warmup:]))
            timed = zip(result["step_seconds"][arguments.warmup:], result["step_cpu_seconds"][arguments.warmup:])
            steps = " ".join(f"{wall:.2f}/{cpu:.2f}" for wall, cpu in timed)
            print(f"  round {round_ + 1} {side:8s} {result['examples_per_second']:8.3f} examples/s "
                  f"(timed steps, wall/CPU s: {steps}; load {os.getloadavg()[0]:.2f})", flush=True)
    print(f"  baseline ran under {', '.join(sorted(versions))} ({baseline_python(arguments)})", flush=True)
    ratios = [ours / baseline for baseline, ours in zip(speeds["baseline"], speeds["ours"])]
    cpu_ratios = [ours / baseline for baseline, ours in zip(cpu_speeds["baseline"], cpu_speeds["ours"])]
    figures = {"configuration": label, "batch_size": arguments.batch_size, "rounds": arguments.rounds,
               "steps": arguments.steps, "baseline": sorted(versions), "examples_per_second": speeds, "ratios": ratios,
               "examples_per_cpu_second": cpu_speeds, "cpu_ratios": cpu_ratios}
    # Wall time is what a user waits; CPU time (user + system, every thread) is the work done,
    # which other processes on the same cores disturb much less.
    for name, values, unit in (("Keras 2 baseline", speeds["baseline"], " examples/s"),
                               ("ours", speeds["ours"], " examples/s"), ("ratio ours/baseline", ratios, "x"),
                               ("baseline, CPU time", cpu_speeds["baseline"], " examples/CPU-s"),
                               ("ours, CPU time", cpu_speeds["ours"], " examples/CPU-s"),
                               ("ratio, CPU time", cpu_ratios, "x")):
        median, spread = _summary(values)
        print(f"  {name:20s} median {median:7.3f}{unit}, spread {100 * spread:5.1f}% "
              f"(min {min(values):.3f}, max {max(values):.3f})", flush=True)
    print(f"  targets: median ratio >= 3 (got {statistics.median(ratios):.2f}), spread of ours within 10% "
          f"(got {100 * _summary(speeds['ours'])[1]:.1f}%); load average (1 min) {os.getloadavg()[0]:.2f} "
          "at the end", flush=True)
    return figures


# ---------------------------------------------------------------- 2. memory

def spectrogram_names(count: int) -> list[str]:
    """`count` distinct well-formed spectrogram names (release layout: descriptor x magnitude x string x fret)."""
    combinations = itertools.product(layout.RELEASE_STRINGS, layout.FRETS, layout.RELEASE_MAGNITUDES,
                                     layout.DESCRIPTORS)
    names = [layout.spectrogram_file_name(descriptor, magnitude, f"{string}-{fret}.wav")
             for (string, fret, magnitude, descriptor), _ in zip(combinations, range(count))]
    if len(names) < count:
        raise ValueError(f"at most {len(names)} distinct spectrogram names exist")
    return names


def write_spectrogram_folder(folder: Path, count: int, distinct: int = 300, seed: int = 0) -> Path:
    """Fill `folder` with `count` random spectrogram files: `distinct` real files, the rest hard
    links to them (copies where hard links are not possible)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = spectrogram_names(count)
    originals = []
    for name in names[:distinct]:
        path = folder / name
        np.save(path, rng.random(SPECTROGRAM_SHAPE, dtype=np.float32))
        originals.append(path)
    for index, name in enumerate(names[distinct:]):
        source, target = originals[index % len(originals)], folder / name
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
    return folder


def _child_train(folder: str, model_dir: str, steps: int, batch_size: int) -> None:
    """Run in a fresh process: the real training code over every file of `folder`, `steps` batches."""
    from semantic_timbre import training
    from semantic_timbre.network import vae

    options = training.TrainingOptions(configuration=vae.DEMO_CONFIGURATION, spectrograms_dir=folder,
                                       model_dir=model_dir, epochs=1, batch_size=batch_size,
                                       steps_per_epoch=steps, resume="restart", verbose=0, log=lambda *_: None)
    training.train(options)


def peak_rss_of_training(folder: Path, model_dir: Path, steps: int, batch_size: int) -> int:
    """Peak resident memory (bytes) of a fresh process training over `folder`."""
    code = (f"import sys; sys.argv = ['']; "
            f"import bench.bench_training as b; b._child_train({str(folder)!r}, {str(model_dir)!r}, {steps}, "
            f"{batch_size})")
    process = subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"the training process over {folder} failed (exit {process.returncode})")
    return usage.ru_maxrss * 1024  # kilobytes on Linux


def memory_benchmark(arguments, work: Path) -> dict:
    small_count, large_count = arguments.small, arguments.large
    print(f"memory: writing {large_count} spectrogram files ({arguments.distinct} distinct, the rest hard links)",
          flush=True)
    large = write_spectrogram_folder(work / f"spectrograms_{large_count}", large_count, arguments.distinct)
    small = work / f"spectrograms_{small_count}"
    small.mkdir()
    for name in spectrogram_names(small_count):
        os.link(large / name, small / name)
    results = {}
    for count, folder in ((small_count, small), (large_count, large)):
        start = time.perf_counter()
        rss = peak_rss_of_training(folder, work / f"model_{count}", arguments.memory_steps, arguments.memory_batch)
        results[count] = rss
        print(f"  {count:6d} files: peak RSS {rss / 2**20:7.1f} MiB ({arguments.memory_steps} steps of "
              f"{arguments.memory_batch}, demo configuration, {time.perf_counter() - start:.0f} s)", flush=True)
    ratio = results[large_count] / results[small_count]
    print(f"  ratio {large_count}/{small_count}: {ratio:.3f} (target within 10%); largest "
          f"{max(results.values()) / 2**30:.2f} GB (target < 3 GB)", flush=True)
    return {"peak_rss_bytes": {str(key): value for key, value in results.items()}, "ratio": ratio}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: demo configuration for speed, 200 vs 2,000 files for memory")
    parser.add_argument("--batch-size", type=int, default=64, help="batch of the speed test (default 64, the thesis's)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of baseline then ours (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed warm-up steps of each side (default 1)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps of each side in a round (default 5)")
    parser.add_argument("--xla", action="store_true", help="ours with an XLA-compiled train step (--xla on)")
    parser.add_argument("--memory", action="store_true", help="also the memory test")
    parser.add_argument("--skip-speed", action="store_true", help="no speed test")
    parser.add_argument("--small", type=int, default=2000, help="files of the small data set (default 2000)")
    parser.add_argument("--large", type=int, default=20000, help="files of the large data set (default 20000)")
    parser.add_argument("--distinct", type=int, default=300, help="distinct random files written (default 300)")
    parser.add_argument("--memory-steps", type=int, default=40,
                        help="training steps over the shuffled file list in the memory test (default 40)")
    parser.add_argument("--memory-batch", type=int, default=64, help="batch of the memory test (default 64)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--baseline-python", metavar="PATH",
                        help="Python of a venv with tensorflow-cpu 2.15 (Keras 2, as the thesis ran) for the "
                             "baseline, e.g. ../tf215/bin/python; absent or not given: ours with tf-keras")
    parser.add_argument("--child", choices=("ours",), help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.child:
        run_side(arguments.child, arguments.quick, arguments.batch_size, arguments.warmup, arguments.steps,
                 arguments.xla)
        return 0
    if arguments.quick:
        arguments.small, arguments.large = min(arguments.small, 200), min(arguments.large, 2000)
        arguments.distinct = min(arguments.distinct, 50)
        arguments.memory_steps = min(arguments.memory_steps, 5)
        arguments.memory_batch = min(arguments.memory_batch, 16)
        arguments.rounds, arguments.steps = min(arguments.rounds, 2), min(arguments.steps, 3)

    figures = {}
    if not arguments.skip_speed:
        figures["speed"] = speed_benchmark(arguments)
    if arguments.memory:
        work = Path(tempfile.mkdtemp(prefix="bench_training_"))
        try:
            figures["memory"] = memory_benchmark(arguments, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
