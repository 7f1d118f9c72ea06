"""A stratified sample of notes for the metrics whose cost is quadratic in the notes (silhouette
scores: every pairwise distance) or high per note (the classifiers' fits), so that the evaluation
of the full release stays about linear.

The sample depends only on the notes' labels, the size and the seed, never on a model's codes, so
every model evaluated on the same notes is measured on the same sample.
"""

from __future__ import annotations

import numpy as np

#: Notes those metrics are computed on when the data holds more (evaluate --sample-size).
DEFAULT_SAMPLE_SIZE = 5000


def stratified_sample(labels, size: int | None, seed: int = 0) -> np.ndarray:
    """Indices (sorted) of a sample of `size` items with each label's share of the whole.

    Each label gets its proportional share of `size`, rounded by largest remainder (at least one
    item for a label present, while the size allows), drawn without replacement with `seed`.

    Parameters
    ----------
    labels : sequence of hashable, one per item (e.g. 'Crunch|E4': descriptor and pitch)
    size : int or None
        None, or a size not below the number of items: every index.

    Returns
    -------
    indices : np.ndarray of int, sorted
    """
    labels = np.asarray(labels)
    if size is None or size >= len(labels):
        return np.arange(len(labels))
    if size < 1:
        raise ValueError(f"the sample size must be at least 1, got {size}")
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    quotas = counts * size / len(labels)
    shares = np.floor(quotas).astype(int)
    if size >= len(classes):
        shares = np.maximum(shares, 1)  # no label left out when there is room for each
    remainders = np.where(shares < counts, quotas - shares, -np.inf)
    for index in np.argsort(-remainders, kind="stable")[:max(0, size - shares.sum())]:
        shares[index] += 1
    while shares.sum() > size:  # the minimum of one each overshot: trim the largest shares
        shares[np.argmax(shares)] -= 1
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(inverse == label), share, replace=False)
              for label, share in enumerate(shares) if share]
    return np.sort(np.concatenate(chosen))


def describe(sample: np.ndarray, total: int, size: int | None, seed: int, strata: str) -> dict:
    """How a quadratic metric's notes were chosen, for the report."""
    if len(sample) == total:
        return {"sampled": False, "notes": int(total),
                "sampling": f"every note (at most {size} are sampled)" if size else "every note"}
    return {"sampled": True, "notes": int(len(sample)), "of_notes": int(total), "sample_seed": seed,
            "sampling": f"a stratified sample of {len(sample)} of the {total} notes (each {strata}'s share kept, "
                        f"seed {seed}), the same for every model evaluated on these notes"}
