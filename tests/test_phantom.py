"""The synthetic CT phantom: determinism, label conventions, geometry, and intensity statistics."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage as ndi

from aslseg.config import default_config
from aslseg.data.phantom import PhantomParams, generate_case, tumor_free_cases


@pytest.fixture(scope="module")
def defaults() -> PhantomParams:
    return PhantomParams.from_config(default_config()["data"]["phantom"])


@pytest.fixture(scope="module")
def small(defaults) -> PhantomParams:
    # small and fast: 64x64 in-plane, few thick slices, little margin
    return dataclasses.replace(defaults, n_volumes=6, matrix=64, slice_thickness_mm=(8.0, 9.0),
                               z_margin_mm=(10.0, 12.0), liver_height_mm=(130.0, 140.0))


@pytest.fixture(scope="module")
def cases(small):
    return {i: generate_case(i, small) for i in range(small.n_volumes)}


def test_from_config_round_trip_and_missing_key(defaults):
    section = default_config()["data"]["phantom"]
    assert isinstance(defaults.fov_mm, tuple) and isinstance(defaults.tumor_type_mix, tuple)
    assert len(defaults.tumor_type_mix) == 3
    broken = dict(section)
    del broken["noise_sd"]
    with pytest.raises(KeyError, match="noise_sd"):
        PhantomParams.from_config(broken)
    with pytest.raises(KeyError):
        PhantomParams.from_config({**section, "noise_sdd": [1, 2]})


def test_invalid_ranges_rejected(defaults):
    with pytest.raises(ValueError):
        dataclasses.replace(defaults, fov_mm=(400.0, 300.0))
    with pytest.raises(ValueError):
        dataclasses.replace(defaults, tumor_free_fraction=1.5)


def test_tumor_free_cases_deterministic(defaults):
    free = tumor_free_cases(defaults)
    assert free == tumor_free_cases(defaults)
    assert len(free) == round(defaults.tumor_free_fraction * defaults.n_volumes)
    assert all(0 <= i < defaults.n_volumes for i in free)
    assert free != tumor_free_cases(dataclasses.replace(defaults, seed=defaults.seed + 1))


def test_deterministic_and_case_specific(small, cases):
    again = generate_case(1, small)
    np.testing.assert_array_equal(again.hu, cases[1].hu)
    np.testing.assert_array_equal(again.segmentation, cases[1].segmentation)
    np.testing.assert_array_equal(again.affine, cases[1].affine)
    assert cases[0].hu.shape != cases[1].hu.shape or not np.array_equal(cases[0].hu, cases[1].hu)


def test_dtype_shape_affine(small, cases):
    for c in cases.values():
        assert c.hu.dtype == np.int16 and c.segmentation.dtype == np.uint8
        assert c.hu.shape == c.segmentation.shape and c.hu.shape[:2] == (small.matrix, small.matrix)
        assert c.affine.shape == (4, 4) and c.affine.dtype == np.float64
        diag = np.diag(c.affine)[:3]
        assert diag[0] < 0 and diag[1] < 0 and diag[2] > 0  # i -> left, j -> posterior, k -> superior
        assert np.allclose(c.affine[:3, :3], np.diag(diag))
        sxy = -diag[0]
        assert small.fov_mm[0] / small.matrix - 1e-9 <= sxy <= small.fov_mm[1] / small.matrix + 1e-9
        assert small.slice_thickness_mm[0] <= diag[2] <= small.slice_thickness_mm[1]
        assert c.hu.min() >= -1024 and c.hu.max() <= 3071


def test_labels_and_tumor_free(small, cases):
    free = tumor_free_cases(small)
    assert 0 < len(free) < small.n_volumes
    for i, c in cases.items():
        seg = c.segmentation
        assert set(np.unique(seg)) <= {0, 1, 2}
        assert (seg == 1).sum() > 1000  # a liver is there
        tumor = seg == 2
        if i in free:
            assert not tumor.any() and c.n_tumors == 0
        else:
            assert tumor.any() and c.n_tumors >= 1
            assert (c.hu[tumor] > -300).all()  # never in air / lung / bowel gas
            # tumor touches the liver (it lies inside, or bulges out of it)
            liver_region = ndi.binary_dilation(seg > 0, iterations=1)
            assert liver_region[tumor].all()


def test_liver_in_patient_right_and_spine_posterior(cases):
    for c in cases.values():
        liver = c.segmentation > 0
        i_centroid = np.argwhere(liver)[:, 0].mean()
        assert i_centroid < c.hu.shape[0] / 2  # patient's right = small i
        bone = c.hu > 400
        j_bone = np.argwhere(bone)[:, 1].mean()
        assert j_bone > np.argwhere(liver)[:, 1].mean()  # spine posterior of the liver centre


def test_hu_statistics_default_resolution(defaults):
    # one full-resolution case with tumors: liver mean in range, hypodense lesions darker by ~the contrast
    p = dataclasses.replace(defaults, tumor_type_mix=(1.0, 0.0, 0.0), rim_probability=0.0,
                            necrosis_probability=0.0, tumor_diameter_mm=(20.0, 30.0), tumor_count=(2, 2),
                            contrast_hypo=(-50.0, -50.0), surface_tumor_probability=0.0)
    cid = next(i for i in range(p.n_volumes) if i not in tumor_free_cases(p))
    c = generate_case(cid, p)
    seg, hu = c.segmentation, c.hu.astype(float)
    liver = ndi.binary_erosion(seg == 1, iterations=2)
    tumor = ndi.binary_erosion(seg == 2, iterations=1)
    liver_mean = hu[liver].mean()
    assert p.liver_hu[0] - 15 <= liver_mean <= p.liver_hu[1] + 25  # vessels lift the mean a little
    assert 10 < hu[liver].std() < 45
    diff = hu[tumor].mean() - liver_mean
    assert -65 < diff < -25, diff
    assert c.n_tumors == 2


def test_tumor_diameters_respected(defaults):
    p = dataclasses.replace(defaults, n_volumes=4, tumor_free_fraction=0.0, tumor_count=(1, 1),
                            tumor_diameter_mm=(14.0, 18.0), surface_tumor_probability=0.0,
                            z_margin_mm=(5.0, 5.0), liver_height_mm=(130.0, 130.0))
    for cid in range(2):
        c = generate_case(cid, p)
        tumor = c.segmentation == 2
        vox_ml = abs(np.prod(np.diag(c.affine)[:3]))
        vol = tumor.sum() * vox_ml
        d_eq = (6 * vol / np.pi) ** (1 / 3)  # equivalent-sphere diameter (lobules/perturbation shift it)
        assert 0.5 * 14 < d_eq < 1.6 * 18, d_eq
