"""How each step's cost grows with the data: the demo set (1,771 notes) against a release-shaped set
ten times larger (17,710 notes), timed in one run, extrapolated to the full release (275,310).

The larger set is made of hard links to the demo's audio files and spectrograms (and the demo's
min/max values) under release names: strings 1-6 and magnitudes 0-100 in steps of 5, the clean
notes filed under several descriptors' 0 folders as the release files them. Each original note
gets `--notes / 1,771` names (at most 30): copy k of a note at thesis magnitude m on fret f goes
to magnitude m - 5 (k mod 5) on string 1 + (k div 5 + descriptor index + f) mod 6. Both sets are
run with the demo model (hard links to its files, without its validation split: both sets hold out
a random 10%, as the release would) in fresh folders, each command as a user runs it:

    pre-processing  process_audio_into_spectrograms.py on the audio (every core)
    latent views    visualise_latent_space.py, -timbre, -magnitude, -pitch (the first computes the
                    embedding, the others reuse it)
    evaluation      evaluate_timbre_generation_vae.py --held-out-fraction 0.1 (its judge trained)
    single sample   generate_single_sample.py Crunch 100 <a pitch the set has>

Prints each step's seconds and peak memory on both sets, the ratio (10 for a cost that grows as
the data) and an extrapolation to 275,310 notes, with the load average at the start and the end
(other processes on the machine slow every step).

    python bench/bench_scale.py                 # 1,771 and 17,710 notes (about 15 minutes on 2 cores)
    python bench/bench_scale.py --notes 5313    # a shorter run: 1,771 and 5,313 notes
    python bench/bench_scale.py --steps latent evaluation
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

from _common import work_folder  # noqa: E402  (bench/, the script's folder)
from semantic_timbre import layout, safe_io  # noqa: E402

RELEASE_NOTES = 275_310
MAX_COPIES = 30  # 5 magnitudes x 6 strings per thesis note
CLEAN_DESCRIPTORS = ("Fluttery", "Bright", "Crunch", "Dark", "Fuzz")
#: The model folder's files a user has after training (VAE.save writes the ONNX export beside the
#: weights; a folder without parameters.pkl or the export has only the others linked).
MODEL_FILES = ("weights.h5", "parameters.json", "parameters.pkl", "encoder.onnx", "decoder.onnx", "onnx.json")
STEPS = ("preprocessing", "latent", "evaluation", "sample")
VIEWS = ((), ("-timbre",), ("-magnitude",), ("-pitch",))


def release_name(note: layout.Note, copy: int) -> tuple[str, int, int]:
    """(descriptor, magnitude, string) of copy `copy` of a thesis note (string 1) under release names."""
    shift = copy // 5 + note.fret
    if note.is_clean:
        return CLEAN_DESCRIPTORS[copy % 5], 0, 1 + shift % 6
    return note.descriptor, note.magnitude - 5 * (copy % 5), 1 + (shift + layout.DESCRIPTORS.index(note.descriptor)) % 6


def audio_files(audio_dir: Path) -> dict[str, tuple[Path, str]]:
    """{spectrogram name: (audio file, group folder)} of the demo's audio."""
    files = {}
    for path in sorted(audio_dir.rglob("*")):
        if path.is_file() and path.suffix.lower() in layout.AUDIO_EXTENSIONS:
            note = layout.parse_audio_path(path, audio_dir)
            files[note.spectrogram_name] = (path, path.relative_to(audio_dir).parts[0])
    return files


