"""Synthetic pseudo-labels: each corruption does what its name says on a known mask, corrupt() applies what
its settings ask, synthesize() is reproducible and independent of batching."""

import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from aslseg.adapt.corruptions import (
    CORRUPTIONS,
    CorruptionSettings,
    add_false_blobs,
    corrupt,
    darkness,
    dilate,
    drop_lesions,
    empty,
    erode,
    jag_boundary,
    merge_nearby,
    shift,
    synthesize,
)

EIGHT = np.ones((3, 3), dtype=bool)


def lesions() -> np.ndarray:
    """Two squares and a disk on a 64² slice."""
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[10:20, 10:20] = 1
    mask[12:18, 40:46] = 1
    y, x = np.mgrid[:64, :64]
    mask[(y - 42) ** 2 + (x - 30) ** 2 <= 36] = 1
    return mask


def big_liver() -> np.ndarray:
    liver = np.zeros((64, 64), dtype=bool)
    liver[4:60, 4:60] = True
    return liver


def labelled(mask):
    return ndimage.label(np.asarray(mask) > 0, structure=EIGHT)


def bbox(mask):
    rows, cols = np.nonzero(mask)
    return np.array([rows.min(), cols.min(), rows.max(), cols.max()])


def settings(**probabilities) -> CorruptionSettings:
    """All probabilities 0 unless given; strengths moderate."""
    values = {f"p_{name}": 0.0 for name in CORRUPTIONS} | {
        "drop_per_lesion": 0.5, "merge_gap": 3, "erode_max_radius": 2, "dilate_max_radius": 2,
        "jag_amplitude": 1.5, "jag_sigma": 3.0, "shift_max": 3, "false_blob_max_count": 3,
        "false_blob_diameter": (3.0, 12.0), "false_blob_margin": 0, "false_blob_dark_share": 0.0,
    }
    return CorruptionSettings(**(values | {f"p_{name}": p for name, p in probabilities.items()}))


def rng(seed=0):
    return np.random.default_rng(seed)


def test_drop_removes_whole_lesions_only():
    mask = lesions()
    labels, count = labelled(mask)
    kept_counts = set()
    for seed in range(12):
        out = drop_lesions(mask, big_liver(), rng(seed), p=0.5)
        assert out.dtype == np.uint8 and not (out & ~mask).any()  # nothing added
        kept = [number for number in range(1, count + 1) if out[labels == number].all()]
        assert all(not out[labels == number].any() for number in range(1, count + 1) if number not in kept)
        kept_counts.add(len(kept))
    assert len(kept_counts) > 1  # some lesions dropped on some seeds, not always the same number
    assert not drop_lesions(mask, big_liver(), rng(), p=1.0).any()
    assert np.array_equal(drop_lesions(mask, big_liver(), rng(), p=0.0), mask)


def test_false_blobs_lie_in_the_liver_off_the_tumor_and_within_the_size_range():
    mask, liver = lesions(), big_liver()
    for seed in range(8):
        out = add_false_blobs(mask, liver, rng(seed), max_count=3, diameter=(4.0, 10.0))
        assert np.array_equal(out & mask, mask)  # the tumor kept
        blobs = out.astype(bool) & ~mask.astype(bool)
        assert not (blobs & ~liver).any()
        labels, count = labelled(out)
        assert count - labelled(mask)[1] in (1, 2, 3)  # separate lesions, not bulges of the tumor
        blob_labels, blob_count = labelled(blobs)
        assert blob_count == count - labelled(mask)[1]
        for number in range(1, blob_count + 1):
            points = np.argwhere(blob_labels == number)
            longest = np.linalg.norm(points[:, None] - points[None], axis=-1).max() + 1  # in pixels
            assert 4.0 - 2.5 <= longest <= 10.0 + 1


