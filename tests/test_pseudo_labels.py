"""The pseudo-label shard format (aslseg/pseudo_labels.py)."""

from __future__ import annotations

import numpy as np
import pytest

from aslseg.pseudo_labels import read_masks, read_probabilities, shard_cases, write_shard


def test_a_shard_round_trips_masks_and_probabilities_with_their_dtypes(tmp_path):
    rng = np.random.default_rng(0)
    masks = {12: rng.random((3, 8, 8)) > 0.5, 3: np.zeros((2, 8, 8), bool)}
    probabilities = {12: rng.random((3, 8, 8)).astype(np.float32)}
    write_shard(tmp_path / "a.npz", masks, probabilities)
    write_shard(tmp_path / "b.npz", {7: np.ones((1, 8, 8), np.uint8)})
    read = read_masks([tmp_path / "a.npz", tmp_path / "b.npz"])
    assert sorted(read) == [3, 7, 12] and all(mask.dtype == np.uint8 for mask in read.values())
    assert np.array_equal(read[12], masks[12])
    p = read_probabilities([tmp_path / "a.npz", tmp_path / "b.npz"])
    assert list(p) == [12] and p[12].dtype == np.float16
    assert np.array_equal(p[12], probabilities[12].astype(np.float16))
    assert shard_cases(tmp_path / "a.npz") == [3, 12]


def test_a_probability_without_its_mask_is_refused_and_nothing_is_written(tmp_path):
    with pytest.raises(ValueError, match=r"\[5\]"):
        write_shard(tmp_path / "a.npz", {1: np.zeros((1, 2, 2))}, {5: np.zeros((1, 2, 2))})
    assert not (tmp_path / "a.npz").exists()
