"""Prepared cases as stacks of 2D slices, the unit that Stage I trains and predicts on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from aslseg.pseudo_labels import read_masks
from aslseg.prepared import case_id_of
from aslseg.select.expand import GROUND_TRUTH, NEGATIVE, check_list


@dataclass(frozen=True)
class SliceSet:
    image: np.ndarray  # float32 (N, H, W) in [0, 1]
    case_id: np.ndarray  # int (N,): the volume each slice comes from
    position: np.ndarray  # int (N,): the slice's index inside its prepared case
    tumor: np.ndarray | None  # uint8 (N, H, W); None for unlabeled slices
    pseudo: np.ndarray | None = None  # bool (N,): the label is a pseudo label (accepted, or a negative); None: none is
    liver: np.ndarray | None = None  # uint8 (N, H, W): the known liver region (incl. tumor) where SS(.) predicts
    negative: np.ndarray | None = None  # bool (N,): of those, a negative (select.negatives); None: none is

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
    images, case_ids, positions, tumors, livers = [], [], [], [], []
    labels_by_case = {case_id_of(p): p for p in label_paths or []}
    if label_paths is not None and set(labels_by_case) != {case_id_of(p) for p in image_paths}:
        raise ValueError("label files must belong to exactly the cases whose images are loaded")
    for path in image_paths:
        case_id = case_id_of(path)
        with np.load(path) as prepared:
            image = prepared["image"].astype(np.float32)
            liver = prepared["liver"] if "liver" in prepared else None
        images.append(image)
        livers.append(liver)
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
        liver=np.concatenate(livers) if all(liver is not None for liver in livers) else None,
    )


def _concat(parts: list[SliceSet]) -> SliceSet:
    labeled = [p.tumor is not None for p in parts]
    if any(labeled) and not all(labeled):
        raise ValueError("cannot join labeled and unlabeled slice sets")
    pseudo = _joined_flags(parts, "pseudo") if all(labeled) else None
    negative = _joined_flags(parts, "negative") if all(labeled) else None
    return SliceSet(
        image=np.concatenate([p.image for p in parts]),
        case_id=np.concatenate([p.case_id for p in parts]),
        position=np.concatenate([p.position for p in parts]),
        tumor=np.concatenate([p.tumor for p in parts]) if all(labeled) else None,
        pseudo=pseudo,
        liver=np.concatenate([p.liver for p in parts]) if all(p.liver is not None for p in parts) else None,
        negative=negative,
    )


def _joined_flags(parts: list[SliceSet], field: str) -> np.ndarray | None:
    """A per-slice flag of joined sets: False where a part does not carry it, None where none does."""
    if all(getattr(p, field) is None for p in parts):
        return None
    return np.concatenate([getattr(p, field) if getattr(p, field) is not None else np.zeros(len(p), dtype=bool)
                           for p in parts])


def _take(slices: SliceSet, rows: np.ndarray, pseudo_tumor: np.ndarray | None = None,
          negative: np.ndarray | None = None) -> SliceSet:
    """Some rows of unlabeled slices, with pseudo labels when `pseudo_tumor` is given (`negative` flags those
    that are negatives)."""
    pseudo = None if pseudo_tumor is None else np.ones(len(rows), dtype=bool)
    return SliceSet(slices.image[rows], slices.case_id[rows], slices.position[rows], pseudo_tumor, pseudo,
                    None if slices.liver is None else slices.liver[rows], negative)


def load_round_slices(
    labeled_list: pd.DataFrame, image_paths: list[str | Path], unlabeled_cases: list[int]
) -> tuple[SliceSet, SliceSet | None]:
    """The training slices of a round from its labeled list (aslseg.select.expand): labeled = the ground-truth
    volumes' slices plus every accepted pseudo-labeled slice and negative (`pseudo` set; `negative` too for a
    negative, whose mask must be empty), its mask read from the PL3 shard file the list names; unlabeled = the
    slices of `unlabeled_cases` that the list does not hold (None when there are none).

    Only the label files that the list names are read, so the unlabeled volumes' ground truth never is."""
    check_list(labeled_list)
    images = {case_id_of(p): p for p in image_paths}
    missing = sorted((set(labeled_list["case"].astype(int)) | set(unlabeled_cases)) - set(images))
    if missing:
        raise ValueError(f"no image file for cases {missing}")
    truth = labeled_list[labeled_list["source"] == GROUND_TRUTH]
    truth_files = truth.groupby("case")["label_file"].first()
    parts = []
    if len(truth_files):
        cases = [int(c) for c in truth_files.index]
        parts.append(load_slices([images[c] for c in cases], [truth_files[c] for c in cases]))
    pseudo = labeled_list[labeled_list["source"] != GROUND_TRUTH]
    # Read per file, not merged by case: from round 2 on, one case's slices are listed with the PL3 files of
    # different rounds, and each slice takes its label from the file its row names.
    masks = {path: read_masks([path]) for path in sorted(set(pseudo["label_file"]))}
    unlabeled_parts = []
    for case in sorted(set(unlabeled_cases) | set(pseudo["case"].astype(int))):
        slices = load_slices([images[case]])
        rows = pseudo[pseudo["case"] == case]
        for path, from_file in rows.groupby("label_file", sort=True):
            positions = from_file["position"].to_numpy(dtype=np.int64)
            if case not in masks[path]:
                raise ValueError(f"case {case}: no pseudo label in {path}")
            if masks[path][case].shape != slices.image.shape:
                raise ValueError(f"case {case}: pseudo label shape {masks[path][case].shape} in {path} != image "
                                 f"{slices.image.shape}")
            if positions.max() >= len(slices):
                raise ValueError(f"case {case}: the labeled list names slice {positions.max()} of {len(slices)}")
            mask = masks[path][case][positions].astype(np.uint8)
            negative = from_file["source"].to_numpy() == NEGATIVE
            if mask[negative].any():
                raise ValueError(f"case {case}: the labeled list names tumor-free slices whose label in {path} "
                                 f"has tumor: {positions[negative & mask.reshape(len(mask), -1).any(axis=1)].tolist()}")
            parts.append(_take(slices, positions, mask, negative if negative.any() else None))
        listed = rows["position"].to_numpy(dtype=np.int64)
        rest = np.setdiff1d(np.arange(len(slices)), listed)
        if case in unlabeled_cases and len(rest):
            unlabeled_parts.append(_take(slices, rest))
    if not parts:
        raise ValueError("the labeled list holds no slice")
    return _concat(parts), (_concat(unlabeled_parts) if unlabeled_parts else None)
