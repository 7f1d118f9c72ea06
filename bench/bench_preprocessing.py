"""Benchmark process_audio_into_spectrograms.py end to end, as a user runs it.

Builds the 1,771-file thesis selection with make_demo_audio.py (or, without it, a stand-in of
plucked notes in the same layout: 1 s, 44.1 kHz, 24-bit mono), or reuses --audio-dir, then runs
the script with --jobs 1 and with --jobs N into fresh output folders, timing the whole command
(interpreter start-up and imports included), and again on 2 files to measure the start-up alone.
Prints files/s, the speed-ups, peak memory, and checks that both runs wrote identical bytes.

    python bench/bench_preprocessing.py              # the full 1,771 files
    python bench/bench_preprocessing.py --files 60   # a quick smoke run
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent

from _common import work_folder  # noqa: E402  (bench/, the script's folder)
from semantic_timbre import layout  # noqa: E402

SCRIPT = REPO_ROOT / "process_audio_into_spectrograms.py"
DEMO_SCRIPT = REPO_ROOT / "make_demo_audio.py"
SAMPLE_RATE = 44100
STARTUP_FILES = 2


def thesis_selection():
    """(group, descriptor, magnitude, fret) of the 1,771 thesis files, clean notes first."""
    selection = [("ModulationFX", layout.CLEAN_DESCRIPTOR, 0, fret) for fret in layout.FRETS]
    selection += [("BenchFX", descriptor, magnitude, fret) for descriptor in layout.DESCRIPTORS
                  for magnitude in layout.THESIS_MAGNITUDES for fret in layout.FRETS]
    return selection


def stand_in_note(fret: int, descriptor: str, magnitude: int) -> np.ndarray:
    """A plucked-like harmonic note (1 s) with a little magnitude-dependent saturation."""
    frequency = 329.63 * 2 ** (fret / 12)
    rng = np.random.default_rng(fret * 1000 + magnitude + layout.DESCRIPTORS.index(descriptor) * 7)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    note = sum(np.sin(2 * np.pi * frequency * k * t + rng.uniform(0, 2 * np.pi)) / k ** 1.5
               for k in range(1, 12) if frequency * k < SAMPLE_RATE / 2)
    note = note * np.exp(-3.0 * t)
    note[: SAMPLE_RATE // 100] += 0.3 * rng.standard_normal(SAMPLE_RATE // 100)
    drive = 1 + 10 * magnitude / 100
    note = np.tanh(drive * note / np.max(np.abs(note))) / np.tanh(drive)
    return (0.5 * note).astype(np.float32)


def write_stand_in(audio_dir: Path, limit: int | None) -> int:
    import soundfile

    selection = thesis_selection()[:limit]
    for group, descriptor, magnitude, fret in selection:
        path = audio_dir / group / descriptor / str(magnitude) / f"1-{fret}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, stand_in_note(fret, descriptor, magnitude), SAMPLE_RATE, subtype="PCM_24")
    return len(selection)


def build_audio(work: Path, limit: int | None) -> Path:
    audio_dir = work / "audio"
    if DEMO_SCRIPT.exists():
        command = [sys.executable, str(DEMO_SCRIPT), "--output", str(audio_dir)]
        if limit:  # only as many descriptors as the first `limit` files need
            per_descriptor = len(layout.THESIS_MAGNITUDES) * len(layout.FRETS)
            needed = max(1, min(len(layout.DESCRIPTORS), -(-(limit - len(layout.FRETS)) // per_descriptor)))
            command += ["--descriptors", *layout.DESCRIPTORS[:needed]]
        result = subprocess.run(command, cwd=work, capture_output=True, text=True,
                                env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
        if result.returncode != 0:
            sys.exit(f"make_demo_audio.py failed:\n{result.stderr}")
        if limit:
            files = sorted(p for p in audio_dir.rglob("*") if p.is_file())
            for path in files[limit:]:
                path.unlink()
        print("audio: the demo set of make_demo_audio.py")
    else:
        write_stand_in(audio_dir, limit)
        print("audio: a stand-in set of plucked notes (make_demo_audio.py not found)")
    return audio_dir


def run_timed(command, cwd, log: Path) -> dict:
    """Run `command` as a user would; return its wall time and peak resident memory (MiB).

    The script's own peak and its largest worker's peak are sampled from /proc (VmHWM, which only
    grows) while it runs; wait4's ru_maxrss gives the largest process of the whole tree.
    """
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    with open(log, "wb") as output:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT)
        parent_peak = worker_peak = 0
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            parent_peak = max(parent_peak, _peak_kib(process.pid))
            for child in _children(process.pid):
                worker_peak = max(worker_peak, _peak_kib(child))
            time.sleep(0.02)
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"{' '.join(map(str, command))} failed ({process.returncode}):\n{log.read_text()}")
    return {"seconds": seconds, "parent_mib": parent_peak / 1024, "worker_mib": worker_peak / 1024,
            "tree_mib": usage.ru_maxrss / 1024}


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _peak_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def identical_outputs(first: Path, second: Path) -> tuple[bool, int]:
    """Whether two output folders hold the same files with the same bytes; and the file count."""
    names = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    other = sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    if names != other:
        return False, len(names)
    return all(filecmp.cmp(first / name, second / name, shallow=False) for name in names), len(names)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio-dir", type=Path, help="use this audio folder instead of building one")
    parser.add_argument("--files", type=int, help="only the first N files of the set (a smoke run)")
    parser.add_argument("--jobs", type=int, default=2, help="workers of the parallel run (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print it")
    arguments = parser.parse_args(argv)

    with work_folder("bench_preprocessing_", arguments.keep) as work:
        if arguments.audio_dir:
            audio_dir = arguments.audio_dir.resolve()
            if arguments.files:
                sys.exit("--files applies only to a set the benchmark builds")
        else:
            audio_dir = build_audio(work, arguments.files)
        count = sum(1 for p in audio_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
        print(f"{count} audio files in {audio_dir}; {os.cpu_count()} cores; "
              f"load {os.getloadavg()[0]:.2f}")
        files_list = sorted(p for p in audio_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
        small_dir = work / "small" / "audio"
        for path in files_list[:STARTUP_FILES]:
            target = small_dir / path.relative_to(audio_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        rows = []
        for jobs in (1, arguments.jobs):
            figures = {"jobs": jobs}
            for label, source in (("small", small_dir), ("full", audio_dir)):
                out = work / f"{label}{jobs}"
                command = [sys.executable, str(SCRIPT), "--audio-dir", str(source),
                           "--spectrograms-dir", str(out / "spectrograms"), "--minmax-dir",
                           str(out / "minmax"), "--jobs", str(jobs), "--quiet"]
                figures[label] = run_timed(command, work, work / f"{label}{jobs}.log")
            rows.append(figures)
        same, files = identical_outputs(work / "full1", work / f"full{arguments.jobs}")
        serial = rows[0]["full"]["seconds"]
        serial_steady = rows[0]["full"]["seconds"] - rows[0]["small"]["seconds"]
        print()
        print(f"{'jobs':>4} {'seconds':>8} {'files/s':>8} {'speed-up':>8} {'start-up s':>10} "
              f"{'after start-up files/s':>22} {'speed-up':>8} {'script MiB':>10} {'worker MiB':>10}")
        for row in rows:
            full, small = row["full"], row["small"]
            steady = full["seconds"] - small["seconds"]
            print(f"{row['jobs']:>4} {full['seconds']:>8.2f} {count / full['seconds']:>8.0f} "
                  f"{serial / full['seconds']:>7.2f}x {small['seconds']:>10.2f} "
                  f"{(count - STARTUP_FILES) / steady:>22.0f} {serial_steady / steady:>7.2f}x "
                  f"{full['parent_mib']:>10.0f} {full['worker_mib'] if row['jobs'] > 1 else 0:>10.0f}")
        print(f"seconds: wall time of the whole command as a user runs it (interpreter start-up and "
              f"imports included); the thesis's script does about 70 files/s.")
        print(f"start-up: the same command on {STARTUP_FILES} files; 'after start-up' divides the "
              f"remaining files by the remaining time.")
        print(f"largest process of each run (wait4 ru_maxrss): "
              + ", ".join(f"jobs {r['jobs']} {r['full']['tree_mib']:.0f} MiB" for r in rows))
        print(f"serial and parallel outputs byte-identical: {'yes' if same else 'NO'} ({files} files)")
        return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
