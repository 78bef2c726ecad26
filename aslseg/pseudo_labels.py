"""The pseudo-label shard: the one file format of Pseudo Labels 1, 2 and 3 (and of what the score and the next
round read from them).

One compressed `.npz` per shard of cases. For every case of the shard it holds `mask_<case>`, the pseudo
label (uint8 (S, H, W), 1 = tumor, on the case's prepared slices), and, where the stage has one,
`probability_<case>`, the tumor probability it came from (float16 (S, H, W)). Written atomically.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from aslseg.io import write_npz

MASK = "mask_"
PROBABILITY = "probability_"


def write_shard(path: str | Path, masks: Mapping[int, np.ndarray],
                probabilities: Mapping[int, np.ndarray] | None = None) -> None:
    """Masks (stored as uint8) and, optionally, probabilities (float16) of the same cases."""
    probabilities = probabilities or {}
    if set(probabilities) - set(masks):
        raise ValueError(f"probabilities for cases without a mask: {sorted(set(probabilities) - set(masks))}")
    arrays = {}
    for case in sorted(masks):
        if case in probabilities:
            arrays[f"{PROBABILITY}{case}"] = np.asarray(probabilities[case]).astype(np.float16)
        arrays[f"{MASK}{case}"] = np.asarray(masks[case]).astype(np.uint8)
    write_npz(path, **arrays)


def _read(paths: Iterable[str | Path], prefix: str) -> dict[int, np.ndarray]:
    arrays = {}
    for path in paths:
        with np.load(path) as shard:
            arrays.update({int(key[len(prefix):]): shard[key] for key in shard.files if key.startswith(prefix)})
    return arrays


def read_masks(paths: Iterable[str | Path]) -> dict[int, np.ndarray]:
    """{case: mask} over the shards."""
    return _read(paths, MASK)


def read_probabilities(paths: Iterable[str | Path]) -> dict[int, np.ndarray]:
    """{case: probability} over the shards (cases whose stage stored one)."""
    return _read(paths, PROBABILITY)


def shard_cases(path: str | Path) -> list[int]:
    """The cases a shard holds a pseudo label for, in order."""
    with np.load(path) as shard:
        return sorted(int(key[len(MASK):]) for key in shard.files if key.startswith(MASK))
