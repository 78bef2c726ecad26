"""The liver stage: a 2D BasicUNet that finds the liver (incl. tumor) on whole CT slices, so that a scan
without a ground-truth liver mask can go through the same slice selection, liver crop and tumor region as the
workflow's volumes (aslseg/predict.py).

It is trained on the volumes whose labels training may read (the labeled ones, best weights chosen on the val
volumes), from whole slices resized to `size` x `size` in the data window. Its output is brought back to the
scan's full resolution and cleaned the way a liver is shaped: the largest 3D connected component, with holes
filled per slice (a hypodense lesion inside the liver is liver).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from monai.losses import DiceCELoss
from scipy import ndimage

from aslseg.data.prepare import resize_labels, resize_stack, window
from aslseg.data.restore import restore_stack
from aslseg.dice import pooled_dice
from aslseg.io import atomic_path
from aslseg.precision import Precision, resolve_bf16
from aslseg.progress import Progress
from aslseg.seg2d.augment import Augmenter
from aslseg.seg2d.network import build_network, predict_probabilities


@dataclass(frozen=True)
class LiverSettings:
    """Config `liver` (the schema documents the keys and holds their defaults) and the data window."""

    size: int
    features: tuple[int, ...]
    iterations: int
    batch_size: int
    lr: float
    weight_decay: float
    val_every: int
    rotate_deg: float
    scale: float
    intensity: float
    threshold: float
    bf16: bool | str
    window: tuple[float, float]

    @classmethod
    def from_config(cls, liver: dict, window_hu) -> "LiverSettings":
        names = [f.name for f in dataclasses.fields(cls) if f.name != "window"]
        missing = sorted(set(names) - set(liver))
        if missing:
            raise KeyError(f"liver settings missing: {missing}")
        values = {key: tuple(liver[key]) if key == "features" else liver[key] for key in names}
        return cls(**values, window=tuple(float(v) for v in window_hu))

    def record(self) -> dict:
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in dataclasses.asdict(self).items()}


def liver_input(hu: np.ndarray, settings: LiverSettings) -> np.ndarray:
    """(S, H, W) HU in display order -> (S, size, size) float32 in [0, 1]: every whole slice, windowed."""
    return np.clip(resize_stack(window(hu, *settings.window), settings.size), 0.0, 1.0)


@dataclass(frozen=True)
class LiverData:
    """Whole slices at the liver model's size and their liver masks (liver incl. tumor)."""

    image: np.ndarray  # float32 (N, size, size)
    liver: np.ndarray  # uint8 (N, size, size)

    @classmethod
    def from_volumes(cls, volumes: list[tuple[np.ndarray, np.ndarray]], settings: LiverSettings) -> "LiverData":
        """From (HU, labels 0/1/2) display-order volumes; every slice, with liver or without."""
        images = [liver_input(hu, settings) for hu, _ in volumes]
        livers = [(resize_labels(labels, settings.size) > 0).astype(np.uint8) for _, labels in volumes]
        return cls(np.concatenate(images), np.concatenate(livers))


@dataclass
class LiverResult:
    state_dict: dict
    best_iteration: int
    best_val_dice: float  # pooled Dice on the val slices at the model's size
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    precision: Precision | None = None


def _copy(model: torch.nn.Module) -> dict:
    return {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}


def train_liver(train: LiverData, val: LiverData, settings: LiverSettings, seed: int, device: str = "cpu",
                progress: bool = True) -> LiverResult:
    """Train the liver model on `train`; keep the weights whose pooled val Dice is best."""
    if not len(train.image) or not len(val.image):
        raise ValueError("the liver model needs training and val slices")
    precision = resolve_bf16(settings.bf16, device)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_network(settings.features, bf16=precision.bf16).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=settings.iterations, power=0.9)
    loss_function = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False, batch=True)
    augment = Augmenter(settings.rotate_deg, settings.scale, settings.intensity, False, seed, device)
    best = LiverResult(_copy(model), 0, -1.0, precision=precision)
    start = time.perf_counter()
    bar = Progress(settings.iterations, "liver_train", "iterations", enabled=progress)
    for iteration in range(1, settings.iterations + 1):
        index = rng.choice(len(train.image), size=settings.batch_size, replace=len(train.image) < settings.batch_size)
        inputs, labels = augment(train.image[index], train.liver[index])
        loss = loss_function(model(inputs), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        bar.advance()
        if iteration % settings.val_every == 0 or iteration == settings.iterations:
            dice = pooled_dice(predict_probabilities(model, val.image) > settings.threshold, val.liver)
            best.history.append({"iteration": iteration, "loss": loss.item(), "val_dice": dice})
            bar.note = f"loss {loss.item():.3f}, val Dice {dice:.3f}"
            if dice > best.best_val_dice:
                best.state_dict, best.best_iteration, best.best_val_dice = _copy(model), iteration, dice
    best.seconds = time.perf_counter() - start
    return best


def save_liver_model(path: str | Path, result: LiverResult, settings: LiverSettings) -> None:
    """Tensors and plain values only (loadable with weights_only=True)."""
    with atomic_path(path) as tmp:
        torch.save({"state_dict": result.state_dict, "liver": settings.record(), "best_val_dice": result.best_val_dice,
                    "best_iteration": result.best_iteration, "history": result.history, "seconds": result.seconds,
                    "precision": result.precision.record()}, tmp)


@dataclass
class LiverModel:
    """A trained liver model ready to segment, on the device it was loaded to."""

    network: torch.nn.Module
    settings: LiverSettings
    precision: Precision
    best_val_dice: float

    def segment(self, hu: np.ndarray) -> np.ndarray:
        """The liver mask (uint8, display order, the scan's full resolution) of (S, H, W) HU; all zero when
        no pixel reaches the threshold."""
        probability = predict_probabilities(self.network, liver_input(hu, self.settings))
        whole_slices = np.array([0, 0, hu.shape[1], hu.shape[2]])
        full = restore_stack(probability, np.arange(len(hu)), whole_slices, hu.shape)
        return liver_shape(full > self.settings.threshold)


def liver_shape(mask: np.ndarray) -> np.ndarray:
    """The largest 3D connected component of a mask, with the holes of each slice filled (uint8)."""
    components, count = ndimage.label(mask)
    if count == 0:
        return np.zeros(mask.shape, dtype=np.uint8)
    sizes = np.bincount(components.ravel())[1:]
    largest = components == 1 + int(np.argmax(sizes))
    return np.stack([ndimage.binary_fill_holes(s) for s in largest]).astype(np.uint8)


def load_liver_model(path: str | Path, device: str = "cpu") -> LiverModel:
    """The liver model saved by rule liver_train, predicting in its bf16 setting resolved for `device`."""
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    record = checkpoint["liver"]
    settings = LiverSettings(**{key: tuple(value) if key in ("features", "window") else value
                                for key, value in record.items()})
    precision = resolve_bf16(settings.bf16, device)
    network = build_network(settings.features, bf16=precision.bf16).to(device)
    network.load_state_dict(checkpoint["state_dict"])
    network.eval()
    return LiverModel(network, settings, precision, float(checkpoint["best_val_dice"]))
