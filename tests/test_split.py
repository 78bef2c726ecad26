import pytest

from aslseg.data.lits import DataError
from aslseg.data.split import VolumeStats, holdout_volumes, split_volumes


def volumes(n=30, tumor_free=(3, 11, 19, 27), small=(5,)):
    """Case ids 0..n-1: a few tumor-free, a few with a speck of tumor, the rest with real lesions."""
    return [
        VolumeStats(c, 0.0 if c in tumor_free else 0.2 if c in small else 5.0 + c) for c in range(n)
    ]


DEFAULTS = dict(test=0.3, test_tumor_free=0.25, val=0.1, labeled=0.1, labeled_min_tumor_ml=1.0, split_seed=0)


def split(run_seed=0, vols=None, **overrides):
    return split_volumes(vols or volumes(), **{**DEFAULTS, **overrides}, run_seed=run_seed)


def test_sets_are_disjoint_and_cover_every_volume():
    s = split()
    sets = [set(s[k]) for k in ("test", "val", "labeled", "unlabeled")]
    assert sum(len(x) for x in sets) == 30
    assert set().union(*sets) == set(range(30))


def test_proportions():
    s = split()
    assert len(s["test"]) == 9 and len(s["val"]) == 3
    assert len(s["labeled"]) == 2  # 10% of 18 training volumes, rounded
    assert s["counts"]["test_tumor_free"] == 2  # 25% of 9, rounded
    assert sum(c in (3, 11, 19, 27) for c in s["test"]) == 2


def test_val_and_labeled_volumes_contain_tumor():
    for seed in range(10):
        s = split(run_seed=seed)
        assert not set(s["val"]) & {3, 5, 11, 19, 27}
        assert not set(s["labeled"]) & {3, 5, 11, 19, 27}  # tumor-free or below labeled_min_tumor_ml


def test_test_and_val_are_fixed_across_run_seeds_but_labeled_draw_changes():
    splits = [split(run_seed=seed) for seed in range(5)]
    assert all(s["test"] == splits[0]["test"] and s["val"] == splits[0]["val"] for s in splits)
    assert len({tuple(s["labeled"]) for s in splits}) > 1
    assert split(run_seed=3) == split(run_seed=3)  # deterministic


def test_split_seed_redraws_test_set():
    assert split(split_seed=0)["test"] != split(split_seed=1)["test"]


def test_labeled_draws_are_nested_across_fractions():
    small, large = split(labeled=0.1), split(labeled=0.5)
    assert set(small["labeled"]) < set(large["labeled"])


def test_full_supervision_labels_every_training_volume():
    s = split(labeled=1.0)
    assert s["unlabeled"] == [] and len(s["labeled"]) == s["counts"]["train"]


def test_at_least_one_labeled_volume():
    assert len(split(labeled=0.01)["labeled"]) == 1


def test_too_few_tumor_volumes_is_a_clear_error():
    with pytest.raises(DataError, match="contain tumor: too few"):
        split(vols=[VolumeStats(c, 0.0 if c > 0 else 3.0) for c in range(10)])
    with pytest.raises(DataError, match="too few for 1 val volumes and at least one labeled"):
        split(vols=[VolumeStats(c, 0.0 if c > 4 else 0.5) for c in range(10)])


def test_holdout_is_the_part_of_every_split_that_seeds_share():
    volumes = [VolumeStats(c, 0.0 if c % 5 == 0 else 2.0 + c) for c in range(30)]
    cfg = dict(test=0.3, test_tumor_free=0.25, val=0.1, labeled_min_tumor_ml=1.0, split_seed=0)
    holdout = holdout_volumes(volumes, **cfg)
    for run_seed in (0, 1):
        split = split_volumes(volumes, labeled=0.1, run_seed=run_seed, **cfg)
        assert split["test"] == holdout["test"] and split["val"] == holdout["val"]
        assert sorted(split["labeled"] + split["unlabeled"]) == holdout["train"]
