"""Synthetic Pseudo Label 2 for AN's training data: each labeled slice's ground truth is corrupted into a
plausible PL1 (aslseg/adapt/corruptions.py), turned into prompts exactly as a real PL1 is
(aslseg/sam/prompts.py; none in the liver's rim, aslseg/sam/liver_rim.py), and decoded by the same SAM from
the slice's cached embedding (aslseg/sam/predict.py). AN then learns to map image ⊕ this PL2 back to the
ground truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aslseg.adapt.corruptions import CorruptionSettings, synthesize
from aslseg.sam.embeddings import EmbeddingStore
from aslseg.sam.model import SamModel
from aslseg.sam.liver_rim import off_rim
from aslseg.sam.predict import PromptedComponent, decode_prompts
from aslseg.sam.prompts import PromptShape, slice_prompts


@dataclass(frozen=True)
class SyntheticSet:
    case: np.ndarray  # int (M,): the slice each synthetic example comes from
    position: np.ndarray  # int (M,)
    pl1: np.ndarray  # uint8 (M, H, W): the corrupted ground truth
    pl2: np.ndarray  # uint8 (M, H, W): SAM's masks for its prompts
    sam_probability: np.ndarray  # float16 (M, H, W)
    applied: list[list[str]]  # the corruptions drawn for each example


def synthetic_pseudo_labels(
    model: SamModel,
    store: EmbeddingStore,
    case: np.ndarray,
    position: np.ndarray,
    tumor: np.ndarray,
    liver: np.ndarray,
    corruptions: CorruptionSettings,
    prompt_type: str,
    shape: PromptShape,
    copies: int,
    seed: int,
    threshold: float,
    images: np.ndarray | None = None,
    max_rim_share: float | None = None,
    pixel_mm: np.ndarray | None = None,
) -> SyntheticSet:
    """`copies` synthetic (PL1, PL2) pairs per slice; reproducible per seed and slice, whatever the batch.
    With `images` (the slices), false blobs favour dark, lesion-like spots as SS's false positives do.
    `max_rim_share` is sam.max_rim_share: components lying mostly in the liver's rim (`pixel_mm`: each slice's
    pixel size) get no prompt."""
    if max_rim_share is not None and pixel_mm is None:
        raise ValueError("the liver's rim needs each slice's pixel size (pixel_mm)")
    slice_ids = case.astype(np.int64) * 100_000 + position  # stable per slice: its draws do not depend on batching
    pl1, source, applied = synthesize(tumor, liver, corruptions, copies, seed, slice_ids=slice_ids, images=images)
    prompted = pl1 if max_rim_share is None else [
        off_rim(mask, liver[source[target]], float(pixel_mm[source[target]]), max_rim_share)
        for target, mask in enumerate(pl1)]
    components = [
        PromptedComponent(target, int(case[source[target]]), int(position[source[target]]), p["component"], p["area"],
                          p["box"], p["points"], p["point_labels"])
        for target, mask in enumerate(prompted)
        for p in slice_prompts(mask, prompt_type, shape)
    ]
    pl2, probability, _ = decode_prompts(model, store, components, len(pl1), tumor.shape[-1], threshold)
    return SyntheticSet(case[source], position[source], pl1, pl2, probability, applied)
