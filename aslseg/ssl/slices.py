"""Prepared cases as stacks of 2D slices, the unit that Stage I trains and predicts on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aslseg.prepared import case_id_of


@dataclass(frozen=True)
class SliceSet:
    image: np.ndarray  # float32 (N, H, W) in [0, 1]
    case_id: np.ndarray  # int (N,): the volume each slice comes from
    position: np.ndarray  # int (N,): the slice's index inside its prepared case
    tumor: np.ndarray | None  # uint8 (N, H, W); None for unlabeled slices

    def __len__(self) -> int:
        return len(self.image)

    def has_tumor(self) -> np.ndarray:
        if self.tumor is None:
            raise ValueError("unlabeled slices have no tumor mask")
        return self.tumor.reshape(len(self.tumor), -1).any(axis=1)


def load_slices(image_paths: list[str | Path], label_paths: list[str | Path] | None = None) -> SliceSet:
    """Stack the slices of prepared cases; labels are read only when their paths are given.

    `label_paths` must pair with `image_paths` by case id: the caller decides whose labels may be read.
    """
    images, case_ids, positions, tumors = [], [], [], []
    labels_by_case = {case_id_of(p): p for p in label_paths or []}
    if label_paths is not None and set(labels_by_case) != {case_id_of(p) for p in image_paths}:
        raise ValueError("label files must belong to exactly the cases whose images are loaded")
    for path in image_paths:
        case_id = case_id_of(path)
        with np.load(path) as prepared:
            image = prepared["image"].astype(np.float32)
        images.append(image)
        case_ids.append(np.full(len(image), case_id))
        positions.append(np.arange(len(image)))
        if label_paths is not None:
            with np.load(labels_by_case[case_id]) as label:
                tumor = label["tumor"]
            if tumor.shape != image.shape:
                raise ValueError(f"{labels_by_case[case_id]}: shape {tumor.shape} != image {image.shape}")
            tumors.append(tumor)
    return SliceSet(
        image=np.concatenate(images),
        case_id=np.concatenate(case_ids),
        position=np.concatenate(positions),
        tumor=np.concatenate(tumors) if label_paths is not None else None,
    )