def test_false_blobs_on_a_tumor_free_slice_and_none_where_nothing_fits():
    blank = np.zeros((64, 64), dtype=np.uint8)
    assert add_false_blobs(blank, big_liver(), rng(), max_count=2, diameter=(3.0, 6.0)).any()
    sliver = np.zeros((64, 64), dtype=bool)
    sliver[30, 5:60] = True
    assert not add_false_blobs(blank, sliver, rng(), max_count=2, diameter=(8.0, 10.0)).any()
    whole = np.ones((16, 16), dtype=bool)  # blobs may reach the image edge, never past it
    for seed in range(10):
        assert add_false_blobs(blank[:16, :16], whole, rng(seed), max_count=3, diameter=(6.0, 12.0)).any()


def test_false_blobs_reach_past_the_liver_edge_by_the_margin_only():
    liver = np.zeros((64, 64), dtype=bool)
    liver[24:40, 24:40] = True
    blank = np.zeros((64, 64), dtype=np.uint8)
    grown = ndimage.binary_dilation(liver, structure=np.ones((9, 9), dtype=bool))  # contains the 4-px disk grow
    outside = 0
    for seed in range(20):
        out = add_false_blobs(blank, liver, rng(seed), max_count=3, diameter=(4.0, 8.0), margin=4).astype(bool)
        assert not (out & ~grown).any()
        outside += int((out & ~liver).any())
        assert not (add_false_blobs(blank, liver, rng(seed), max_count=3, diameter=(4.0, 8.0)).astype(bool) & ~liver).any()
    assert outside > 5  # the margin is used, not just allowed


def dark_spot_slice():
    """A flat liver (0.5) with one dark spot (0.35, radius 3) at (45, 45)."""
    y, x = np.mgrid[:64, :64]
    image = np.full((64, 64), 0.5, dtype=np.float32)
    image[(y - 45) ** 2 + (x - 45) ** 2 <= 9] = 0.35
    return image


def test_darkness_marks_dark_spots_in_the_liver_and_is_capped():
    image, liver = dark_spot_slice(), big_liver()
    dark = darkness(image, liver)
    assert dark.shape == image.shape and dark.dtype == np.float32 and dark.min() >= 0.0
    assert np.unravel_index(dark.argmax(), dark.shape) == (45, 45)
    assert dark[20, 20] < 0.01 < dark[45, 45] <= 0.2
    image[:, :2] = -1.0  # air at the image edge, beside the liver: capped, not dominating
    assert darkness(image, liver).max() <= 0.2


def test_false_blobs_go_to_dark_spots_when_lured_and_anywhere_otherwise():
    image, liver, blank = dark_spot_slice(), big_liver(), np.zeros((64, 64), dtype=np.uint8)
    dark = darkness(image, liver)
    on_spot = lambda out: bool(out[42:49, 42:49].any())  # noqa: E731  (touches the spot or its rim)
    lured = [on_spot(add_false_blobs(blank, liver, rng(seed), max_count=1, diameter=(4.0, 6.0), dark_share=1.0, dark=dark))
             for seed in range(20)]
    uniform = [on_spot(add_false_blobs(blank, liver, rng(seed), max_count=1, diameter=(4.0, 6.0), dark=dark))
               for seed in range(20)]
    assert sum(lured) >= 18 and sum(uniform) <= 3


def test_synthesize_with_images_lures_blobs_and_stays_reproducible():
    tumors = np.zeros((2, 64, 64), dtype=np.uint8)
    livers, images = np.stack([big_liver()] * 2), np.stack([dark_spot_slice()] * 2)
    lured = dataclasses.replace(settings(add_false_blobs=1.0), false_blob_max_count=1, false_blob_diameter=(4.0, 6.0),
                                false_blob_dark_share=1.0)
    masks, _, _ = synthesize(tumors, livers, lured, copies=5, seed=3, images=images)
    assert masks[:, 42:49, 42:49].any(axis=(1, 2)).mean() >= 0.8
    assert np.array_equal(masks, synthesize(tumors, livers, lured, copies=5, seed=3, images=images)[0])
    with pytest.raises(ValueError, match="images"):
        synthesize(tumors, livers, lured, copies=1, seed=3, images=images[:1])


def square(side=20) -> np.ndarray:
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[20 : 20 + side, 20 : 20 + side] = 1
    return mask


