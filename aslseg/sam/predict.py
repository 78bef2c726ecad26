"""SAM's masks for prompts made from a mask, from cached embeddings, united per target slice: Pseudo Label 2
from Pseudo Label 1 (one prompt per tumor component; a slice without components gets an empty PL2), and the
synthetic PL2 that the adaptation network trains on (several corrupted copies of one labeled slice are
several targets sharing one embedding)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from aslseg.sam.embeddings import EmbeddingStore
from aslseg.sam.model import SamModel


@dataclass(frozen=True)
class PromptedComponent:
    target: int  # index of the output mask this component's SAM mask joins
    case: int  # (case, position): the slice whose embedding is decoded
    position: int
    component: int
    area: int
    box: list[float] | None
    points: list[list[float]] | None
    point_labels: list[int] | None


def _stack(values: list) -> np.ndarray | None:
    return None if values[0] is None else np.asarray(values, dtype=np.float32)


def decode_prompts(
    model: SamModel,
    store: EmbeddingStore,
    prompts: list[PromptedComponent],
    n_targets: int,
    size: int,
    threshold: float,
    batch_size: int = 32,
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Masks (n_targets, size, size) uint8: the union of the SAM masks of each target's prompts; SAM's tumor
    probability (the highest over those prompts, float16, 0 where unprompted); one row per prompt with its
    input area, its SAM mask's area and SAM's predicted IoU."""
    masks = np.zeros((n_targets, size, size), dtype=np.uint8)
    probability = np.zeros((n_targets, size, size), dtype=np.float16)
    rows = []
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        embeddings = torch.from_numpy(store.get([(p.case, p.position) for p in batch]))
        with torch.no_grad():
            logits, iou = model.decode(
                embeddings,
                boxes=_stack([p.box for p in batch]),
                points=_stack([p.points for p in batch]),
                point_labels=None if batch[0].point_labels is None else np.asarray([p.point_labels for p in batch]),
                out_size=size,
            )
        probabilities, ious = torch.sigmoid(logits).cpu().numpy(), iou.cpu().numpy()  # the model may be on a GPU
        for prompt, component_probability, predicted_iou in zip(batch, probabilities, ious):
            component = component_probability > threshold
            masks[prompt.target] |= component.astype(np.uint8)
            np.maximum(probability[prompt.target], component_probability.astype(np.float16), out=probability[prompt.target])
            rows.append({"case": prompt.case, "position": prompt.position, "component": prompt.component,
                         "input_area": prompt.area, "sam_area": int(component.sum()), "predicted_iou": float(predicted_iou)})
    return masks, probability, rows


def pseudo_label_2(
    model: SamModel,
    store: EmbeddingStore,
    artifact: dict,
    threshold: float,
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray], list[dict]]:
    """PL2 {case: (slices, H, W) uint8} and SAM's probability {case: float16} for every case of a prompts
    artifact (aslseg.sam.prompts, written by rule sam_prompts), and one row per prompted component."""
    shapes = {int(case): tuple(shape) for case, shape in artifact["cases"].items()}
    offsets, total = {}, 0
    for case, shape in shapes.items():
        offsets[case], total = total, total + shape[0]
    prompts = [
        PromptedComponent(offsets[entry["case"]] + entry["position"], entry["case"], entry["position"],
                          prompt["component"], prompt["area"], prompt["box"], prompt["points"], prompt["point_labels"])
        for entry in artifact["slices"]
        for prompt in entry["prompts"]
    ]
    size = next(iter(shapes.values()))[-1] if shapes else 0
    masks, probability, rows = decode_prompts(model, store, prompts, total, size, threshold)
    split = lambda array: {case: array[offsets[case] : offsets[case] + shape[0]] for case, shape in shapes.items()}
    return split(masks), split(probability), rows
