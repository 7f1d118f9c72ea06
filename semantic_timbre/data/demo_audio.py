"""The synthetic demo data set: plucked-string notes through real audio effects.

These notes are stand-ins for the Semantic Timbre Dataset, written in its exact layout
(`audio/<GROUP>/<DESCRIPTOR>/<MAGNITUDE>/<STRING>-<FRET>.wav`, mono, 44,100 Hz, 1 s, 24-bit), so
that the whole pipeline runs from a fresh clone. Each clean note is an extended Karplus-Strong
string; each descriptor is an effect built with pedalboard whose strength grows with the
magnitude. Everything is deterministic: a note's randomness comes from (seed, string, fret) only.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pedalboard
from scipy import signal

from semantic_timbre import layout, safe_io

SAMPLE_RATE = 44100
DURATION_SECONDS = 1.0
NUM_SAMPLES = int(SAMPLE_RATE * DURATION_SECONDS)
DEFAULT_SEED = 1771
#: Peak level of a clean note, leaving headroom for the effects.
CLEAN_PEAK_DBFS = -3.0
#: No written note peaks above this level.
MAX_PEAK_DBFS = -1.0
#: ... and none below this one (a strong filter may lose a lot of level).
MIN_PEAK_DBFS = -12.0
FADE_OUT_SECONDS = 0.012

EFFECT_GROUPS = {
    "DistortionFX": ("Crunch", "Crush", "Dirt", "Fuzz"),
    "FilterFX": ("Bright", "Dark", "Thin", "Fat", "Resonant", "Sharp", "WahWah"),
    "DynamicsFX": ("Punch", "Tight", "Smooth", "Soft"),
    "ModulationFX": ("Shimmery", "Fluttery", "Jittery", "Stuttering"),
}
DESCRIPTOR_GROUP = {descriptor: group for group, members in EFFECT_GROUPS.items() for descriptor in members}
assert sorted(DESCRIPTOR_GROUP) == sorted(layout.DESCRIPTORS)

STAND_IN_NOTICE = (
    "These are SYNTHETIC stand-ins for the Semantic Timbre Dataset (plucked-string notes through audio "
    "effects), so that the pipeline runs without the recordings. The real data is on Hugging Face "
    "(dataset JoeCameron1/SemanticTimbreDataset) and Zenodo (record 11398253): put its audio/ folder "
    "in the project folder instead."
)


# --------------------------------------------------------------------------------------------
# The clean note: an extended Karplus-Strong string


def note_frequency(string: int, fret: int) -> float:
    """Return the equal-tempered frequency (A4 = 440 Hz) of a string (1-6) at a fret (0-22)."""
    midi = layout.OPEN_STRING_MIDI[string] + fret
    return 440.0 * 2.0 ** ((midi - 69) / 12)


def _peaking_biquad(frequency: float, gain_db: float, q: float, sample_rate: int):
    """RBJ audio-EQ-cookbook peaking filter coefficients (b, a)."""
    amplitude = 10 ** (gain_db / 40)
    w0 = 2 * math.pi * frequency / sample_rate
    alpha = math.sin(w0) / (2 * q)
    b = np.array([1 + alpha * amplitude, -2 * math.cos(w0), 1 - alpha * amplitude])
    a = np.array([1 + alpha / amplitude, -2 * math.cos(w0), 1 - alpha / amplitude])
    return b / a[0], a / a[0]


def _fade_out(audio: np.ndarray, sample_rate: int, seconds: float = FADE_OUT_SECONDS) -> np.ndarray:
    length = min(len(audio), int(seconds * sample_rate))
    if length > 0:
        audio[-length:] *= 0.5 + 0.5 * np.cos(np.linspace(0, np.pi, length))
    return audio


def pluck(frequency: float, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE,
          duration: float = DURATION_SECONDS, pick_position: float = 0.18, decay_seconds: float = 3.0,
          brightness: float = 0.12) -> np.ndarray:
    """Synthesise a plucked string with an extended Karplus-Strong model.

    A noise burst one period long, shaped by a pick-position comb, drives a feedback loop of a
    delay line, a three-tap linear-phase loss filter and a first-order all-pass for the fractional
    part of the period. The loop is one IIR filter, run with `scipy.signal.lfilter`. Two peaking
    biquads add a little body and pickup resonance.

    Parameters
    ----------
    frequency : fundamental frequency in Hz.
    rng : the random generator for the excitation.
    sample_rate : samples per second.
    duration : length in seconds.
    pick_position : where the string is plucked, as a fraction of its length from the bridge.
    decay_seconds : the fundamental's T60 for an E4; higher notes decay a little faster.
    brightness : how fast the high harmonics die away (0 = never, larger = duller): the loop's
        three-tap loss filter is [g, 1 - 2g, g] with g = brightness * 329.63 / frequency, at most
        0.24, so the damping per second is about the same at every pitch.

    Returns
    -------
    numpy.ndarray, float32, shape (int(duration * sample_rate),), peak at CLEAN_PEAK_DBFS.
    """
    num_samples = int(round(duration * sample_rate))
    period = sample_rate / frequency
    # The loss filter is linear-phase with a delay of exactly one sample; the all-pass supplies the
    # fractional rest, kept within [0.5, 1.5) samples where its phase delay is nearly flat.
    delay = int(math.floor(period - 1.5))
    fraction = period - 1 - delay
    allpass = (1 - fraction) / (1 + fraction)

    # Damp the high harmonics by the same amount per second whatever the pitch.
    side = min(0.24, brightness * 329.63 / frequency)
    loss = np.array([side, 1 - 2 * side, side])
    w0 = 2 * math.pi * frequency / sample_rate
    loss_at_f0 = (1 - 2 * side) + 2 * side * math.cos(w0)
    t60 = decay_seconds * (329.63 / frequency) ** 0.35
    per_period = 10 ** (-3 / (t60 * frequency))
    rho = per_period / loss_at_f0

    # y = x + rho z^-N L(z) A(z) y with A(z) = (C + z^-1) / (1 + C z^-1):
    # Y/X = (1 + C z^-1) / ((1 + C z^-1) - rho z^-N L(z) (C + z^-1)).
    loop = rho * np.convolve(loss, [allpass, 1.0])
    denominator = np.zeros(delay + len(loop))
    denominator[0], denominator[1] = 1.0, allpass
    denominator[delay:] -= loop
    numerator = np.array([1.0, allpass])

    burst_length = int(round(period))
    burst = rng.uniform(-1.0, 1.0, burst_length)
    # A softer pluck has less high-frequency energy: a random one-pole smoothing of the burst.
    smoothing = rng.uniform(0.1, 0.5)
    burst = signal.lfilter([1 - smoothing], [1, -smoothing], burst)
    excitation = np.zeros(num_samples)
    excitation[:burst_length] = burst
    # Picking at a fraction of the string cancels the harmonics with a node there (a feed-forward comb).
    pick_delay = max(1, int(round(pick_position * rng.uniform(0.85, 1.15) * period)))
    excitation[pick_delay:] -= excitation[:-pick_delay].copy()
    excitation[:32] *= np.linspace(0, 1, 32)  # no step at the very first sample

    string = signal.lfilter(numerator, denominator, excitation)
    for centre, gain_db, q in ((110.0, 4.0, 1.2), (3200.0, 5.0, 1.6)):  # body, pickup resonance
        b, a = _peaking_biquad(centre, gain_db, q, sample_rate)
        string = signal.lfilter(b, a, string)
    b, a = signal.butter(2, 30.0, "highpass", fs=sample_rate)
    string = signal.lfilter(b, a, string)
    string = _fade_out(string, sample_rate)
    peak = np.max(np.abs(string))
    if not np.isfinite(peak) or peak == 0:
        raise ValueError(f"the string model produced no sound at {frequency:.2f} Hz")
    return (string * (10 ** (CLEAN_PEAK_DBFS / 20) / peak)).astype(np.float32)


def note_rng(seed: int, string: int, fret: int) -> np.random.Generator:
    """The random generator of one note: a function of (seed, string, fret) only."""
    return np.random.default_rng([seed, string, fret])


@functools.lru_cache(maxsize=8)
def _cached_clean_note(string: int, fret: int, seed: int, sample_rate: int) -> np.ndarray:
    note = pluck(note_frequency(string, fret), note_rng(seed, string, fret), sample_rate=sample_rate)
    note.setflags(write=False)
    return note


def clean_note(string: int, fret: int, seed: int = DEFAULT_SEED, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Return the clean (magnitude 0) note of a string at a fret: float32, 1 s, peak -3 dBFS."""
    return _cached_clean_note(int(string), int(fret), int(seed), int(sample_rate)).copy()


