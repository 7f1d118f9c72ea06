"""The latent sampling, one formula for every runtime: z = mu + exp(min(log_variance, B) / 2) * eps,
eps ~ N(0, 1), with B = LOG_VARIANCE_BOUND.

`reparameterize` computes it with the array functions it is given: numpy by default, keras.ops
in the Sampling layer (semantic_timbre/network/vae.py), so the layer and the numpy sampling of both
runtimes (VAE.encode and the ONNX Runtime codec, `sample_latent`) are the same expression. The KL
term bounds the log-variance with `bound_log_variance`. Plain numpy: no TensorFlow here.
"""

from __future__ import annotations

import numpy as np

#: The highest log-variance the sampling and the KL term take: above it exp() is taken of this
#: bound instead. exp(30 / 2) = 3.3e6 as a standard deviation and exp(30) = 1.1e13 in the KL are
#: finite in float32 (exp overflows from 88.7), and far above what training reaches: the trained
#: demo model's log-variances stay below +1 and the first epoch of a stable run below +2
#: (bench/bench_training_stability.py prints the largest seen). Below the bound the thesis's
#: sampling and loss are unchanged, bit for bit.
LOG_VARIANCE_BOUND = 30.0


def bound_log_variance(log_variance, ops=np):
    """min(log_variance, LOG_VARIANCE_BOUND), computed with `ops` (numpy or keras.ops)."""
    return ops.minimum(log_variance, LOG_VARIANCE_BOUND)


def reparameterize(mu, log_variance, epsilon, ops=np):
    """z = mu + exp(min(log_variance, LOG_VARIANCE_BOUND) / 2) * epsilon, computed with `ops`
    (numpy or keras.ops: anything with `exp` and `minimum`)."""
    return mu + ops.exp(bound_log_variance(log_variance, ops) / 2) * epsilon


def sample_latent(mu, log_variance, seed=None) -> np.ndarray:
    """z = mu + exp(min(log_variance, LOG_VARIANCE_BOUND) / 2) * eps, eps drawn by
    numpy.random.default_rng(seed): the one numpy sampling of both runtimes (float32)."""
    mu = np.asarray(mu, dtype=np.float32)
    epsilon = np.random.default_rng(seed).standard_normal(mu.shape).astype(np.float32)
    return reparameterize(mu, np.asarray(log_variance, dtype=np.float32), epsilon).astype(np.float32)
