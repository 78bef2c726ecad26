"""The supervised training loop of SS(.), with validation on whole volumes and best-checkpoint keeping.

Semi-supervised methods (issue: Stage I) add an unlabeled term to the same loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from monai.losses import DiceCELoss
from tqdm import tqdm

from aslseg.metrics import case_metrics
from aslseg.ssl.augment import augment_batch, build_augmentation
from aslseg.ssl.network import build_network, predict_probabilities
from aslseg.ssl.sampling import ForegroundBatchSampler
from aslseg.ssl.slices import SliceSet


@dataclass(frozen=True)
class TrainSettings:
    iterations: int
    batch_size: int
    lr: float
    weight_decay: float
    foreground_fraction: float
    features: tuple[int, ...]
    val_every: int
    rotate_deg: float = 15.0
    scale: float = 0.1
    intensity: float = 0.1
    flip: bool = False
    # Dice over the tumor channel only, pooled over the batch: background Dice is ~1 whatever the network
    # does, and per-slice Dice on slices without tumor is undefined noise.
    dice_include_background: bool = False
    batch_dice: bool = True


@dataclass(frozen=True)
class ValCase:
    image: np.ndarray  # (S, H, W)
    tumor: np.ndarray  # (S, H, W)
    spacing: tuple[float, float, float]


@dataclass
class TrainResult:
    state_dict: dict
    best_iteration: int
    best_val_dice: float
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def validate(model: torch.nn.Module, cases: list[ValCase]) -> float:
    """Mean 3D Dice over validation volumes with tumor (the checkpoint criterion)."""
    scores = [
        case_metrics(predict_probabilities(model, case.image) > 0.5, case.tumor, case.spacing)["dice"]
        for case in cases
        if case.tumor.any()
    ]
    return float(np.mean(scores)) if scores else float("nan")


def train_supervised(
    labeled: SliceSet,
    val_cases: list[ValCase],
    settings: TrainSettings,
    seed: int,
    progress: bool = True,
    device: str = "cpu",
) -> TrainResult:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_network(settings.features).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=settings.iterations, power=0.9)
    loss_fn = DiceCELoss(
        to_onehot_y=True,
        softmax=True,
        include_background=settings.dice_include_background,
        batch=settings.batch_dice,
    )
    sampler = ForegroundBatchSampler(labeled.has_tumor(), settings.batch_size, settings.foreground_fraction, rng)
    augmentation = build_augmentation(settings.rotate_deg, settings.scale, settings.intensity, settings.flip, seed)

    best = TrainResult({k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, 0, -1.0)
    start = time.perf_counter()
    bar = tqdm(range(1, settings.iterations + 1), disable=not progress, desc="ssl_train", mininterval=5)
    for iteration in bar:
        index = sampler()
        images, labels = augment_batch(labeled.image[index], labeled.tumor[index], augmentation)
        images, labels = images.to(device), labels.to(device)
        loss = loss_fn(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if iteration % settings.val_every == 0 or iteration == settings.iterations:
            dice = validate(model, val_cases)
            best.history.append({"iteration": iteration, "loss": loss.item(), "val_dice": dice})
            bar.set_postfix(loss=f"{loss.item():.3f}", val_dice=f"{dice:.3f}")
            if dice > best.best_val_dice:
                best.state_dict = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                best.best_iteration, best.best_val_dice = iteration, dice
    best.seconds = time.perf_counter() - start
    return best