# --------------------------------------------------------------------------------------------
# The descriptors: one real effect each, stronger with the magnitude


def _run(plugins, audio: np.ndarray, sample_rate: int) -> np.ndarray:
    board = pedalboard.Pedalboard(list(plugins))
    out = board(audio[np.newaxis, :].astype(np.float32), sample_rate)[0]
    if len(out) < len(audio):  # a plugin with latency returns fewer samples; keep the length
        out = np.concatenate([out, np.zeros(len(audio) - len(out), np.float32)])
    return out[: len(audio)]


def _db(value: float) -> float:
    return 10 ** (value / 20)


def _smooth_steps(levels: np.ndarray, step_samples: int, num_samples: int, ramp_samples: int) -> np.ndarray:
    """Hold each level for `step_samples`, with raised-cosine ramps of `ramp_samples` between steps."""
    envelope = np.repeat(levels, step_samples)[:num_samples]
    if len(envelope) < num_samples:
        envelope = np.concatenate([envelope, np.full(num_samples - len(envelope), levels[-1])])
    window = np.hanning(2 * ramp_samples + 1)
    window /= window.sum()
    padded = np.pad(envelope, ramp_samples, mode="edge")
    return np.convolve(padded, window, mode="valid")


def _crunch(audio, amount, sample_rate, rng):
    return _run([pedalboard.Distortion(drive_db=6 + 22 * amount),
                 pedalboard.LowpassFilter(6500 - 2500 * amount),
                 pedalboard.Gain(-4 - 10 * amount)], audio, sample_rate)


