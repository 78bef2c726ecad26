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
from dataclasses import dataclass
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
from aslseg.seg2d.augment import Augmenter
from aslseg.seg2d.network import build_network, predict_probabilities
from aslseg.seg2d.settings import LoopSettings
from aslseg.seg2d.training import TrainResult, fit


@dataclass(frozen=True)
class LiverSettings(LoopSettings):
    """Config `liver` (the schema documents the keys and holds their defaults): those of every seg2d training
    (LoopSettings), the liver model's own, and the data window."""

    size: int  # in-plane pixels of the whole slices it sees
    threshold: float  # liver probability above which a pixel is liver
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


def train_liver(train: LiverData, val: LiverData, settings: LiverSettings, seed: int, device: str = "cpu",
                progress: bool = True) -> TrainResult:
    """Train the liver model on `train`; keep the weights whose pooled val Dice is best."""
    if not len(train.image) or not len(val.image):
        raise ValueError("the liver model needs training and val slices")
    precision = resolve_bf16(settings.bf16, device)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_network(settings.features, bf16=precision.bf16).to(device)
    loss_function = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False, batch=True)
    augment = Augmenter(settings.rotate_deg, settings.scale, settings.intensity, False, seed, device)

    def step(iteration: int):
        index = rng.choice(len(train.image), size=settings.batch_size, replace=len(train.image) < settings.batch_size)
        inputs, labels = augment(train.image[index], train.liver[index])
        return loss_function(model(inputs), labels), {}

    def validate() -> float:
        return pooled_dice(predict_probabilities(model, val.image) > settings.threshold, val.liver)

    return fit(model.parameters(), model, settings, step, validate, "liver_train", precision, progress=progress)


def save_liver_model(path: str | Path, result: TrainResult, settings: LiverSettings) -> None:
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
