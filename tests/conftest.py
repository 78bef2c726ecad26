"""Shared fixtures: tiny LiTS-format cases written with nibabel, the way a real LiTS copy looks on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aslseg.io import write_nifti

REPO = Path(__file__).resolve().parent.parent

# DICOM-like storage: voxel i grows to the patient's left, j to posterior, k to superior.
LPS_LIKE_AFFINE = np.diag([-0.8, -0.8, 2.5, 1.0])


def tiny_case(shape=(40, 40, 12), tumor=True, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """A box 'liver' on slices 3..8 with an optional cubic 'tumor' and a little noise."""
    rng = np.random.default_rng(seed)
    hu = (-100 + 10 * rng.standard_normal(shape)).astype(np.int16)
    labels = np.zeros(shape, dtype=np.uint8)
    labels[5:25, 8:30, 3:9] = 1
    hu[labels == 1] = 100
    if tumor:
        labels[10:16, 12:18, 4:7] = 2
        hu[labels == 2] = 40
    return hu, labels


def write_case(directory: Path, case_id: int, hu, labels, affine=LPS_LIKE_AFFINE, gz=True) -> None:
    suffix = ".nii.gz" if gz else ".nii"
    write_nifti(directory / f"volume-{case_id}{suffix}", hu, affine)
    write_nifti(directory / f"segmentation-{case_id}{suffix}", labels, affine)


@pytest.fixture
def lits_dir(tmp_path: Path) -> Path:
    """Four small cases, one of them tumor-free, mixing .nii and .nii.gz like LiTS copies do."""
    directory = tmp_path / "lits"
    directory.mkdir()
    for case_id in range(4):
        hu, labels = tiny_case(tumor=case_id != 3, seed=case_id)
        write_case(directory, case_id, hu, labels, gz=case_id % 2 == 0)
    return directory
