"""What a listener notices: the quality metrics, the descriptor-agnostic damage, the spectral
loss's terms and the decoder's upsampling, each on small arrays against a hand computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from semantic_timbre.data import damage
from semantic_timbre.evaluation import quality

RANGE_DB = 80.0


def note(bins=512, frames=64, seed=0):
    """A normalised note: harmonics over a floor, decaying, values in [0, 1]."""
    rng = np.random.default_rng(seed)
    spectrogram = np.full((bins, frames), 0.1) + 0.02 * rng.standard_normal((bins, frames))
    for harmonic in range(1, 12):
        spectrogram[15 * harmonic, :] = 0.95 - 0.02 * harmonic
    spectrogram *= np.linspace(1.0, 0.8, frames)[None, :]
    return np.clip(spectrogram, 0, 1).astype(np.float32)


# -- quality.py ----------------------------------------------------------------------------------


def test_flicker_is_twice_the_amplitude_of_an_even_odd_alternation_and_zero_on_a_decay():
    frames = 64
    decay = np.linspace(-10, -40, frames)[None, :].repeat(8, axis=0)
    assert quality.frame_flicker_db(decay)[0] == pytest.approx(0.0, abs=1e-9)
    # even frames +0.5 dB, odd frames -0.5 dB: r_t = +-1 after the onset, so 1 dB
    alternating = decay + np.where(np.arange(frames) % 2 == 0, 0.5, -0.5)[None, :]
    assert quality.frame_flicker_db(alternating)[0] == pytest.approx(1.0, abs=1e-9)
    # a jump inside the onset (frames before ONSET_FRAMES) is no flicker
    onset = decay.copy()
    onset[:, 0] -= 30
    assert quality.frame_flicker_db(onset)[0] == pytest.approx(0.0, abs=1e-9)


def test_level_error_splits_the_loud_bins_from_the_floor():
    original = np.full((1, 10, 8), -70.0)   # the floor: 70 dB below the maximum
    original[0, 2, :] = 0.0                 # one loud row at the maximum
    generated = original.copy()
    generated[0, 2, :] -= 9.0               # harmonics 9 dB low
    generated[0, 5:, :] += 2.0              # half of the floor 2 dB high
    levels = quality.level_error_db(original, generated)
    assert levels["loud_bias_db"] == pytest.approx(-9.0)
    assert levels["loud_abs_db"] == pytest.approx(9.0)
    assert levels["loud_share"] == pytest.approx(0.1)
    assert levels["floor_share"] == pytest.approx(0.9)
    assert levels["floor_bias_db"] == pytest.approx(2.0 * 5 / 9)


def test_segment_lsd_separates_the_onset_from_the_sustain():
    original = np.zeros((4, 10))
    generated = original.copy()
    generated[:, :5] += 6.0   # the onset off by 6 dB in every bin
    generated[:2, 5:] += 2.0  # the sustain off by 2 dB in half the bins: RMS sqrt(2)
    onset, sustain = quality.segment_lsd_db(original, generated, onset_frames=5)
    assert onset == pytest.approx(6.0)
    assert sustain == pytest.approx(math.sqrt(2.0))


def test_the_nearest_real_note_decides_the_identity_and_the_note_itself_is_excluded():
    real = np.zeros((4, 3, 5))
    real[1] += 10   # descriptor B, pitch E4
    real[2] += 1    # descriptor A, pitch E4
    real[3] += 1.1  # descriptor B, pitch A4
    descriptors, pitches = ["A", "B", "A", "B"], ["E4", "E4", "E4", "A4"]
    generated = np.stack([real[0] + 0.2, real[1] - 1.0, real[3]])
    fraction, nearest = quality.nearest_real_identity(generated, ["A", "B", "B"], ["E4", "E4", "A4"], real,
                                                      descriptors, pitches, exclude=[0, -1, 3])
    # note 0's own original is excluded: its nearest is note 2 (A); note 1 is nearest to note 1 (B);
    # the third has only its own note at its pitch, excluded: no candidate
    assert nearest.tolist() == [2, 1, -1]
    assert fraction == pytest.approx(1.0)


# -- damage.py -----------------------------------------------------------------------------------


def lsd(a, b, range_db=RANGE_DB):
    return float(np.mean(np.sqrt(np.mean(((a - b) * range_db) ** 2, axis=0))))


def test_noise_has_the_standard_deviation_asked_for():
    flat = np.full((512, 64), 0.5, dtype=np.float32)
    noisy = damage.add_noise(flat, std_db=4.0, range_db=RANGE_DB, random_state=0)
    assert np.std((noisy - flat) * RANGE_DB) == pytest.approx(4.0, rel=0.02)
    assert noisy.dtype == np.float32 and noisy.min() >= 0 and noisy.max() <= 1


def test_blur_keeps_a_flat_note_and_spreads_a_line():
    flat = np.full((64, 16), 0.4, dtype=np.float32)
    np.testing.assert_allclose(damage.blur(flat, sigma_bins=2, sigma_frames=1), flat, atol=1e-6)
    line = np.zeros((64, 16), dtype=np.float32)
    line[32] = 1.0
    blurred = damage.blur(line, sigma_bins=2, sigma_frames=0)
    assert blurred[32].max() < 0.25 and blurred[30].min() > 0.1
    np.testing.assert_allclose(blurred.sum(axis=0), line.sum(axis=0), rtol=1e-4)


def test_jitter_moves_each_frame_by_one_gain():
    flat = np.full((32, 64), 0.5, dtype=np.float32)
    jittered = damage.frame_jitter(flat, gain_db=3.0, range_db=RANGE_DB, max_shift=0, random_state=1)
    per_frame = (jittered - flat) * RANGE_DB
    np.testing.assert_allclose(per_frame, per_frame[:1].repeat(32, axis=0), atol=1e-4)  # one gain a frame
    assert np.std(per_frame[0]) == pytest.approx(3.0, rel=0.3)


@pytest.mark.parametrize("kind", ["noise", "blur"])
def test_damage_to_lsd_reaches_the_distance_asked_for(kind):
    x = note()
    damaged, reached = damage.damage_to_lsd(x, kind, 3.0, low=-80.0, high=0.0)
    assert reached == pytest.approx(3.0, rel=0.03)
    assert lsd(x, damaged) == pytest.approx(reached, rel=1e-4)


def test_an_unknown_damage_is_refused():
    with pytest.raises(ValueError, match="unknown damage"):
        damage.damage(note(), "reverb", 1.0, low=-80.0, high=0.0)


# -- the spectral loss's terms (vae.py) ------------------------------------------------------------


def test_the_loud_bin_term_is_the_squared_spectral_convergence_of_the_linear_magnitudes():
    from semantic_timbre.network.vae import SPECTRAL_RANGE_DB, loud_bin_loss

    rng = np.random.default_rng(0)
    target = rng.uniform(0, 1, (2, 6, 4, 1)).astype(np.float32)
    estimate = np.clip(target + rng.normal(0, 0.05, target.shape), 0, 1).astype(np.float32)
    a, b = (10 ** (SPECTRAL_RANGE_DB * (x.astype(np.float64) - 1) / 20) for x in (target, estimate))
    expected = ((a - b) ** 2).sum(axis=(1, 2, 3)) / (a ** 2).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(np.asarray(loud_bin_loss(target, estimate)), expected, rtol=1e-4)
    # a loud bin 0.05 low (4 dB) costs far more than a floor bin 0.05 high
    loud, floor = target.copy(), target.copy()
    index = np.unravel_index(np.argmax(target[0]), target[0].shape)
    loud[(0,) + index] -= 0.05
    quiet = np.unravel_index(np.argmin(target[0]), target[0].shape)
    floor[(0,) + quiet] += 0.05
    assert float(loud_bin_loss(target, loud)[0]) > 100 * float(loud_bin_loss(target, floor)[0])


def test_the_envelope_term_is_the_mse_of_the_frame_energies_in_db():
    from semantic_timbre.network.vae import SPECTRAL_RANGE_DB, envelope_loss

    rng = np.random.default_rng(1)
    target = rng.uniform(0.3, 1, (2, 8, 5, 1)).astype(np.float32)
    estimate = np.clip(target - 0.1 * rng.uniform(0, 1, (2, 1, 5, 1)), 0, 1).astype(np.float32)

    def energy(x):
        power = (10 ** (SPECTRAL_RANGE_DB * (x.astype(np.float64) - 1) / 10)).mean(axis=1)
        return 10 * np.log10(power + 1e-9) / SPECTRAL_RANGE_DB

    expected = ((energy(target) - energy(estimate)) ** 2).reshape(2, -1).mean(axis=1)
    np.testing.assert_allclose(np.asarray(envelope_loss(target, estimate)), expected, rtol=1e-4)
    # the same per-bin error spread evenly over frequency moves no frame's energy less than one gated frame does
    gated = target.copy()
    gated[:, :, 2] -= 0.2
    assert float(envelope_loss(target, gated)[0]) > 0.001


def test_the_spectral_loss_adds_its_terms_to_the_thesis_loss_and_the_thesis_loss_is_unchanged():
    import keras

    from semantic_timbre.network.vae import (ENVELOPE_LOSS_WEIGHT, LOUD_LOSS_WEIGHT, RECONSTRUCTION_LOSS_WEIGHT, VAE,
                                     envelope_loss, loud_bin_loss)

    shape = ((512, 64, 1), (4, 4, 4, 4, 4), (3, 3, 3, 3, 3), (2, 2, 2, 2, (2, 1)), 4)
    batch = np.stack([note(seed=0), note(seed=1)])[..., None]
    thesis, spectral = (VAE(*shape, seed=3, upsampling="nearest", loss=loss) for loss in ("thesis", "spectral"))
    spectral.set_weights(thesis.get_weights())
    results = {}
    for name, vae in (("thesis", thesis), ("spectral", spectral)):
        keras.utils.set_random_seed(5)  # the same sampled z in both
        total, reconstruction, kl, reconstructions = vae.compute_losses(batch, training=False)
        results[name] = (float(reconstruction), float(kl), np.asarray(reconstructions))
    (thesis_rec, thesis_kl, estimate), (spectral_rec, spectral_kl, same) = results["thesis"], results["spectral"]
    np.testing.assert_allclose(same, estimate, atol=1e-6)
    mse = np.mean((batch.astype(np.float64) - estimate) ** 2, axis=(1, 2, 3))
    assert thesis_rec == pytest.approx(RECONSTRUCTION_LOSS_WEIGHT * mse.mean(), rel=1e-4)
    extra = LOUD_LOSS_WEIGHT * np.asarray(loud_bin_loss(batch, estimate)) + ENVELOPE_LOSS_WEIGHT * np.asarray(
        envelope_loss(batch, estimate))
    assert spectral_rec == pytest.approx(RECONSTRUCTION_LOSS_WEIGHT * (mse + extra).mean(), rel=1e-4)
    assert spectral_rec > thesis_rec * 1.01 and spectral_kl == pytest.approx(thesis_kl, rel=1e-5)


# -- the decoder's upsampling (vae.py) --------------------------------------------------------------


def constant_decoder_output(upsampling):
    """The decoder's last layer before its activation, fed the same value at every position."""
    import keras

    from semantic_timbre.network.vae import _upsample

    names = iter(range(100))
    inputs = keras.Input((16, 8, 4))
    x = _upsample(inputs, 1, 3, 2, upsampling, lambda base: f"{base}_{next(names)}")
    layer_model = keras.Model(inputs, x)
    for weights in layer_model.weights:
        weights.assign(np.ones(weights.shape, dtype="float32"))
    return np.asarray(layer_model(np.ones((1, 16, 8, 4), dtype="float32")))[0, ..., 0]


@pytest.mark.parametrize("upsampling", ["nearest", "bilinear"])
def test_resize_then_convolve_doubles_the_size_with_no_checkerboard(upsampling):
    out = constant_decoder_output(upsampling)
    assert out.shape == (32, 16)
    inner = out[1:-1, 1:-1]  # away from the zero padding at the edges
    np.testing.assert_allclose(inner, inner[0, 0], rtol=1e-6)


def test_the_thesis_transposed_convolution_alternates_on_a_constant_input():
    out = constant_decoder_output("transposed")
    assert out.shape == (32, 16)
    inner = out[2:-2, 2:-2]
    # kernel 3 at stride 2: even and odd positions get different numbers of kernel taps
    assert abs(float(inner[0::2].mean()) - float(inner[1::2].mean())) > 1.0
