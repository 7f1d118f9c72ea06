"""The stratified sample the evaluation's quadratic metrics are computed on."""

from __future__ import annotations

import numpy as np
import pytest

from semantic_timbre.evaluation import sampling


def labels(counts: dict) -> np.ndarray:
    return np.array([label for label, count in counts.items() for _ in range(count)])


def test_each_label_keeps_its_share_and_the_sample_is_seeded():
    items = labels({"Crunch|E4": 600, "Dark|E4": 300, "Fuzz|A4": 100})
    sample = sampling.stratified_sample(items, 100, seed=3)
    assert len(sample) == 100 and len(set(sample)) == 100 and np.all(np.diff(sample) > 0)
    names, counts = np.unique(items[sample], return_counts=True)
    assert dict(zip(names, counts)) == {"Crunch|E4": 60, "Dark|E4": 30, "Fuzz|A4": 10}
    np.testing.assert_array_equal(sample, sampling.stratified_sample(items, 100, seed=3))
    assert not np.array_equal(sample, sampling.stratified_sample(items, 100, seed=4))


def test_rounding_keeps_the_size_and_every_label_while_there_is_room():
    items = labels({"a": 50, "b": 30, "c": 20, "d": 1})
    for size in (4, 7, 10, 55, 100):
        sample = sampling.stratified_sample(items, size, seed=0)
        assert len(sample) == size and set(items[sample]) == {"a", "b", "c", "d"}
    assert len(sampling.stratified_sample(items, 3, seed=0)) == 3
    np.testing.assert_array_equal(sampling.stratified_sample(items, 101, seed=0), np.arange(101))
    np.testing.assert_array_equal(sampling.stratified_sample(items, None, seed=0), np.arange(101))
    with pytest.raises(ValueError):
        sampling.stratified_sample(items, 0)


def test_the_report_says_how_the_notes_were_chosen():
    assert sampling.describe(np.arange(10), 10, 5000, 0, "descriptor")["sampled"] is False
    described = sampling.describe(np.arange(10), 40, 10, 2, "descriptor and pitch")
    assert described["sampled"] and described["notes"] == 10 and described["of_notes"] == 40
    assert "stratified sample of 10 of the 40 notes" in described["sampling"] and "seed 2" in described["sampling"]
