"""Fine-tune MS(.)'s mask decoder (and optionally its prompt encoder) on cached image embeddings.

The image encoder is frozen, so a training step costs only the decoder: each slice's embedding is computed
once (aslseg/sam/embeddings.py) and reused by every step, experiment and seed. One training example is one
8-connected tumor component of one labeled slice: SAM segments one object per prompt, and inference prompts
it the same way, one prompt per component of Pseudo Label 1 (aslseg/sam/prompts.py). LiteMedSAM was trained
with boxes only and ignores point prompts zero-shot; fine-tuning with points is what makes them usable.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss

from aslseg.progress import Progress
from aslseg.sam.model import SamModel
from aslseg.sam.prompts import PROMPT_TYPES, PromptShape, box_of, components, interior_point, interior_points


@dataclass(frozen=True)
class FinetuneSettings:
    """Keys of the config's SAM fine-tuning section (the config schema documents them and holds defaults),
    and the prompt shape inference uses, so that what SAM is tuned on is what it is later asked."""

    iterations: int
    batch_size: int  # components (prompts) per step
    lr: float
    weight_decay: float
    box_jitter: float  # max shift of each box edge, as a fraction of the box's side (MedSAM-style robustness)
    prompts: tuple[str, ...]  # prompt types, drawn uniformly per example
    train_prompt_encoder: bool
    iou_loss_weight: float  # weight of the MSE between predicted and actual IoU
    shape: PromptShape  # box margin (before jitter), the smallest component, multipoint's points

    def __post_init__(self):
        unknown = [p for p in self.prompts if p not in PROMPT_TYPES]
        if not self.prompts or unknown:
            raise ValueError(f"prompts must be a non-empty list of {list(PROMPT_TYPES)}; got {list(self.prompts)}")

    @classmethod
    def from_config(cls, section: dict, shape: PromptShape) -> "FinetuneSettings":
        """From config sam.finetune (without `enabled`) and the prompt shape of config `sam`."""
        names = {f.name for f in dataclasses.fields(cls)} - {"shape"}
        unknown, missing = set(section) - names, names - set(section)
        if unknown or missing:
            raise KeyError(f"SAM fine-tuning settings: unknown {sorted(unknown)}, missing {sorted(missing)}")
        return cls(**{key: tuple(value) if key == "prompts" else value for key, value in section.items()}, shape=shape)


@dataclass
class FinetuneResult:
    decoder_state: dict  # SamModel.decoder_state_dict() after the last step
    history: list[dict] = field(default_factory=list)  # one entry per step
    seconds: float = 0.0


class _Components:
    """The training examples: (slice, component) pairs, each slice's components kept as one label map."""

    def __init__(self, masks: np.ndarray, min_pixels: int):
        self.labels: dict[int, np.ndarray] = {}
        self.examples: list[tuple[int, int]] = []
        for index in np.flatnonzero(masks.reshape(len(masks), -1).any(axis=1)):
            found = components(masks[index], min_pixels)
            if not found:
                continue
            label = np.zeros(masks.shape[1:], dtype=np.int32)
            for number, component in enumerate(found, start=1):
                label[component] = number
                self.examples.append((int(index), number))
            self.labels[int(index)] = label
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray | None]] = {}

    def __len__(self) -> int:
        return len(self.examples)

    def mask(self, example: int) -> np.ndarray:
        index, number = self.examples[example]
        return self.labels[index] == number

    def prompts(self, example: int, margin: float, multipoint_n: int, need_multipoint: bool):
        """Unjittered box, interior point and interior points of a component (computed once)."""
        if example not in self._cache:
            component = self.mask(example)
            self._cache[example] = (
                box_of(component, margin, component.shape),
                interior_point(component),
                interior_points(component, multipoint_n) if need_multipoint else None,
            )
        return self._cache[example]