def _dirt(audio, amount, sample_rate, rng):
    # A mid-hump overdrive with asymmetric soft clipping (even harmonics).
    boosted = _run([pedalboard.HighpassFilter(180), pedalboard.PeakFilter(750, 4 + 8 * amount, 0.8)],
                   audio, sample_rate)
    drive = _db(4 + 20 * amount)
    bias = 0.25 * amount
    clipped = np.tanh(drive * boosted + bias) - np.tanh(bias)
    return _run([pedalboard.HighpassFilter(25), pedalboard.LowpassFilter(4000)],
                clipped.astype(np.float32) / drive ** 0.5, sample_rate)


def _fuzz(audio, amount, sample_rate, rng):
    # Very high gain into a hard, asymmetric clipper: the square-ish fuzz.
    gained = audio * _db(12 + 30 * amount)
    positive, negative = 0.5, 0.5 * (1 - 0.6 * amount)
    clipped = np.clip(gained + 0.1 * amount, -negative, positive)
    return _run([pedalboard.HighpassFilter(30), pedalboard.Clipping(-2.0),
                 pedalboard.HighShelfFilter(2500, 2 + 4 * amount)], clipped.astype(np.float32), sample_rate)


def _crush(audio, amount, sample_rate, rng):
    # Fewer bits and a sample-and-hold rate reduction. The bits are taken in the mu-law domain,
    # as in telephony codecs, so the decaying tail turns to grit instead of dropping to silence.
    hold = 1 + int(round(3 * amount))
    held = np.repeat(audio[::hold], hold)[: len(audio)]
    mu = 255.0
    companded = np.sign(held) * np.log1p(mu * np.abs(held)) / np.log1p(mu)
    crushed = _run([pedalboard.Bitcrush(bit_depth=10 - 6 * amount)], companded.astype(np.float32), sample_rate)
    return np.sign(crushed) * np.expm1(np.abs(crushed) * np.log1p(mu)) / mu


