"""Benchmark the inversion of original spectrograms: quality and speed of three inversions, one run.

For each kind of note (Crunch 100 and Fuzz 100, strongly distorted; clean), the mean and largest
spectral convergence of the inverted audio against the note's own magnitude, and the seconds per
note after start-up, of:

- thesis: the thesis's call, librosa.griffinlim on the 512 rows (n_fft 1022), random start;
- random start: the previous default, fast Griffin-Lim on the analysis STFT (Nyquist row restored,
  n_fft 1024) from a random phase;
- PGHI start (default): the same fast Griffin-Lim from a phase-gradient heuristic integration.

All with the same iterations and the same seed per note (the note's index), interleaved note by
note so that a busy machine slows all three alike. The first call of each (imports and caches) is
timed apart as its start-up.

A fourth kind is always synthesised: the demo set's clean plucks (string 1) through a strong
tanh distortion (tanh(300 x) / tanh(300)), written at 44.1 kHz and pre-processed as the thesis's
pre-processor does, the hardest notes to invert. Spectral convergence is also given at the best
gain (the audio scaled by the least-squares gain onto the target magnitude), so that a level
difference is not counted. With --pghipy (pghipy 0.1.1 importable, e.g. `pip install --target
/tmp/pghipy pghipy==0.1.1` and PYTHONPATH=/tmp/pghipy), a fifth inversion: pghipy's own heap PGHI
(Hann gamma, tolerance 1e-3, the same frame-local convention) followed by the same fast
Griffin-Lim, the reference the default's PGHI is checked against.

The notes are those of spectrograms/ and minmax/ (of --project, default the repository) when they
exist, else the demo set's notes synthesised in memory (semantic_timbre.data.demo_audio) and
pre-processed as the pipeline does (44.1 kHz -> 22,050 Hz, 0.74 s, normalised dB spectrogram).

    python bench/bench_inversion.py                  # after 'make demo', or synthesised notes
    python bench/bench_inversion.py --synthetic --notes 4    # quick look
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent

from semantic_timbre import layout  # noqa: E402
from semantic_timbre.data import processed_data, spectrogram

KINDS = {"Crunch 100": ("Crunch", 100), "Fuzz 100": ("Fuzz", 100), "clean": (layout.CLEAN_DESCRIPTOR, 0)}
INVERSIONS = {
    "thesis (librosa, 512 rows)": {"thesis_inversion": True},
    "random start (previous default)": {"init": "random"},
    "PGHI start (default)": {"init": "pghi"},
}


DISTORTED_KIND = "tanh pluck"
DRIVE = 300.0


def best_gain_convergence(audio: np.ndarray, target: np.ndarray) -> float:
    """Spectral convergence of `audio` scaled by the least-squares gain onto `target`."""
    import librosa

    frames = target.shape[1]
    audio = spectrogram.pad_or_trim(np.asarray(audio, np.float32), max(len(audio), (frames - 1) * spectrogram.HOP_LENGTH + 1))
    estimate = np.abs(librosa.stft(audio, n_fft=spectrogram.N_FFT, hop_length=spectrogram.HOP_LENGTH))[:-1, :frames]
    gain = float((target * estimate).sum() / max((estimate ** 2).sum(), 1e-30))
    return float(np.linalg.norm(target - gain * estimate) / np.linalg.norm(target))


def distorted_notes(count: int) -> list:
    """The demo set's clean plucks of string 1 through tanh(300 x), as WAV files at 44.1 kHz would be
    pre-processed (spectrogram.note_to_spectrogram's maths on an in-memory file)."""
    import io

    import soundfile

    from semantic_timbre.data import demo_audio

    notes = []
    for fret in _evenly(list(layout.FRETS), count):
        clean = demo_audio.render(layout.Note(layout.CLEAN_DESCRIPTOR, 0, 1, fret, f"1-{fret}.wav"))
        buffer = io.BytesIO()
        soundfile.write(buffer, (np.tanh(DRIVE * clean) / np.tanh(DRIVE)).astype(np.float32),
                        demo_audio.SAMPLE_RATE, format="WAV", subtype="PCM_24")
        buffer.seek(0)
        with soundfile.SoundFile(buffer) as sound:
            signal = spectrogram.load_note(sound)
        notes.append((f"tanh{DRIVE:g}X1-{fret}", *spectrogram.normalise(spectrogram.log_spectrogram(signal))))
    return notes


def pghipy_inversion(normalised, low, high, n_iter: int, random_state) -> np.ndarray:
    """pghipy's heap PGHI (the Hann window's gamma, tolerance 1e-3), then the default's fast Griffin-Lim."""
    import pghipy

    magnitude = spectrogram.db_to_amplitude(spectrogram.denormalise(np.asarray(normalised, np.float32), low, high))
    full = np.vstack([magnitude, np.zeros((1, magnitude.shape[1]), np.float32)])
    phase = pghipy.pghi(full.T.astype(np.float64), win_length=spectrogram.N_FFT, hop_length=spectrogram.HOP_LENGTH,
                        gamma=spectrogram.PGHI_GAMMA_HANN * spectrogram.N_FFT ** 2, tol=spectrogram.PGHI_TOLERANCE).T
    angles = np.ascontiguousarray(full.T) * np.exp(1j * phase.T).astype(np.complex64)
    target, previous, tiny = np.ascontiguousarray(full.T), 0, np.finfo(np.float32).tiny
    for _ in range(n_iter):
        rebuilt = spectrogram._stft_frames(spectrogram._istft_frames(angles, spectrogram.NUM_SAMPLES))
        angles = rebuilt - (0.99 / 1.99) * previous
        angles = target * angles / (np.abs(angles) + tiny)
        previous = rebuilt
    return spectrogram._istft_frames(angles, spectrogram.NUM_SAMPLES)


def _evenly(items: list, count: int) -> list:
    if len(items) <= count:
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, count).round().astype(int)]