def _jitter(box: np.ndarray, fraction: float, size: int, rng: np.random.Generator) -> np.ndarray:
    """Move each edge by up to `fraction` of the box's side, either way; keep a valid box inside the image."""
    x0, y0, x1, y1 = box
    sides = np.array([x1 - x0, y1 - y0, x1 - x0, y1 - y0], dtype=np.float64).clip(min=1.0)
    moved = box + rng.uniform(-fraction, fraction, 4) * sides
    x0, x1 = np.sort(moved[[0, 2]].clip(0, size - 1))
    y0, y1 = np.sort(moved[[1, 3]].clip(0, size - 1))
    return np.array([x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)], dtype=np.float32)


def _rows(embeddings, index: np.ndarray) -> torch.Tensor:
    """float32 rows of an embedding array or tensor (fp16 caches are cast per batch)."""
    if isinstance(embeddings, torch.Tensor):
        return embeddings[torch.as_tensor(index)].float()
    return torch.from_numpy(np.asarray(embeddings[index], dtype=np.float32))


def _prompt_arrays(prompt_type: str, boxes: list, points: list, multipoints: list) -> dict:
    """decode() keyword arguments for a group of examples with the same prompt type."""
    return {
        "boxes": np.stack(boxes) if "box" in prompt_type else None,
        "points": (
            np.stack(multipoints) if prompt_type == "multipoint"
            else np.stack(points)[:, None] if prompt_type in ("point", "box+point")
            else None
        ),
    }


def _actual_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    predicted = logits.detach() > 0
    inter = (predicted & target).flatten(1).sum(1)
    union = (predicted | target).flatten(1).sum(1)
    return inter / union.clamp(min=1)


def finetune(
    model: SamModel,
    embeddings: np.ndarray | torch.Tensor,
    masks: np.ndarray,
    settings: FinetuneSettings,
    seed: int,
    progress: bool = True,
) -> FinetuneResult:
    """Train the model's decoder in place on (N, 256, 64, 64) embeddings of slices whose tumor ground truth
    is `masks` (N, S, S) at prepared resolution; return the final decoder state.

    Per step: `batch_size` components (in shuffled passes over all of them), each with a prompt type drawn
    from `settings.prompts` (boxes jittered); loss = Dice + BCE on the component's mask + iou_loss_weight x
    MSE(predicted IoU, IoU of the thresholded mask). AdamW at a constant learning rate."""
    masks = np.asarray(masks) > 0
    if masks.ndim != 3 or masks.shape[1] != masks.shape[2] or len(masks) != len(embeddings):
        raise ValueError(f"masks must be (N, S, S) for N={len(embeddings)} embeddings; got {masks.shape}")
    size = masks.shape[1]
    examples = _Components(masks, settings.shape.min_component_pixels)
    if len(examples) == 0:
        raise ValueError(
            f"no tumor component of at least {settings.shape.min_component_pixels} pixels in {len(masks)} labeled "
            "slices: nothing to fine-tune SAM on"
        )
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    device = model.device
    optimizer = torch.optim.AdamW(
        model.trainable_parameters(settings.train_prompt_encoder), lr=settings.lr, weight_decay=settings.weight_decay
    )
    segmentation_loss = DiceCELoss(sigmoid=True)  # one channel: MONAI's Dice (on sigmoid) + BCE-with-logits
    need_multipoint = "multipoint" in settings.prompts
    queue: list[int] = []
    history = []
    start = time.perf_counter()
    bar = Progress(settings.iterations, "sam_finetune", "iterations", enabled=progress)
    for iteration in range(1, settings.iterations + 1):
        while len(queue) < settings.batch_size:
            queue.extend(rng.permutation(len(examples)).tolist())
        picked, queue = queue[: settings.batch_size], queue[settings.batch_size :]
        types = rng.choice(len(settings.prompts), size=len(picked))
        logits, iou, targets = [], [], []
        for type_index, prompt_type in enumerate(settings.prompts):
            group = [example for example, t in zip(picked, types) if t == type_index]
            if not group:
                continue
            boxes, points, multipoints = [], [], []
            for example in group:
                box, point, several = examples.prompts(
                    example, settings.shape.box_margin, settings.shape.multipoint_n, need_multipoint
                )
                boxes.append(_jitter(box, settings.box_jitter, size, rng))
                points.append(point)
                multipoints.append(several)
            slices = np.array([examples.examples[example][0] for example in group])
            group_logits, group_iou = model.decode(
                _rows(embeddings, slices), **_prompt_arrays(prompt_type, boxes, points, multipoints), out_size=size
            )
            logits.append(group_logits)
            iou.append(group_iou)
            targets.append(torch.from_numpy(np.stack([examples.mask(example) for example in group])))
        logits, iou, target = torch.cat(logits), torch.cat(iou), torch.cat(targets).to(device)
        seg = segmentation_loss(logits[:, None], target[:, None].float())
        iou_loss = F.mse_loss(iou, _actual_iou(logits, target))
        loss = seg + settings.iou_loss_weight * iou_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history.append(
            {"iteration": iteration, "loss": loss.item(), "seg_loss": seg.item(), "iou_loss": iou_loss.item()}
        )
        bar.note = f"loss {loss.item():.3f}"
        bar.advance()
    return FinetuneResult(model.decoder_state_dict(), history, time.perf_counter() - start)


