"""Volume-level splits: test, val, labeled, unlabeled.

- test and val are drawn once with `data.split.seed`, so every run seed and every experiment is scored on the
  same volumes. The test set holds a fixed share (`test_tumor_free`) of tumor-free volumes, as far as they
  exist, so that false-positive volume on healthy livers is measured; val holds volumes with at least
  `labeled_min_tumor_ml` of tumor only (it picks checkpoints by Dice, which a one-voxel lesion makes noise).
- the labeled draw uses (`data.split.seed`, run seed): each run seed redraws which volumes are labeled, since
  which volumes are labeled can matter more than the method. It is stratified: the labeled volumes are drawn
  from volumes with at least `labeled_min_tumor_ml` of tumor (a 10% set without lesions measures nothing),
  with volumes below that admitted only in proportion to their share of the training pool, rounded down.
  Draws are nested: for one seed, a larger labeled fraction keeps the smaller one's volumes.

Splits read one number per volume, its tumor volume (from the prepared case stats): volume-level
stratification, not voxel labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aslseg.data.lits import DataError


@dataclass(frozen=True)
class VolumeStats:
    case_id: int
    tumor_ml: float


def _draw(rng: np.random.Generator, pool: list[int], n: int) -> list[int]:
    return sorted(int(c) for c in rng.permutation(np.array(pool, dtype=int))[:n]) if n else []


def _count(fraction: float, n: int, minimum: int) -> int:
    return max(minimum, int(round(fraction * n)))


def holdout_volumes(
    volumes: list[VolumeStats],
    test: float,
    test_tumor_free: float,
    val: float,
    labeled_min_tumor_ml: float,
    split_seed: int,
) -> dict:
    """Return {"test", "val", "train"} (sorted case ids) and their counts: the part of a split that is the same
    for every run seed and labeled fraction (what Stage II embeds is "train" + "val")."""
    ids = sorted(v.case_id for v in volumes)
    if len(set(ids)) != len(ids):
        raise DataError("duplicate case ids in the split input")
    tumor_ml = {v.case_id: v.tumor_ml for v in volumes}
    positive = [c for c in ids if tumor_ml[c] > 0]
    tumor_free = [c for c in ids if tumor_ml[c] == 0]
    rich = [c for c in positive if tumor_ml[c] >= labeled_min_tumor_ml]

    rng = np.random.default_rng([split_seed])
    n_test = _count(test, len(ids), 1)
    n_test_free = min(len(tumor_free), int(round(test_tumor_free * n_test)))
    n_test_positive = n_test - n_test_free
    n_val = _count(val, len(ids), 1) if val > 0 else 0
    if n_test_positive > len(positive):
        raise DataError(
            f"{len(positive)} of {len(ids)} volumes contain tumor: too few for {n_test_positive} test volumes with tumor"
        )
    test_ids = _draw(rng, positive, n_test_positive) + _draw(rng, tumor_free, n_test_free)
    rich_left = [c for c in rich if c not in test_ids]
    if n_val + 1 > len(rich_left):
        raise DataError(
            f"{len(rich_left)} volumes outside the test set hold >= {labeled_min_tumor_ml} mL of tumor: too few "
            f"for {n_val} val volumes and at least one labeled training volume"
        )
    val_ids = _draw(rng, rich_left, n_val)
    train = [c for c in ids if c not in test_ids and c not in val_ids]
    return {
        "test": sorted(test_ids),
        "val": val_ids,
        "train": train,
        "counts": {
            "volumes": len(ids),
            "with_tumor": len(positive),
            "test": n_test,
            "test_tumor_free": n_test_free,
            "val": n_val,
            "train": len(train),
        },
    }


def split_volumes(
    volumes: list[VolumeStats],
    test: float,
    test_tumor_free: float,
    val: float,
    labeled: float,
    labeled_min_tumor_ml: float,
    split_seed: int,
    run_seed: int,
) -> dict:
    """Return {"test", "val", "labeled", "unlabeled"} (sorted case ids) plus the counts that explain them."""
    holdout = holdout_volumes(volumes, test, test_tumor_free, val, labeled_min_tumor_ml, split_seed)
    train = holdout["train"]
    tumor_ml = {v.case_id: v.tumor_ml for v in volumes}
    labeled_ids = draw_labeled(train, tumor_ml, labeled, labeled_min_tumor_ml, split_seed, run_seed)
    return {
        "test": holdout["test"],
        "val": holdout["val"],
        "labeled": labeled_ids,
        "unlabeled": [c for c in train if c not in labeled_ids],
        "counts": {**holdout["counts"], "labeled": len(labeled_ids)},
    }


def draw_labeled(
    train: list[int],
    tumor_ml: dict[int, float],
    fraction: float,
    min_tumor_ml: float,
    split_seed: int,
    run_seed: int,
) -> list[int]:
    """The labeled training volumes for `fraction`, stratified on tumor burden and nested across fractions."""
    rich = [c for c in train if tumor_ml[c] >= min_tumor_ml]
    poor = [c for c in train if tumor_ml[c] < min_tumor_ml]
    if not rich:
        raise DataError(f"no training volume holds at least {min_tumor_ml} mL of tumor to be labeled")
    n_labeled = _count(fraction, len(train), 1)
    n_poor = min(len(poor), int(np.floor(n_labeled * len(poor) / len(train))))
    n_rich = n_labeled - n_poor
    if n_rich > len(rich):  # more labeled volumes than tumor-rich ones: take all of them and fill up
        n_rich, n_poor = len(rich), n_labeled - len(rich)
    rng = np.random.default_rng([split_seed, run_seed, 1])
    # One fixed order per stratum: taking its first n makes draws for growing fractions nested.
    rich_order = rng.permutation(np.array(rich, dtype=int))
    poor_order = rng.permutation(np.array(poor, dtype=int))
    return sorted(int(c) for c in np.concatenate([rich_order[:n_rich], poor_order[:n_poor]]))
