"""Prompts from masks: one per component, boxes with margins, interior points."""

import numpy as np
import pytest

from aslseg.sam.prompts import (
    PromptShape, box_of, components, interior_point, interior_points, make_prompt, slice_prompts,
)


def three_lesions() -> np.ndarray:
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[5:15, 10:20] = 1  # 100 px
    mask[40:46, 40:52] = 1  # 72 px
    mask[30:32, 5:7] = 1  # 4 px
    return mask


def test_three_components_give_three_boxes_largest_first():
    prompts = slice_prompts(three_lesions(), "box", PromptShape(box_margin=2, min_component_pixels=1, multipoint_n=3))
    assert [p["area"] for p in prompts] == [100, 72, 4]
    assert prompts[0]["box"] == [8, 3, 21, 16]  # x0, y0, x1, y1 with a 2-pixel margin
    assert prompts[1]["box"] == [38, 38, 53, 47]
    assert all(p["points"] is None for p in prompts)


def test_small_components_are_dropped_and_an_empty_mask_gives_no_prompt():
    assert len(components(three_lesions(), min_pixels=5)) == 2
    assert slice_prompts(np.zeros((32, 32)), "box+point", PromptShape(2, 1, 3)) == []


def test_diagonal_neighbours_are_one_component():
    mask = np.zeros((8, 8), dtype=np.uint8)
    mask[2, 2] = mask[3, 3] = 1
    assert len(components(mask, min_pixels=1)) == 1


def test_boxes_are_clipped_to_the_image():
    mask = np.zeros((20, 30), dtype=bool)
    mask[0:3, 27:30] = True
    assert box_of(mask, margin=5, shape=mask.shape).tolist() == [22, 0, 29, 7]


def test_the_interior_point_lies_inside_a_ring():
    yy, xx = np.mgrid[:64, :64]
    ring = ((yy - 32) ** 2 + (xx - 32) ** 2 < 20**2) & ((yy - 32) ** 2 + (xx - 32) ** 2 >= 12**2)
    x, y = interior_point(ring).astype(int)
    assert ring[y, x]
    centroid_y, centroid_x = np.argwhere(ring).mean(axis=0).round().astype(int)
    assert not ring[centroid_y, centroid_x]  # the centroid would miss it


def test_the_interior_point_of_a_square_is_its_centre():
    mask = np.zeros((32, 32), dtype=bool)
    mask[10:21, 4:15] = True
    assert interior_point(mask).tolist() == [9, 15]


def test_multipoints_are_inside_spread_and_of_fixed_count():
    mask = np.zeros((40, 80), dtype=bool)
    mask[10:30, 5:75] = True
    points = interior_points(mask, 3)
    assert points.shape == (3, 2) and all(mask[int(y), int(x)] for x, y in points)
    assert np.ptp(points[:, 0]) > 30  # spread along the long axis, not stacked in the middle
    tiny = np.zeros((8, 8), dtype=bool)
    tiny[4, 4] = True
    assert interior_points(tiny, 3).tolist() == [[4, 4]] * 3


@pytest.mark.parametrize("prompt_type, has_box, n_points", [("box", True, 0), ("point", False, 1),
                                                            ("multipoint", False, 4), ("box+point", True, 1)])
def test_each_prompt_type(prompt_type, has_box, n_points):
    mask = np.zeros((32, 32), dtype=bool)
    mask[8:20, 8:20] = True
    prompt = make_prompt(mask, prompt_type, margin=1, multipoint_n=4)
    assert (prompt["box"] is not None) == has_box
    assert len(prompt["points"] or []) == n_points and (prompt["point_labels"] or []) == [1] * n_points


def test_unknown_prompt_type_is_an_error():
    with pytest.raises(ValueError, match="unknown prompt type"):
        make_prompt(np.ones((4, 4), dtype=bool), "scribble", margin=1, multipoint_n=2)