def _bright(audio, amount, sample_rate, rng):
    # More air and presence, the body kept.
    return _run([pedalboard.HighShelfFilter(2500, 3 + 15 * amount, 0.7),
                 pedalboard.PeakFilter(6000, 2 + 8 * amount, 0.8)], audio, sample_rate)


def _dark(audio, amount, sample_rate, rng):
    cutoff = 7000 * (350 / 7000) ** amount
    return _run([pedalboard.LowpassFilter(cutoff), pedalboard.LowpassFilter(cutoff),
                 pedalboard.HighShelfFilter(1500, -12 * amount)], audio, sample_rate)


def _thin(audio, amount, sample_rate, rng):
    # The body removed and the top narrowed too: a small, boxy, band-limited note.
    cutoff = 200 * (1800 / 200) ** amount
    return _run([pedalboard.HighpassFilter(cutoff), pedalboard.HighpassFilter(cutoff),
                 pedalboard.LowShelfFilter(600, -12 * amount),
                 pedalboard.LowpassFilter(9000 * (3500 / 9000) ** amount)], audio, sample_rate)


def _fat(audio, amount, sample_rate, rng):
    return _run([pedalboard.LowShelfFilter(350, 4 + 14 * amount, 0.8),
                 pedalboard.PeakFilter(180, 3 + 6 * amount, 1.0),
                 pedalboard.HighShelfFilter(3000, -3 - 9 * amount)], audio, sample_rate)


def _resonant(audio, amount, sample_rate, rng):
    # A ringing ladder band-pass peak around 1.5 kHz added to the note, the top rolled off.
    mode = pedalboard.LadderFilter.Mode.BPF12
    peak = _run([pedalboard.LadderFilter(mode, cutoff_hz=1500, resonance=0.5 + 0.45 * amount)], audio, sample_rate)
    return _run([pedalboard.LowpassFilter(8000 * (3000 / 8000) ** amount)], audio + 4 * amount * peak, sample_rate)


def _sharp(audio, amount, sample_rate, rng):
    # A narrow, piercing resonance high up (about 3 kHz) on top of the dry note.
    mode = pedalboard.LadderFilter.Mode.BPF24
    wet = _run([pedalboard.LadderFilter(mode, cutoff_hz=3000, resonance=0.6 + 0.35 * amount)], audio, sample_rate)
    return (1 - 0.5 * amount) * audio + (1 + 5 * amount) * wet


def _wahwah(audio, amount, sample_rate, rng):
    # A resonant band-pass whose centre sweeps up and down, processed in short chunks so the
    # filter keeps its state while its cutoff moves.
    chunk = 128
    rate_hz = 2.5
    low, high = 450.0, 450.0 + 2200.0 * (0.3 + 0.7 * amount)
    wah = pedalboard.LadderFilter(pedalboard.LadderFilter.Mode.BPF12, cutoff_hz=low,
                                  resonance=0.45 + 0.45 * amount, drive=1.0)
    source = audio[np.newaxis, :].astype(np.float32)
    wet = np.zeros_like(source)
    for start in range(0, source.shape[1], chunk):
        phase = 0.5 - 0.5 * math.cos(2 * math.pi * rate_hz * start / sample_rate)
        wah.cutoff_hz = low * (high / low) ** phase
        wet[:, start:start + chunk] = wah.process(source[:, start:start + chunk], sample_rate, reset=start == 0)
    mix = 0.35 + 0.65 * amount
    return (1 - mix) * audio + mix * 2.5 * wet[0]


