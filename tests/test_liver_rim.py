"""Components of Pseudo Label 1 in the liver's partial-volume rim get no prompt (aslseg/sam/liver_rim.py)."""

import numpy as np
import pytest

from aslseg.sam.liver_rim import RIM_MM, off_rim, rim

PIXEL_MM = 1.8  # the default phantom's prepared pixels: a rim two pixels deep


def square_liver() -> np.ndarray:
    liver = np.zeros((40, 40), dtype=bool)
    liver[5:35, 5:35] = True
    return liver


def test_the_rim_is_the_livers_outer_band_in_mm():
    band = rim(square_liver(), PIXEL_MM)
    assert RIM_MM == 4.0
    assert band[5, 20] and band[6, 20] and not band[7, 20]  # 1.8 and 3.6 mm deep in, 5.4 mm out
    assert not band[4, 20]  # outside the liver
    assert band.sum() == 30 * 30 - 26 * 26
    assert rim(square_liver(), 0.9)[8, 20] and not rim(square_liver(), 0.9)[9, 20]  # finer pixels: more of them
    coarse = rim(square_liver(), 8.0)  # pixels coarser than the rim: the outermost one still is
    assert coarse[5, 20] and not coarse[6, 20]


def test_a_crescent_along_the_edge_is_dropped_and_lesions_deeper_are_kept():
    liver = square_liver()
    mask = np.zeros_like(liver)
    mask[5:7, 10:20] = True  # all in the rim: a partial-volume artifact
    mask[6:14, 25:31] = True  # at the surface, but 7 of its 8 rows lie deeper
    mask[18:22, 18:22] = True  # deep inside
    kept = off_rim(mask, liver, PIXEL_MM, 0.5)
    assert not kept[5:7, 10:20].any()
    assert kept[6:14, 25:31].all() and kept[18:22, 18:22].all()
    assert kept.sum() == mask.sum() - 20


def test_the_share_is_a_bound_and_null_keeps_everything():
    liver = square_liver()
    mask = np.zeros_like(liver)
    mask[5:9, 10:14] = True  # half its pixels in the rim
    assert off_rim(mask, liver, PIXEL_MM, 0.5).sum() == 16
    assert off_rim(mask, liver, PIXEL_MM, 0.49).sum() == 0
    assert (off_rim(mask, liver, PIXEL_MM, None) == mask).all()
    assert not off_rim(np.zeros_like(liver), liver, PIXEL_MM, 0.5).any()


def test_diagonal_neighbours_are_judged_as_one_component():
    liver = square_liver()
    mask = np.zeros_like(liver)
    mask[5, 10] = True  # in the rim
    mask[6, 11] = mask[7, 12] = mask[8, 13] = True  # one more in the rim, two deeper: half in the rim
    assert off_rim(mask, liver, PIXEL_MM, 0.5).sum() == 4


def test_a_liver_mask_of_another_shape_is_an_error():
    with pytest.raises(ValueError, match="liver mask of shape"):
        off_rim(np.ones((4, 4)), np.ones((5, 5)), PIXEL_MM, 0.5)
