"""Benchmark of training: speed of the XLA train step, and memory against data-set size.

1. Examples/s of the thesis configuration with our XLA-compiled train step against a plain Keras
   fit of the same architecture without XLA (compile(jit_compile=False)), in the same run, on the
   same synthetic spectrogram files streamed through the same tf.data pipeline; warm-up steps
   excluded. Target: at least 1.4x on a CPU.
2. Peak RSS of a training run (demo configuration, the real training code: streaming, checkpoint,
   log, final save) over 2,000 and over 20,000 spectrogram files, each in a fresh process.
   Target: within 10% of each other and under 3 GB.

Usage: python bench/bench_training.py [--quick] [--batch-size 16] [--warmup 2] [--steps 3] ...
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from semantic_timbre import layout  # noqa: E402
from semantic_timbre.spectrogram import SPECTROGRAM_SHAPE  # noqa: E402


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


# ---------------------------------------------------------------- 1. speed

def measure_speed(configuration: dict, folder: Path, batch_size: int, warmup: int, steps: int, xla: bool) -> float:
    """Examples/s of `steps` timed train steps after `warmup` untimed ones."""
    import keras

    from semantic_timbre import dataset, training

    keras.utils.set_random_seed(0)
    vae = training.build_vae(configuration, 0.0005, xla=xla)
    paths = dataset.spectrogram_files(folder)
    data = dataset.spectrogram_dataset(paths, batch_size, seed=0)
    vae.fit(data, epochs=1, steps_per_epoch=warmup, verbose=0, shuffle=False)
    start = time.perf_counter()
    vae.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
    return steps * batch_size / (time.perf_counter() - start)


def speed_benchmark(arguments, work: Path) -> dict:
    from semantic_timbre import vae

    configuration = vae.DEMO_CONFIGURATION if arguments.quick else vae.THESIS_CONFIGURATION
    label = "demo (--quick)" if arguments.quick else "thesis"
    folder = write_spectrogram_folder(work / "speed", arguments.batch_size * (arguments.warmup + arguments.steps))
    print(f"speed: {label} configuration, batch {arguments.batch_size}, {arguments.warmup} warm-up + "
          f"{arguments.steps} timed steps each", flush=True)
    plain = measure_speed(configuration, folder, arguments.batch_size, arguments.warmup, arguments.steps, xla=False)
    print(f"  plain Keras fit (no XLA): {plain:8.2f} examples/s", flush=True)
    xla = measure_speed(configuration, folder, arguments.batch_size, arguments.warmup, arguments.steps, xla=True)
    print(f"  XLA train step:           {xla:8.2f} examples/s", flush=True)
    print(f"  speed-up: {xla / plain:.2f}x (target >= 1.4x)", flush=True)
    # For the record: 16-bit compute without XLA (oneDNN uses bfloat16 instructions where the CPU has them).
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        bfloat16 = measure_speed(configuration, folder, arguments.batch_size, arguments.warmup, arguments.steps,
                                 xla=False)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    print(f"  plain fit, --mixed-precision bfloat16: {bfloat16:8.2f} examples/s ({bfloat16 / plain:.2f}x)",
          flush=True)
    return {"configuration": label, "plain_examples_per_second": plain, "xla_examples_per_second": xla,
            "speed_up": xla / plain, "plain_bfloat16_examples_per_second": bfloat16}


# ---------------------------------------------------------------- 2. memory

def _child_train(folder: str, model_dir: str, steps: int, batch_size: int) -> None:
    """Run in a fresh process: the real training code over every file of `folder`, `steps` batches."""
    from semantic_timbre import training, vae

    options = training.TrainingOptions(configuration=vae.DEMO_CONFIGURATION, spectrograms_dir=folder,
                                       model_dir=model_dir, epochs=1, batch_size=batch_size,
                                       steps_per_epoch=steps, resume="restart", verbose=0, log=lambda *_: None)
    training.train(options)


def peak_rss_of_training(folder: Path, model_dir: Path, steps: int, batch_size: int) -> int:
    """Peak resident memory (bytes) of a fresh process training over `folder`."""
    code = (f"import sys; sys.path.insert(0, {str(REPO_ROOT)!r}); sys.argv = ['']; "
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
    parser.add_argument("--batch-size", type=int, default=16, help="batch of the speed test (default 16)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed warm-up steps (default 2)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps (default 3)")
    parser.add_argument("--small", type=int, default=2000, help="files of the small data set (default 2000)")
    parser.add_argument("--large", type=int, default=20000, help="files of the large data set (default 20000)")
    parser.add_argument("--distinct", type=int, default=300, help="distinct random files written (default 300)")
    parser.add_argument("--memory-steps", type=int, default=40,
                        help="training steps over the shuffled file list in the memory test (default 40)")
    parser.add_argument("--memory-batch", type=int, default=64, help="batch of the memory test (default 64)")
    parser.add_argument("--skip-speed", action="store_true", help="only the memory test")
    parser.add_argument("--skip-memory", action="store_true", help="only the speed test")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.small, arguments.large = min(arguments.small, 200), min(arguments.large, 2000)
        arguments.distinct = min(arguments.distinct, 50)
        arguments.memory_steps = min(arguments.memory_steps, 5)
        arguments.memory_batch = min(arguments.memory_batch, 16)
        arguments.warmup, arguments.steps = min(arguments.warmup, 1), min(arguments.steps, 2)

    work = Path(tempfile.mkdtemp(prefix="bench_training_"))
    figures = {}
    try:
        if not arguments.skip_memory:
            figures["memory"] = memory_benchmark(arguments, work)
        if not arguments.skip_speed:
            figures["speed"] = speed_benchmark(arguments, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
