"""Each note's condition for a conditioned model: the descriptor one-hot and magnitude, or the
note's perceptual features standardised (the conditioning's kinds: network/config.py), read from a
model folder's parameters.json without TensorFlow."""

from __future__ import annotations

import numpy as np

from semantic_timbre import layout
from semantic_timbre.network.config import Conditioning
from semantic_timbre.network.model_files import check_model_config


def note_conditions(conditioning: Conditioning, notes, *, audio_dir=layout.AUDIO_DIR, minmax_dir=layout.MINMAX_DIR,
                    progress: bool = False, log=print) -> np.ndarray | None:
    """Each note's own condition (N, size), or None for an unconditioned model.

    Perceptual features come from minmax/perceptual_features.npz, or from the notes' audio under
    `audio_dir` (then cached); see perceptual.note_features for the errors.
    """
    notes = list(notes)
    if conditioning.kind == "none":
        return None
    if conditioning.kind == "descriptor":
        return conditioning.of_descriptors([note.descriptor for note in notes], [note.magnitude for note in notes])
    from semantic_timbre.data.perceptual import note_features

    return conditioning.of_features(note_features(notes, audio_dir=audio_dir, minmax_dir=minmax_dir,
                                                  progress=progress, log=log))


def conditions_for_model(model_dir, notes, *, audio_dir=layout.AUDIO_DIR, minmax_dir=layout.MINMAX_DIR,
                         progress: bool = False, log=print):
    """(the model folder's checked ModelConfig, the conditions of `notes` for it (None: it is not
    conditioned)), read from its parameters.json without TensorFlow, so that a missing model or
    condition is reported first; pass the config on to runtime.inference.load_model(config=)."""
    config = check_model_config(model_dir)
    return config, note_conditions(config.conditioning, notes, audio_dir=audio_dir, minmax_dir=minmax_dir,
                                   progress=progress, log=log)