def data_set_notes(spectrograms_dir: Path, minmax_dir: Path, count: int) -> dict[str, list]:
    """(name, normalised, min, max) of up to `count` notes of each kind, spread over the pitches."""
    notes = processed_data.require_spectrograms(spectrograms_dir)
    min_max = processed_data.load_min_max(minmax_dir)
    chosen = {}
    for kind, (descriptor, magnitude) in KINDS.items():
        if magnitude == 0:
            matching = [note for note in notes if note.is_clean]
        else:
            matching = [note for note in notes if note.descriptor == descriptor and note.magnitude == magnitude]
        chosen[kind] = [(note.spectrogram_name,
                         processed_data.load_spectrogram(spectrograms_dir / note.spectrogram_name),
                         *processed_data.min_max_of(min_max, note)) for note in _evenly(matching, count)]
    return chosen


def synthetic_notes(count: int) -> dict[str, list]:
    """The demo set's notes of string 1 (frets spread over 0-22), rendered and pre-processed here."""
    import librosa

    from semantic_timbre.data import demo_audio

    chosen = {}
    for kind, (descriptor, magnitude) in KINDS.items():
        chosen[kind] = []
        for fret in _evenly(list(layout.FRETS), count):
            note = layout.Note(descriptor, magnitude, 1, fret, f"1-{fret}.wav")
            audio = librosa.resample(demo_audio.render(note), orig_sr=demo_audio.SAMPLE_RATE,
                                     target_sr=spectrogram.SAMPLE_RATE)
            log_spec = spectrogram.log_spectrogram(spectrogram.pad_or_trim(audio))
            chosen[kind].append((note.spectrogram_name, *spectrogram.normalise(log_spec)))
    return chosen


def bench(chosen: dict[str, list], iterations: int, with_pghipy: bool = False) -> None:
    inversions = {name: (lambda n, lo, hi, seed, options=options: spectrogram.spectrogram_to_audio(
        n, lo, hi, n_iter=iterations, random_state=seed, **options)) for name, options in INVERSIONS.items()}
    if with_pghipy:
        inversions["pghipy heap PGHI + fast GL"] = lambda n, lo, hi, seed: pghipy_inversion(n, lo, hi, iterations, seed)
    start_up = {}
    first_note = next(notes[0] for notes in chosen.values() if notes)
    for name, invert in inversions.items():
        start = time.perf_counter()
        invert(*first_note[1:], 0)
        start_up[name] = time.perf_counter() - start
    print(f"{'kind':<11} {'notes':>5}  {'inversion':<32} {'mean SC':>8} {'max SC':>8} {'best-gain':>9} "
          f"{'max':>7} {'s/note':>8}")
    for kind, notes in chosen.items():
        scores = {name: [] for name in inversions}
        gained = {name: [] for name in inversions}
        seconds = {name: 0.0 for name in inversions}
        for index, (_, normalised, low, high) in enumerate(notes):
            target = spectrogram.db_to_amplitude(spectrogram.denormalise(normalised, low, high))
            for name, invert in inversions.items():
                start = time.perf_counter()
                audio = invert(normalised, low, high, index)
                seconds[name] += time.perf_counter() - start
                scores[name].append(spectrogram.spectral_convergence(audio, target))
                gained[name].append(best_gain_convergence(audio, target))
        for row, name in enumerate(inversions):
            label = (kind, str(len(notes))) if row == 0 else ("", "")
            print(f"{label[0]:<11} {label[1]:>5}  {name:<32} {np.mean(scores[name]):8.4f} "
                  f"{np.max(scores[name]):8.4f} {np.mean(gained[name]):9.4f} {np.max(gained[name]):7.4f} "
                  f"{seconds[name] / max(1, len(notes)):8.4f}")
    print("start-up (first call, s): " + ", ".join(f"{name} {value:.2f}" for name, value in start_up.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, default=REPO_ROOT,
                        help="folder holding spectrograms/ and minmax/ (default: the repository)")
    parser.add_argument("--synthetic", action="store_true",
                        help="synthesise the demo set's notes even where spectrograms/ exists")
    parser.add_argument("--notes", type=int, default=23, help="notes per kind, spread over the pitches (default 23)")
    parser.add_argument("--griffin-lim-iters", type=int, default=spectrogram.GRIFFIN_LIM_ITERATIONS)
    parser.add_argument("--pghipy", action="store_true",
                        help="add pghipy's heap PGHI + the same fast Griffin-Lim as a reference (pghipy importable)")
    arguments = parser.parse_args()

    spectrograms_dir = arguments.project / layout.SPECTROGRAMS_DIR
    minmax_dir = arguments.project / layout.MINMAX_DIR
    if not arguments.synthetic and spectrograms_dir.is_dir() and processed_data.min_max_path(minmax_dir).is_file():
        source = f"the data set in {spectrograms_dir}"
        chosen = data_set_notes(spectrograms_dir, minmax_dir, arguments.notes)
    else:
        source = "the demo set's notes, synthesised in memory"
        chosen = synthetic_notes(arguments.notes)
    chosen[DISTORTED_KIND] = distorted_notes(arguments.notes)
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    print(f"Inverting original spectrograms of {source}; {arguments.griffin_lim_iters} Griffin-Lim "
          f"iterations; {os.cpu_count()} CPUs, load average {load}")
    bench(chosen, arguments.griffin_lim_iters, arguments.pghipy)
    return 0


if __name__ == "__main__":
    sys.exit(main())
