"""The shared spectrogram maths: inversion against librosa's, and the Nyquist-restored gain."""

from pathlib import Path

import librosa
import numpy as np
import pytest

from conftest import plucked_note
from semantic_timbre.data import spectrogram


def _note_spectrogram(frequency=440.0, drive=0.0):
    """A plucked note at 44.1 kHz (tanh-distorted with `drive`, as Crunch 100), pre-processed as
    the pipeline does: resampled to 22,050 Hz, 0.74 s, normalised dB spectrogram."""
    note = plucked_note(frequency)
    if drive:
        note = (np.tanh(drive * note) / np.tanh(drive)).astype(np.float32)
    note = librosa.resample(note, orig_sr=44100, target_sr=spectrogram.SAMPLE_RATE)
    return spectrogram.normalise(spectrogram.log_spectrogram(spectrogram.pad_or_trim(note)))


def _target(normalised, low, high):
    return spectrogram.db_to_amplitude(spectrogram.denormalise(normalised, low, high))


def test_fast_griffin_lim_is_librosas_algorithm():
    magnitude = np.random.default_rng(1).random(spectrogram.SPECTROGRAM_SHAPE, dtype=np.float32)
    ours = spectrogram.griffin_lim(magnitude, random_state=3, init="random")
    full = np.vstack([magnitude, np.zeros((1, magnitude.shape[1]), np.float32)])
    reference = librosa.griffinlim(full, n_iter=32, hop_length=256, n_fft=1024, random_state=3,
                                   length=spectrogram.NUM_SAMPLES)
    assert ours.dtype == np.float32 and ours.shape == (spectrogram.NUM_SAMPLES,)
    assert np.max(np.abs(ours - reference)) < 1e-4 * np.max(np.abs(reference))


def test_db_to_amplitude_inverts_amplitude_to_db():
    decibels = np.linspace(-80, 0, 101, dtype=np.float32)
    np.testing.assert_allclose(spectrogram.db_to_amplitude(decibels), librosa.db_to_amplitude(decibels), rtol=1e-5)


def test_thesis_inversion_is_librosa_on_512_rows():
    normalised, low, high = _note_spectrogram()
    ours = spectrogram.spectrogram_to_audio(normalised, low, high, thesis_inversion=True, random_state=0)
    magnitude = librosa.db_to_amplitude(spectrogram.denormalise(normalised, low, high))
    np.testing.assert_array_equal(ours, librosa.griffinlim(magnitude, n_iter=32, hop_length=256, random_state=0))


def test_restored_nyquist_inverts_closer_than_the_thesis():
    normalised, low, high = _note_spectrogram()
    target = spectrogram.db_to_amplitude(spectrogram.denormalise(normalised, low, high))
    default = spectrogram.spectrogram_to_audio(normalised, low, high, random_state=0)
    thesis = spectrogram.spectrogram_to_audio(normalised, low, high, thesis_inversion=True, random_state=0)
    assert np.all(np.isfinite(default))
    assert spectrogram.spectral_convergence(default, target) < 0.8 * spectrogram.spectral_convergence(thesis, target)


def test_seeded_inversion_is_reproducible():
    normalised, low, high = _note_spectrogram(330.0)
    first = spectrogram.spectrogram_to_audio(normalised, low, high, random_state=7)
    np.testing.assert_array_equal(first, spectrogram.spectrogram_to_audio(normalised, low, high, random_state=7))
    assert not np.array_equal(first, spectrogram.spectrogram_to_audio(normalised, low, high, random_state=8))


# --- the default inversion: fast Griffin-Lim from a PGHI phase

E2, E4, A5 = 82.41, 329.63, 880.0


@pytest.mark.parametrize("frequency", [E2, E4, A5])
def test_default_inversion_of_an_original_spectrogram_meets_the_targets(frequency):
    # The targets: spectral convergence <= 0.12 on strongly distorted notes, <= 0.05 on clean ones.
    for drive, target_sc in ((30.0, 0.12), (0.0, 0.05)):
        normalised, low, high = _note_spectrogram(frequency, drive)
        target = _target(normalised, low, high)
        audio = spectrogram.spectrogram_to_audio(normalised, low, high, random_state=0)
        assert audio.dtype == np.float32 and audio.shape == (spectrogram.NUM_SAMPLES,)
        default = spectrogram.spectral_convergence(audio, target)
        previous = spectrogram.spectral_convergence(
            spectrogram.spectrogram_to_audio(normalised, low, high, random_state=0, init="random"), target)
        assert default <= target_sc, (frequency, drive, default)
        assert default < previous, (frequency, drive, default, previous)


def test_pghi_alone_is_already_close_to_the_target():
    # No Griffin-Lim iteration at all: the PGHI phase is consistent, a random phase is not.
    normalised, low, high = _note_spectrogram(E4, drive=30.0)
    target = _target(normalised, low, high)
    pghi = spectrogram.griffin_lim(target, n_iter=0, random_state=0)
    random = spectrogram.griffin_lim(target, n_iter=0, random_state=0, init="random")
    assert spectrogram.spectral_convergence(pghi, target) < 0.15
    assert spectrogram.spectral_convergence(random, target) > 0.5


def _phase_step_error(estimate, truth):
    """Largest difference, in radians (wrapped), between two phase differences."""
    return float(np.max(np.abs(np.angle(estimate * np.conj(truth)))))