def test_erode_shrinks_and_dilate_grows_by_a_radius_in_range():
    mask, seen = square(), set()
    for seed in range(6):
        shrunk, grown = erode(mask, big_liver(), rng(seed), 3), dilate(mask, big_liver(), rng(seed), 3)
        assert not (shrunk & ~mask).any() and np.array_equal(grown & mask, mask)
        inward, outward = bbox(shrunk) - bbox(mask), bbox(grown) - bbox(mask)
        k = inward[0]  # a disk erodes a square into a square `radius` smaller on each side
        assert 1 <= k <= 3 and list(inward) == [k, k, -k, -k]
        k = outward[2]  # and dilates it into a rounded square `radius` larger
        assert 1 <= k <= 3 and list(outward) == [-k, -k, k, k]
        seen.add(k)
    assert len(seen) > 1
    tiny = np.zeros((64, 64), dtype=np.uint8)
    tiny[30:32, 30:32] = 1
    assert not erode(tiny, big_liver(), rng(), 1).any()  # small lesions can vanish


def test_shift_moves_the_centroid_by_a_whole_offset_in_range():
    mask, offsets = lesions(), set()
    for seed in range(8):
        out = shift(mask, big_liver(), rng(seed), max_pixels=3)
        offset = np.array(ndimage.center_of_mass(out)) - np.array(ndimage.center_of_mass(mask))
        whole = np.round(offset).astype(int)
        assert np.allclose(offset, whole) and np.abs(whole).max() <= 3
        assert np.array_equal(out, np.roll(mask, tuple(whole), axis=(0, 1)))  # lesions are far from the edge
        offsets.add(tuple(whole))
    assert len(offsets) > 1
    edge = np.zeros((16, 16), dtype=np.uint8)
    edge[:, :2] = 1
    moved = [shift(edge, None, rng(seed), 3) for seed in range(8)]
    assert all(m.sum() <= edge.sum() and m.shape == edge.shape for m in moved)
    assert any(m.sum() < edge.sum() for m in moved)  # what leaves the image is lost, not wrapped


def two_squares(gap: int) -> np.ndarray:
    mask = np.zeros((40, 80), dtype=np.uint8)
    mask[10:20, 10:20] = 1
    mask[10:20, 20 + gap : 30 + gap] = 1
    return mask


def test_merge_joins_close_lesions_through_the_gap_only():
    close = two_squares(2)
    out = merge_nearby(close, None, rng(), gap=3)
    assert labelled(out)[1] == 1 and np.array_equal(out & close, close)
    added = np.argwhere(out & ~close)
    assert added[:, 1].min() == 20 and added[:, 1].max() == 21 and 9 <= added[:, 0].min() <= added[:, 0].max() <= 20
    assert labelled(merge_nearby(two_squares(3), None, rng(), gap=3))[1] == 1
    assert labelled(merge_nearby(two_squares(4), None, rng(), gap=3))[1] == 2
    far = two_squares(20)
    assert np.array_equal(merge_nearby(far, None, rng(), gap=3), far)
    y, x = np.mgrid[:64, :64]
    disks = (((y - 32) ** 2 + (x - 20) ** 2 <= 64) | ((y - 32) ** 2 + (x - 40) ** 2 <= 64)).astype(np.uint8)
    assert labelled(merge_nearby(disks, None, rng(), gap=3))[1] == 1  # round lesions too, not only facing edges


def test_merge_leaves_a_single_lesions_notch_open():
    notched = np.zeros((40, 40), dtype=np.uint8)
    notched[10:30, 10:30] = 1
    notched[10:25, 19:21] = 0  # a U with a 2-px slot: a plain closing would fill it
    assert np.array_equal(merge_nearby(notched, None, rng(), gap=4), notched)


def test_jag_keeps_area_roughly_and_changes_the_boundary():
    y, x = np.mgrid[:64, :64]
    disk = ((y - 32) ** 2 + (x - 32) ** 2 <= 100).astype(np.uint8)
    for seed in range(3):
        out = jag_boundary(disk, big_liver(), rng(seed), amplitude=1.5, sigma=3.0)
        assert out.dtype == np.uint8 and set(np.unique(out)) <= {0, 1}
        assert 0.6 <= out.sum() / disk.sum() <= 1.4
        assert not np.array_equal(out, disk)
    assert np.array_equal(jag_boundary(disk, big_liver(), rng(), amplitude=0.0, sigma=3.0), disk)