def _punch(audio, amount, sample_rate, rng):
    # A slow attack lets the pick through while the body is squashed, then make-up gain.
    return _run([pedalboard.Compressor(threshold_db=-14 - 20 * amount, ratio=2 + 8 * amount,
                                       attack_ms=25, release_ms=120),
                 pedalboard.PeakFilter(120, 2 + 5 * amount, 0.9),
                 pedalboard.Gain(4 + 14 * amount)], audio, sample_rate)


def _tight(audio, amount, sample_rate, rng):
    # Fast, hard compression and a shortened, damped tail.
    compressed = _run([pedalboard.Compressor(threshold_db=-10 - 20 * amount, ratio=4 + 12 * amount,
                                             attack_ms=0.5, release_ms=40),
                       pedalboard.HighpassFilter(100 + 150 * amount),
                       pedalboard.Gain(3 + 10 * amount)], audio, sample_rate)
    t = np.arange(len(audio)) / sample_rate
    return compressed * np.exp(-t * 7 * amount)


def _smooth(audio, amount, sample_rate, rng):
    return _run([pedalboard.Compressor(threshold_db=-10 - 20 * amount, ratio=2 + 4 * amount,
                                       attack_ms=3, release_ms=400),
                 pedalboard.HighShelfFilter(2500, -3 - 9 * amount),
                 pedalboard.Gain(3 + 10 * amount)], audio, sample_rate)


def _soft(audio, amount, sample_rate, rng):
    # A slower onset (the pick is rounded off), gentle compression and a quieter, duller note.
    attack = max(1, int(sample_rate * (0.004 + 0.08 * amount)))
    envelope = np.ones(len(audio))
    envelope[:attack] = np.sin(np.linspace(0, np.pi / 2, attack)) ** 2
    return _run([pedalboard.Compressor(threshold_db=-6 - 14 * amount, ratio=1.5 + 2.5 * amount,
                                       attack_ms=10, release_ms=200),
                 pedalboard.LowpassFilter(6000 - 3500 * amount),
                 pedalboard.Gain(-2 - 8 * amount)], (audio * envelope).astype(np.float32), sample_rate)


def _shimmery(audio, amount, sample_rate, rng):
    return _run([pedalboard.Chorus(rate_hz=0.9, depth=0.2 + 0.6 * amount, centre_delay_ms=8,
                                   feedback=0.1 + 0.3 * amount, mix=0.3 + 0.5 * amount),
                 pedalboard.HighShelfFilter(3000, 1 + 5 * amount)], audio, sample_rate)


def _fluttery(audio, amount, sample_rate, rng):
    # A fast phaser plus a fast tremolo at the same rate: a fluttering, wavering note.
    rate_hz = 6 + 4 * amount
    phased = _run([pedalboard.Phaser(rate_hz=rate_hz, depth=0.3 + 0.7 * amount, centre_frequency_hz=1100,
                                     feedback=0.2 + 0.5 * amount, mix=0.3 + 0.6 * amount)], audio, sample_rate)
    t = np.arange(len(audio)) / sample_rate
    return phased * (1 - 0.45 * amount * (0.5 - 0.5 * np.cos(2 * np.pi * rate_hz * t)))


