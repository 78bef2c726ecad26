"""Pseudo Label 2: SAM's mask for every prompt made from Pseudo Label 1, from cached embeddings, united per
slice (one prompt per tumor component; a slice without components gets an empty PL2)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from aslseg.sam.embeddings import EmbeddingStore
from aslseg.sam.model import SamModel


@dataclass(frozen=True)
class PromptedComponent:
    case: int
    position: int
    component: int
    area: int
    box: list[float] | None
    points: list[list[float]] | None
    point_labels: list[int] | None


def flatten_prompts(artifact: dict) -> list[PromptedComponent]:
    """The prompts artifact of aslseg.sam.prompts (per slice, per component) as one list."""
    return [
        PromptedComponent(entry["case"], entry["position"], prompt["component"], prompt["area"], prompt["box"],
                          prompt["points"], prompt["point_labels"])
        for entry in artifact["slices"]
        for prompt in entry["prompts"]
    ]


def _stack(values: list) -> np.ndarray | None:
    return None if values[0] is None else np.asarray(values, dtype=np.float32)


def predict_pseudo_label_2(
    model: SamModel,
    store: EmbeddingStore,
    prompts: list[PromptedComponent],
    shapes: dict[int, tuple[int, int, int]],
    threshold: float,
    batch_size: int = 32,
) -> tuple[dict[int, np.ndarray], list[dict]]:
    """PL2 masks {case: (slices, H, W) uint8} for every case in `shapes` and one row per prompted component
    (its PL1 area, its SAM mask's area and SAM's predicted IoU)."""
    masks = {case: np.zeros(shape, dtype=np.uint8) for case, shape in shapes.items()}
    rows = []
    logit_threshold = float(np.log(threshold / (1 - threshold)))  # sigmoid(x) > t  <=>  x > logit(t)
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        embeddings = torch.from_numpy(store.get([(p.case, p.position) for p in batch]))
        size = shapes[batch[0].case][-1]
        with torch.no_grad():
            logits, iou = model.decode(
                embeddings,
                boxes=_stack([p.box for p in batch]),
                points=_stack([p.points for p in batch]),
                point_labels=None if batch[0].point_labels is None else np.asarray([p.point_labels for p in batch]),
                out_size=size,
            )
        for prompt, component_logits, predicted_iou in zip(batch, logits.numpy(), iou.numpy()):
            component = component_logits > logit_threshold
            masks[prompt.case][prompt.position] |= component.astype(np.uint8)
            rows.append({"case": prompt.case, "position": prompt.position, "component": prompt.component,
                         "pl1_area": prompt.area, "pl2_area": int(component.sum()), "predicted_iou": float(predicted_iou)})
    return masks, rows
