"""The judge's augmentation: the damaged copies of real notes it learns from besides them.

The judge hears a descriptor through an artefact, as a listener does. Beside each
real note it learns from `AUGMENTED_COPIES` copies damaged by descriptor-agnostic damage
(damage.py: additive noise, blur, frame-level jitter, blur and noise together, at random
strengths up to a model's error of about 5 dB LSD) and, for up to `GRIFFIN_LIM_NOTES` notes, a
Griffin-Lim round trip. It never sees a model's output. Without it, damage of a model's size
(noise or blur to 4.7 dB LSD) took the judge from 0.98 to 0.12-0.47 on the real notes.
"""

from __future__ import annotations

import numpy as np

#: Damaged copies of each real note the judge learns from (damage.py), and their recipe: each copy
#: draws one kind and a strength uniformly from its range (damage.damage's strength: noise 6 dB,
#: blur 2 bins and 1 frame, jitter 3 dB per unit).
AUGMENTED_COPIES = 2
AUGMENTATION = {
    "noise": (0.2, 1.2),
    "blur": (0.2, 1.6),
    "jitter": (0.3, 1.5),
    "blur+noise": (0.2, 1.0),
}
#: How many real notes (a seeded random choice) also get a Griffin-Lim round trip (8 iterations):
#: it costs about 0.1 s a note, so it is capped.
GRIFFIN_LIM_NOTES = 128
GRIFFIN_LIM_ITERATIONS = 8
#: At most this many real notes get damaged copies (a seeded random choice) on a large data set.
MAX_AUGMENTED_NOTES = 4000


def augmentation_settings() -> dict:
    """The augmentation the judge learns with, as plain data (in its fingerprint and summary)."""
    return {"copies_per_note": AUGMENTED_COPIES, "kinds": {kind: list(span) for kind, span in AUGMENTATION.items()},
            "griffin_lim_notes": GRIFFIN_LIM_NOTES, "griffin_lim_iterations": GRIFFIN_LIM_ITERATIONS,
            "max_augmented_notes": MAX_AUGMENTED_NOTES, "trained_on_model_outputs": False}


def augment(normalised: np.ndarray, low: float, high: float, rng: np.random.Generator) -> np.ndarray:
    """One damaged copy of a normalised spectrogram (512, frames): a kind of AUGMENTATION drawn
    at random, at a random strength in its range."""
    from semantic_timbre.data import damage

    kinds = list(AUGMENTATION)
    kind = kinds[int(rng.integers(len(kinds)))]
    strength = float(rng.uniform(*AUGMENTATION[kind]))
    if kind == "blur+noise":
        blurred = damage.damage(normalised, "blur", strength, low=low, high=high, random_state=rng)
        return damage.damage(blurred, "noise", float(rng.uniform(0.2, 0.8)), low=low, high=high, random_state=rng)
    return damage.damage(normalised, kind, strength, low=low, high=high, random_state=rng)