def _jittery(audio, amount, sample_rate, rng):
    # Irregular gain steps 15-60 ms long: a nervous, unsteady level.
    steps = rng.integers(int(0.015 * sample_rate), int(0.06 * sample_rate), 200)
    levels = rng.uniform(0.0, 1.0, 200)
    envelope = np.concatenate([np.full(step, level) for step, level in zip(steps, levels)])[: len(audio)]
    window = np.hanning(int(0.004 * sample_rate))
    envelope = np.convolve(np.pad(envelope, len(window) // 2, mode="edge"), window / window.sum(),
                           mode="valid")[: len(audio)]
    return audio * (1 - 0.9 * amount * envelope)


def _stuttering(audio, amount, sample_rate, rng):
    # A regular on/off gate with short ramps (no clicks): the note is chopped.
    rate_hz = 7 + 7 * amount
    period = int(sample_rate / rate_hz)
    step = period // 2
    count = len(audio) // step + 2
    levels = np.tile([1.0, 1 - 0.98 * amount], count // 2 + 1)[:count]
    return audio * _smooth_steps(levels, step, len(audio), int(0.002 * sample_rate))


_EFFECTS = {
    "Crunch": _crunch, "Dirt": _dirt, "Fuzz": _fuzz, "Crush": _crush,
    "Bright": _bright, "Dark": _dark, "Thin": _thin, "Fat": _fat,
    "Resonant": _resonant, "Sharp": _sharp, "WahWah": _wahwah,
    "Punch": _punch, "Tight": _tight, "Smooth": _smooth, "Soft": _soft,
    "Shimmery": _shimmery, "Fluttery": _fluttery, "Jittery": _jittery, "Stuttering": _stuttering,
}
assert sorted(_EFFECTS) == sorted(layout.DESCRIPTORS)


def finish(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, max_peak_dbfs: float = MAX_PEAK_DBFS,
           min_peak_dbfs: float = MIN_PEAK_DBFS) -> np.ndarray:
    """Make a processed note safe to write: finite, faded out at the end, its peak brought within
    [min_peak_dbfs, max_peak_dbfs] (level differences inside that range are kept)."""
    audio = np.nan_to_num(np.asarray(audio, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    audio = _fade_out(audio.copy(), sample_rate)
    peak = np.max(np.abs(audio)) if len(audio) else 0.0
    limit = 10 ** (max_peak_dbfs / 20)
    floor = 10 ** (min_peak_dbfs / 20)
    if peak > limit:
        audio *= limit / peak
    elif 0 < peak < floor:
        audio *= floor / peak
    return audio.astype(np.float32)


def apply_descriptor(audio: np.ndarray, descriptor: str, magnitude: int, sample_rate: int = SAMPLE_RATE,
                     seed: int = 0) -> np.ndarray:
    """Apply a descriptor's effect to a clean note at a magnitude.

    Parameters
    ----------
    audio : mono clean note (float), e.g. from `clean_note`.
    descriptor : one of `layout.DESCRIPTORS`.
    magnitude : 0..100; 0 returns the note unchanged, 100 is the strongest effect.
    sample_rate : samples per second.
    seed : randomness of the effects that have any (Jittery); the same seed gives the same pattern
        at every magnitude, so only the strength changes.

    Returns
    -------
    numpy.ndarray, float32, the same length; finite, peak at most MAX_PEAK_DBFS.
    """
    if descriptor not in _EFFECTS:
        raise ValueError(f"unknown descriptor '{descriptor}': choose from {', '.join(layout.DESCRIPTORS)}")
    if not 0 <= magnitude <= 100:
        raise ValueError(f"magnitude {magnitude} is not between 0 and 100")
    audio = np.asarray(audio, dtype=np.float32)
    if magnitude == 0:
        return audio.copy()
    rng = np.random.default_rng([seed, layout.DESCRIPTORS.index(descriptor)])
    processed = _EFFECTS[descriptor](audio, magnitude / 100, sample_rate, rng)
    return finish(processed, sample_rate)


# --------------------------------------------------------------------------------------------
# The selection of files and writing them


def audio_path(note: layout.Note) -> Path:
    """Return a note's path inside audio/: <GROUP>/<DESCRIPTOR>/<MAGNITUDE>/<STRING>-<FRET>.wav."""
    return Path(DESCRIPTOR_GROUP[note.descriptor], note.descriptor, str(note.magnitude), note.file_name)


def demo_selection(descriptors=None, magnitudes=None, strings=None, frets=None, positions=None,
                   clean: bool = True, full_release: bool = False) -> list[layout.Note]:
    """Return the notes of a demo set, sorted by string, fret, descriptor, magnitude (nothing is
    synthesised).

    The default is the thesis's selection: every descriptor at 25/50/75/100 on string 1, frets 0-22,
    plus the clean notes (magnitude 0) under Fluttery/0 only: 1,771 notes. With `full_release`,
    the release's shape: strings 1-6 and magnitudes 0, 5, ..., 100 under every descriptor.
    Arguments given explicitly override either default; `positions`, a list of (string, fret)
    pairs, replaces `strings` x `frets`. `clean` adds the clean notes under Fluttery/0 (a
    magnitude 0 in `magnitudes` puts clean notes under every chosen descriptor).
    """
    descriptors = tuple(descriptors) if descriptors else layout.DESCRIPTORS
    if magnitudes is None:
        magnitudes = layout.RELEASE_MAGNITUDES if full_release else layout.THESIS_MAGNITUDES
    if positions is None:
        if strings is None:
            strings = layout.RELEASE_STRINGS if full_release else layout.THESIS_STRINGS
        frets = layout.FRETS if frets is None else frets
        positions = [(s, f) for s in strings for f in frets]
    positions = sorted({(int(s), int(f)) for s, f in positions})
    notes = {layout.Note(d, int(m), s, f, f"{s}-{f}.wav")
             for d in descriptors for m in magnitudes for s, f in positions}
    if clean:
        notes |= {layout.Note(layout.CLEAN_DESCRIPTOR, 0, s, f, f"{s}-{f}.wav") for s, f in positions}
    return sorted(notes, key=lambda note: (note.string, note.fret, note.descriptor, note.magnitude))


def render(note: layout.Note, seed: int = DEFAULT_SEED, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Return the audio of one note of the demo set: its clean note through its descriptor's effect."""
    base = clean_note(note.string, note.fret, seed, sample_rate)
    effect_seed = int(np.random.SeedSequence([seed, note.string, note.fret]).generate_state(1)[0])
    return apply_descriptor(base, note.descriptor, note.magnitude, sample_rate, seed=effect_seed)


@dataclass(frozen=True)
class _Batch:
    output: str
    seed: int
    notes: tuple


def _ignore_interrupts() -> None:
    # Ctrl-C reaches the whole process group: the parent stops the pool, the workers stay quiet.
    import signal as os_signal

    os_signal.signal(os_signal.SIGINT, os_signal.SIG_IGN)


def _write_batch(batch: _Batch) -> int:
    for note in batch.notes:
        safe_io.write_wav_atomic(Path(batch.output) / audio_path(note), render(note, batch.seed), SAMPLE_RATE)
    return len(batch.notes)


def _batches(notes, output: Path, seed: int, size: int = 16) -> list[_Batch]:
    # Notes of one pitch stay together, so a worker synthesises each clean note about once.
    groups: dict[tuple, list] = {}
    for note in notes:
        groups.setdefault((note.string, note.fret), []).append(note)
    batches = []
    for group in groups.values():
        for start in range(0, len(group), size):
            batches.append(_Batch(str(output), seed, tuple(group[start:start + size])))
    return batches


def write_demo_audio(output, notes, seed: int = DEFAULT_SEED, jobs: int | None = None,
                     progress: bool = True) -> int:
    """Write `notes` (from `demo_selection`) as WAV files under `output`, each atomically.

    Parallel over `jobs` processes (default: all cores); the bytes do not depend on `jobs`.
    Returns the number of files written.
    """
    from tqdm import tqdm

    output = Path(output)
    notes = list(notes)
    batches = _batches(notes, output, seed)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(batches) or 1))
    written = 0
    with tqdm(total=len(notes), unit="file", disable=not progress, desc="demo audio") as bar:
        if jobs == 1:
            for batch in batches:
                written += _write_batch(batch)
                bar.update(len(batch.notes))
        else:
            import multiprocessing

            with multiprocessing.get_context("spawn").Pool(jobs, initializer=_ignore_interrupts) as pool:
                for count in pool.imap_unordered(_write_batch, batches):
                    written += count
                    bar.update(count)
    return written