def build_set(source: Path, target: Path, count: int) -> int:
    """Hard-link `count` notes of the demo project `source` under release names into `target`
    (audio/, spectrograms/, minmax/, model/); `count` at most the demo's: its own names."""
    notes = layout.list_spectrograms(source / layout.SPECTROGRAMS_DIR)
    audio = audio_files(source / layout.AUDIO_DIR)
    min_max = safe_io.load_plain_pickle(source / layout.MINMAX_DIR / layout.MINMAX_FILE_NAME)
    descriptor_group = {note.descriptor: audio[note.spectrogram_name][1] for note in notes if not note.is_clean}
    copies = -(-count // len(notes))
    if copies > MAX_COPIES:
        sys.exit(f"--notes: at most {MAX_COPIES * len(notes)} notes ({MAX_COPIES} names per demo note)")
    for folder in (layout.SPECTROGRAMS_DIR, layout.MINMAX_DIR, layout.MODEL_DIR):
        (target / folder).mkdir(parents=True)
    new_min_max, made = {}, 0
    for copy in range(copies):  # copy by copy, so a count below a multiple spreads over every note
        for note in notes:
            if made == count:
                break
            if count <= len(notes):
                descriptor, magnitude, string = note.descriptor, note.magnitude, note.string
            else:
                descriptor, magnitude, string = release_name(note, copy)
            file_name = f"{string}-{note.fret}{Path(note.file_name).suffix}"
            name = layout.spectrogram_file_name(descriptor, magnitude, file_name)
            wav, group = audio[note.spectrogram_name]
            group = descriptor_group.get(descriptor, group)
            path = target / layout.AUDIO_DIR / group / descriptor / str(magnitude) / file_name
            path.parent.mkdir(parents=True, exist_ok=True)
            os.link(wav, path)
            os.link(source / layout.SPECTROGRAMS_DIR / note.spectrogram_name, target / layout.SPECTROGRAMS_DIR / name)
            new_min_max[layout.minmax_key(name)] = min_max[note.minmax_key]
            made += 1
    with open(target / layout.MINMAX_DIR / layout.MINMAX_FILE_NAME, "wb") as handle:
        pickle.dump(new_min_max, handle, protocol=4)
    for name in MODEL_FILES:
        if (source / layout.MODEL_DIR / name).is_file():
            os.link(source / layout.MODEL_DIR / name, target / layout.MODEL_DIR / name)
    return made


def run_timed(command: list[str], cwd: Path, log: Path) -> tuple[float, float]:
    """Run a script as a user would; return (wall seconds, peak memory of its process tree in MiB)."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    with open(log, "ab") as output:
        output.write(f"\n$ {' '.join(command)}\n".encode())
        output.flush()
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, *command], cwd=cwd, env=env, stdout=output,
                                   stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(command)} failed in {cwd}; its output is in {log}:\n{log.read_text()[-3000:]}")
    return seconds, usage.ru_maxrss / 1024


def sample_note(spectrograms: Path) -> list[str]:
    """Arguments of generate_single_sample.py for a Crunch 100 note the set holds."""
    note = next(n for n in layout.list_spectrograms(spectrograms) if n.descriptor == "Crunch" and n.magnitude == 100)
    return ["Crunch", "100", note.pitch, "--string", str(note.string)]


def time_steps(project: Path, steps, log: Path) -> dict[str, tuple[float, float]]:
    """{step: (seconds, peak MiB)} of the steps on one set; 'latent' is the four views together."""
    timings = {}
    if "preprocessing" in steps:
        out = project / "preprocessed"
        timings["preprocessing"] = run_timed([
            str(REPO_ROOT / "process_audio_into_spectrograms.py"), "--spectrograms-dir", str(out / "spectrograms"),
            "--minmax-dir", str(out / "minmax"), "--quiet"], project, log)
        shutil.rmtree(out)  # the set's own spectrograms are hard links: the same bytes
    if "latent" in steps:
        views = [run_timed([str(REPO_ROOT / "visualise_latent_space.py"), *flag], project, log) for flag in VIEWS]
        for flag, view in zip(VIEWS, views):
            timings["latent " + (flag[0] if flag else "(no flag)")] = view
        timings["latent"] = (sum(seconds for seconds, _ in views), max(peak for _, peak in views))
    if "evaluation" in steps:
        timings["evaluation"] = run_timed([str(REPO_ROOT / "evaluate_timbre_generation_vae.py"),
                                           "--held-out-fraction", "0.1"], project, log)
    if "sample" in steps:
        timings["sample"] = run_timed([str(REPO_ROOT / "generate_single_sample.py"),
                                       *sample_note(project / layout.SPECTROGRAMS_DIR)], project, log)
    return timings


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notes", type=int, default=17_710, help="notes of the larger set (default: 17,710)")
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS), help="steps to time (default: all)")
    parser.add_argument("--project", type=Path, default=REPO_ROOT,
                        help="the demo project: audio/, spectrograms/, minmax/, model/ (default: the repository)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print it")
    arguments = parser.parse_args(argv)
    source = arguments.project.resolve()
    small_count = len(layout.list_spectrograms(source / layout.SPECTROGRAMS_DIR))
    if small_count == 0 or not (source / layout.MODEL_DIR / "weights.h5").is_file():
        sys.exit(f"{source} needs the demo's spectrograms/ and model/: run 'make demo' first")
    if arguments.notes <= small_count:
        sys.exit(f"--notes must exceed the demo set's {small_count} notes")
    load_start = os.getloadavg()
    print(f"{os.cpu_count()} cores; load average at the start (1, 5, 15 min): "
          + ", ".join(f"{value:.2f}" for value in load_start), flush=True)
    # Hard links need one file system: the system's temporary folder when it shares the project's.
    same = os.stat(tempfile.gettempdir()).st_dev == os.stat(source).st_dev
    started = time.perf_counter()
    with work_folder("bench_scale_", arguments.keep, dir=None if same else source) as work:
        sizes, results = {}, {}
        for label, count in (("small", small_count), ("large", arguments.notes)):
            sizes[label] = build_set(source, work / label, count)
            print(f"{label}: {sizes[label]} notes in {work / label}", flush=True)
            results[label] = time_steps(work / label, arguments.steps, work / f"{label}.log")
            for step, (seconds, peak) in results[label].items():
                print(f"  {step:<22} {seconds:8.1f} s  peak {peak:6.0f} MiB", flush=True)
        growth = sizes["large"] / sizes["small"]
        print()
        print(f"{'step':<22} {sizes['small']:>9,} {sizes['large']:>9,}  ratio (data x{growth:g})  exponent  "
              f"{'peak MiB':>13}  {RELEASE_NOTES:,} notes (fixed + per note / measured exponent)")
        for step in results["large"]:
            small, large = results["small"][step], results["large"][step]
            ratio = large[0] / small[0]
            exponent = math.log(ratio) / math.log(growth)
            per_note = max(0.0, (large[0] - small[0]) / (sizes["large"] - sizes["small"]))
            affine = large[0] + per_note * (RELEASE_NOTES - sizes["large"])
            measured = large[0] * (RELEASE_NOTES / sizes["large"]) ** max(exponent, 0.0)
            print(f"{step:<22} {small[0]:8.1f}s {large[0]:8.1f}s  {ratio:8.2f}{'':13}  {exponent:8.2f}  "
                  f"{small[1]:6.0f}/{large[1]:6.0f}  {duration(affine)} / {duration(measured)}")
        load_end = os.getloadavg()
        print(f"\nload average at the end (1, 5, 15 min): " + ", ".join(f"{value:.2f}" for value in load_end)
              + f"; whole benchmark {duration(time.perf_counter() - started)}")
        print("ratio: large / small seconds (the data grew x{:g}); exponent: log(ratio) / log(growth), 1 for a "
              "cost that grows as the data. Extrapolation to the release: a fixed cost plus a cost per note "
              "fitted to the two sets, and the large set's time grown with the measured exponent (an upper "
              "bound when the exponent is above 1). "
              "The large set's files are hard links to the demo's, so they are read from the page cache; the "
              "release's own 35 GB of spectrograms will be read from disk.".format(growth))
        return 0


if __name__ == "__main__":
    sys.exit(main())
