"""The shared spectrogram maths: inversion against librosa's, and the Nyquist-restored gain."""

import librosa
import numpy as np

from conftest import plucked_note
from semantic_timbre import spectrogram


def _note_spectrogram(frequency=440.0):
    note = librosa.resample(plucked_note(frequency), orig_sr=44100, target_sr=spectrogram.SAMPLE_RATE)
    return spectrogram.normalise(spectrogram.log_spectrogram(spectrogram.pad_or_trim(note)))


def test_fast_griffin_lim_is_librosas_algorithm():
    magnitude = np.random.default_rng(1).random(spectrogram.SPECTROGRAM_SHAPE, dtype=np.float32)
    ours = spectrogram.griffin_lim(magnitude, random_state=3)
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