@pytest.mark.parametrize("frequency", [440.0, 1000.3, 3010.0])
def test_pghi_phase_follows_our_stft_convention_for_a_sinusoid(frequency):
    # Frame-local phase, window from each frame's first sample, Hann gamma 0.25645 * 1024^2: a
    # sinusoid's phase advances per frame (time) and across its main lobe (frequency) as the STFT's.
    t = np.arange(spectrogram.NUM_SAMPLES) / spectrogram.SAMPLE_RATE
    stft = spectrogram._stft((0.5 * np.cos(2 * np.pi * frequency * t + 0.3)).astype(np.float32))
    stft = stft.astype(np.complex128)
    phasors = spectrogram.pghi_phase(np.abs(stft), random_state=0).astype(np.complex128)
    peak = int(round(frequency * spectrogram.N_FFT / spectrogram.SAMPLE_RATE))
    inner = slice(8, 56)  # away from the note's zero-padded ends
    for row in (peak - 1, peak, peak + 1):
        true_step = stft[row, 9:57] * np.conj(stft[row, 8:56])
        assert _phase_step_error(phasors[row, 9:57] * np.conj(phasors[row, 8:56]), true_step) < 0.05
    for row in (peak - 1, peak):
        true_step = stft[row + 1, inner] * np.conj(stft[row, inner])
        assert _phase_step_error(phasors[row + 1, inner] * np.conj(phasors[row, inner]), true_step) < 0.05


def test_pghi_phase_follows_our_stft_convention_for_a_click():
    signal = np.zeros(spectrogram.NUM_SAMPLES, np.float32)
    signal[8000] = 1.0
    stft = spectrogram._stft(signal).astype(np.complex128)
    phasors = spectrogram.pghi_phase(np.abs(stft), random_state=0).astype(np.complex128)
    for frame in (30, 31, 32):  # the frames whose windows hold the click
        true_step = stft[1:400, frame] * np.conj(stft[:399, frame])
        assert _phase_step_error(phasors[1:400, frame] * np.conj(phasors[:399, frame]), true_step) < 0.05


def test_pghi_is_deterministic_and_the_seed_only_draws_the_phase_below_its_tolerance():
    normalised, low, high = _note_spectrogram(E4)
    full = np.vstack([_target(normalised, low, high), np.zeros((1, 64), np.float32)])
    first, second = (spectrogram.pghi_phase(full, random_state=seed) for seed in (1, 2))
    integrated = full > spectrogram.PGHI_TOLERANCE * full.max()
    assert first.dtype == np.complex64 and first.shape == full.shape
    np.testing.assert_allclose(np.abs(first), 1, rtol=1e-5)
    np.testing.assert_array_equal(first[integrated], second[integrated])
    assert not np.array_equal(first[~integrated], second[~integrated])
    np.testing.assert_array_equal(first, spectrogram.pghi_phase(full, random_state=1))


def test_same_seed_same_audio_on_every_path():
    normalised, low, high = _note_spectrogram(E4, drive=30.0)
    for options in ({}, {"init": "pghi"}, {"init": "random"}, {"thesis_inversion": True}):
        first = spectrogram.spectrogram_to_audio(normalised, low, high, random_state=5, **options)
        np.testing.assert_array_equal(
            first, spectrogram.spectrogram_to_audio(normalised, low, high, random_state=5, **options))
    default = spectrogram.spectrogram_to_audio(normalised, low, high, random_state=5)
    np.testing.assert_array_equal(
        default, spectrogram.spectrogram_to_audio(normalised, low, high, random_state=5, init="pghi"))


def test_silent_and_single_frame_magnitudes_invert():
    silent = spectrogram.griffin_lim(np.zeros(spectrogram.SPECTROGRAM_SHAPE, np.float32), random_state=0)
    assert silent.shape == (spectrogram.NUM_SAMPLES,) and not np.any(silent)
    single = spectrogram.pghi_phase(np.random.default_rng(0).random((513, 1)), random_state=0)
    assert single.shape == (513, 1) and np.all(np.isfinite(single))


def test_the_thesis_inversion_refuses_a_pghi_start_and_unknown_inits_are_refused():
    magnitude = np.ones(spectrogram.SPECTROGRAM_SHAPE, np.float32)
    with pytest.raises(ValueError, match="thesis"):
        spectrogram.griffin_lim(magnitude, restore_nyquist=False, init="pghi")
    with pytest.raises(ValueError, match="init"):
        spectrogram.griffin_lim(magnitude, init="zeros")


def test_strongly_distorted_plucks_invert_as_well_as_pghipys_heap_pghi():
    """Issue 19: the demo set's Karplus-Strong plucks through tanh(300 x), pre-processed as the
    thesis's pre-processor does, the hardest notes of bench/bench_inversion.py. Spectral convergence
    at the best gain <= 0.12 (the issue's target) and about 30% below what it was before the PGHI
    gradient's edges were halved, as the paper's code and pghipy compute them (these five notes:
    0.055 largest, 0.045 mean before; 0.040 and 0.031 now, pghipy's heap PGHI with the same
    Griffin-Lim alike)."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "bench" / "bench_inversion.py"
    spec = importlib.util.spec_from_file_location("bench_inversion", path)
    bench_inversion = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_inversion)

    scores = []
    for name, normalised, low, high in bench_inversion.distorted_notes(5):  # frets 0, 6, 11, 16, 22
        target = _target(normalised, low, high)
        audio = spectrogram.spectrogram_to_audio(normalised, low, high, random_state=0)
        scores.append(bench_inversion.best_gain_convergence(audio, target))
    assert max(scores) <= 0.045 and np.mean(scores) <= 0.035, scores
