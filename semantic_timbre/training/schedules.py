"""The training's learning rate as a function of the optimizer's step: constant or cosine decay,
an optional linear warm-up, and a scale that recovery from a non-finite loss lowers.

Imports Keras: training.py loads it only once TensorFlow is configured.
"""

from __future__ import annotations

import keras
from keras import ops


class LearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """learning_rate x decay(step) x min(1, (step + 1) / warmup_steps) x scale.

    Parameters
    ----------
    learning_rate : float
        The peak learning rate.
    decay_steps : int or None
        None: constant (the thesis); else a cosine decay to `alpha` x the learning rate over this
        many steps (keras.optimizers.schedules.CosineDecay, the same curve as before warm-ups).
    alpha : float
        The cosine decay's final fraction.
    warmup_steps : int
        0: none; else the rate rises linearly from 1/warmup_steps of itself to itself over these
        first steps (Adam's first steps move every weight by about the learning rate in the
        direction of its gradient's sign, before its second-moment estimate has settled).
    """

    def __init__(self, learning_rate: float, decay_steps: int | None = None, alpha: float = 0.0,
                 warmup_steps: int = 0):
        self.learning_rate = float(learning_rate)
        self.decay_steps = None if decay_steps is None else max(1, int(decay_steps))
        self.alpha = float(alpha)
        self.warmup_steps = max(0, int(warmup_steps))
        self._cosine = (keras.optimizers.schedules.CosineDecay(self.learning_rate, self.decay_steps, alpha=self.alpha)
                        if self.decay_steps is not None else None)
        # Lowered by recovery from a non-finite loss; kept in the checkpoint's metadata.
        self.scale = keras.Variable(1.0, dtype="float32", trainable=False, name="learning_rate_scale")

    def __call__(self, step):
        step = ops.cast(step, "float32")
        rate = self._cosine(step) if self._cosine is not None else ops.convert_to_tensor(self.learning_rate,
                                                                                          "float32")
        if self.warmup_steps:
            rate = rate * ops.minimum(1.0, (step + 1.0) / float(self.warmup_steps))
        return rate * self.scale

    def get_config(self):
        return {"learning_rate": self.learning_rate, "decay_steps": self.decay_steps, "alpha": self.alpha,
                "warmup_steps": self.warmup_steps}


def learning_rate_scale(optimizer) -> float:
    """The factor recovery has applied to the optimizer's learning rate (1.0: none)."""
    schedule = getattr(optimizer, "_learning_rate", None)
    if isinstance(schedule, LearningRate):
        return float(schedule.scale.numpy())
    return float(getattr(optimizer, "_semantic_timbre_scale", 1.0))


def set_learning_rate_scale(optimizer, scale: float, learning_rate: float) -> float:
    """Make the optimizer's learning rate `scale` x its schedule (a LearningRate), or `scale` x
    `learning_rate` for a constant rate (a variable among the optimizer's, which putting back a
    state also puts back); return the learning rate at the optimizer's current step."""
    schedule = getattr(optimizer, "_learning_rate", None)
    if isinstance(schedule, LearningRate):
        schedule.scale.assign(scale)
        return float(schedule(optimizer.iterations))
    optimizer.learning_rate.assign(learning_rate * scale)
    optimizer._semantic_timbre_scale = float(scale)
    return float(optimizer.learning_rate.numpy())
