"""Per-case numbers written beside each prepared case: what a user checks first, and what the split reads."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from aslseg.data.lits import CaseArrays, CaseFiles
from aslseg.data.prepare import PreparedCase


def case_stats(files: CaseFiles, case: CaseArrays, prepared: PreparedCase) -> dict:
    voxel_ml = float(np.prod(prepared.spacing)) / 1000.0
    _, n_lesions = ndimage.label(prepared.tumor, structure=np.ones((3, 3, 3)))
    return {
        "case_id": files.case_id,
        "volume_file": str(files.volume),
        "original_shape": list(case.hu.shape),
        "original_spacing_mm": [round(s, 4) for s in case.spacing],
        "slices": int(prepared.image.shape[0]),
        "first_slice": int(prepared.slice_index[0]),
        "crop_box": [int(v) for v in prepared.crop_box],
        "spacing_mm": [round(float(s), 4) for s in prepared.spacing],
        "liver_ml": round(float(prepared.liver.sum()) * voxel_ml, 3),
        "tumor_ml": round(float(prepared.tumor.sum()) * voxel_ml, 3),
        "tumor_slices": int(prepared.tumor.reshape(prepared.tumor.shape[0], -1).any(axis=1).sum()),
        "tumor_components": int(n_lesions),
    }