def test_empty_is_empty():
    out = empty(lesions(), big_liver(), rng())
    assert out.shape == (64, 64) and out.dtype == np.uint8 and not out.any()


def test_corrupt_with_nothing_to_apply_returns_the_input():
    mask, applied = corrupt(lesions().astype(bool), big_liver(), settings(), rng())
    assert applied == [] and mask.dtype == np.uint8 and np.array_equal(mask, lesions())


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_corrupt_applies_exactly_the_one_that_is_certain(name):
    for seed in range(3):
        mask, applied = corrupt(lesions(), big_liver(), settings(**{name: 1.0}), rng(seed))
        assert applied == [name]
        assert mask.dtype == np.uint8 and mask.shape == (64, 64) and set(np.unique(mask)) <= {0, 1}
    if name in ("erode", "dilate", "jag_boundary", "add_false_blobs", "empty"):  # the others may be no-ops here
        assert not np.array_equal(mask, lesions())


def test_corrupt_never_erodes_and_dilates_together_and_empty_wipes_all():
    both = settings(erode=0.5, dilate=0.5)
    picks = [corrupt(lesions(), big_liver(), both, rng(seed))[1] for seed in range(20)]
    assert all(p in (["erode"], ["dilate"]) for p in picks) and len({tuple(p) for p in picks}) == 2
    everything = settings(**{name: 1.0 for name in CORRUPTIONS if name != "dilate"})
    mask, applied = corrupt(lesions(), big_liver(), everything, rng())
    assert applied == ["empty"] and not mask.any()


def stack():
    tumors = np.stack([lesions(), np.zeros((64, 64), np.uint8), square()])
    return tumors, np.stack([big_liver()] * 3)


def test_synthesize_is_reproducible_and_seeded():
    tumors, livers = stack()
    noisy = settings(drop_lesions=0.5, jag_boundary=0.8, add_false_blobs=0.8, shift=0.5)
    masks, source, applied = synthesize(tumors, livers, noisy, copies=2, seed=5)
    assert masks.shape == (6, 64, 64) and masks.dtype == np.uint8 and list(source) == [0, 0, 1, 1, 2, 2]
    assert len(applied) == 6
    again = synthesize(tumors, livers, noisy, copies=2, seed=5)
    assert np.array_equal(masks, again[0]) and applied == again[2]
    assert not np.array_equal(masks, synthesize(tumors, livers, noisy, copies=2, seed=6)[0])


def test_a_copy_does_not_depend_on_the_batch_or_the_number_of_copies():
    tumors, livers = stack()
    noisy = settings(jag_boundary=0.8, add_false_blobs=0.8, erode=0.3, dilate=0.3)
    batch, _, applied = synthesize(tumors, livers, noisy, copies=3, seed=1)
    alone, source, alone_applied = synthesize(tumors[2:], livers[2:], noisy, copies=2, seed=1, slice_ids=[2])
    assert list(source) == [0, 0]
    assert np.array_equal(alone, batch[6:8]) and alone_applied == applied[6:8]


def full_section() -> dict:
    return {f.name: getattr(settings(), f.name) for f in dataclasses.fields(CorruptionSettings)}


def test_from_config_reads_a_full_section_and_rejects_unknown_or_missing_keys():
    section = full_section() | {"false_blob_diameter": [3, 12]}
    assert CorruptionSettings.from_config(section) == settings()
    with pytest.raises(KeyError, match="unknown"):
        CorruptionSettings.from_config(section | {"p_drop_lesion": 0.3})
    with pytest.raises(KeyError, match="missing"):
        CorruptionSettings.from_config({k: v for k, v in section.items() if k != "p_empty"})
    with pytest.raises(ValueError):
        CorruptionSettings.from_config(section | {"p_erode": 0.7, "p_dilate": 0.7})