@torch.no_grad()
def prompt_dice(
    model: SamModel,
    embeddings: np.ndarray | torch.Tensor,
    masks: np.ndarray,
    prompt_type: str,
    shape: PromptShape,
    batch_size: int = 16,
) -> dict:
    """How well the model segments tumors given prompts derived from the ground truth itself (no jitter).

    One prompt per component of at least `shape.min_component_pixels`; a slice's prediction is the union of its
    components' masks (sigmoid > 0.5). `dice` is pooled over all pixels of the slices with tumor (smaller,
    unprompted components count as missed); `component_dice` is the mean Dice of each prompted component's
    mask with that component. Both are None when there is nothing to score (never NaN: they go to JSON)."""
    masks = np.asarray(masks) > 0
    if masks.ndim != 3 or masks.shape[1] != masks.shape[2] or len(masks) != len(embeddings):
        raise ValueError(f"masks must be (N, S, S) for N={len(embeddings)} embeddings; got {masks.shape}")
    size = masks.shape[1]
    with_tumor = np.flatnonzero(masks.reshape(len(masks), -1).any(axis=1))
    predicted = {int(index): np.zeros((size, size), dtype=bool) for index in with_tumor}
    component_dice: list[float] = []
    pending: list[tuple[int, np.ndarray, dict]] = []

    def stacked(prompts: list[dict], key: str, dtype) -> np.ndarray | None:
        return None if prompts[0][key] is None else np.array([p[key] for p in prompts], dtype=dtype)

    def flush() -> None:
        slices = np.array([index for index, _, _ in pending])
        prompts = [prompt for _, _, prompt in pending]
        logits, _ = model.decode(
            _rows(embeddings, slices),
            boxes=stacked(prompts, "box", np.float32),
            points=stacked(prompts, "points", np.float32),
            point_labels=stacked(prompts, "point_labels", np.int64),
            out_size=size,
        )
        for (index, component, _), mask in zip(pending, (logits > 0).cpu().numpy()):
            predicted[index] |= mask
            component_dice.append(2 * (mask & component).sum() / (mask.sum() + component.sum()))
        pending.clear()

    for index in with_tumor:
        for component in shape.components(masks[index]):
            pending.append((int(index), component, shape.prompt(component, prompt_type)))
            if len(pending) == batch_size:
                flush()
    if pending:
        flush()
    inter = sum(int((predicted[i] & masks[i]).sum()) for i in predicted)
    total = sum(int(predicted[i].sum() + masks[i].sum()) for i in predicted)
    return {
        "prompt": prompt_type,
        "dice": 2 * inter / total if total else None,
        "component_dice": float(np.mean(component_dice)) if component_dice else None,
        "slices": len(with_tumor),
        "components": len(component_dice),
    }
