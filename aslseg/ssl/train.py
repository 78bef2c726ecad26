"""The training loop of SS(.) shared by every method: batches, optimizer and schedule, validation on whole
volumes, best-checkpoint keeping. What differs between methods (their losses, teachers, partner networks)
lives in aslseg/ssl/methods/.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from aslseg.precision import Precision
from aslseg.progress import Progress
from aslseg.seg2d.augment import Augmenter
from aslseg.ssl.methods import METHODS, Batch
from aslseg.ssl.evaluation import Volume, mean_dice_with_tumor
from aslseg.seg2d.sampling import ForegroundBatchSampler, StratifiedBatchSampler
from aslseg.ssl.schedules import ema_update
from aslseg.ssl.settings import TrainSettings
from aslseg.ssl.slices import SliceSet


@dataclass
class TrainResult:
    state_dict: dict
    best_iteration: int
    best_val_dice: float
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    precision: Precision | None = None  # what the network ran in (settings.bf16 resolved for the device)


def train(
    method: str,
    labeled: SliceSet,
    unlabeled: SliceSet | None,
    val_volumes: list[Volume],
    settings: TrainSettings,
    seed: int,
    progress: bool = True,
    device: str = "cpu",
    truth_share: float | None = None,
) -> TrainResult:
    """Train SS(.) with `method` on labeled slices (and unlabeled ones, for SSL methods). With `truth_share`
    and pseudo-labeled slices among the labeled ones, at least that share of every labeled batch is ground
    truth (StratifiedBatchSampler)."""
    settings, precision = settings.on_device(device)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    trainer = METHODS[method](settings, device)
    if trainer.uses_unlabeled and (unlabeled is None or len(unlabeled) == 0):
        raise ValueError(f"method {method!r} needs unlabeled slices, and there are none")
    optimizer = torch.optim.AdamW(trainer.trainable(), lr=settings.lr, weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=settings.iterations, power=0.9)
    sampler = batch_sampler(labeled, settings, truth_share, rng)
    augment = Augmenter(settings.rotate_deg, settings.scale, settings.intensity, settings.flip, seed, device)

    averaged = _frozen_copy(trainer.model()) if settings.weight_average is not None else None
    kept = averaged if averaged is not None else trainer.model()  # the network validated and saved
    best = TrainResult(_cpu_copy(kept), 0, -1.0, precision=precision)
    start = time.perf_counter()
    bar = Progress(settings.iterations, f"ssl_train {method}", "iterations", enabled=progress)
    for iteration in range(1, settings.iterations + 1):
        index = sampler()
        labeled_batch = Batch(*augment(labeled.image[index], labeled.tumor[index]))
        unlabeled_batch = None
        if trainer.uses_unlabeled:
            pick = rng.choice(len(unlabeled), trainer.unlabeled_batch_size())
            unlabeled_batch = Batch(augment(unlabeled.image[pick])[0])
        loss, parts = trainer.loss(labeled_batch, unlabeled_batch, (iteration - 1) / settings.iterations)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        trainer.after_step(iteration)
        if averaged is not None:
            ema_update(averaged, trainer.model(), settings.weight_average, iteration)
        bar.advance()
        if iteration % settings.val_every == 0 or iteration == settings.iterations:
            dice = mean_dice_with_tumor(kept, val_volumes)
            best.history.append({"iteration": iteration, "loss": loss.item(), **parts, "val_dice": dice})
            bar.note = f"loss {loss.item():.3f}, val Dice {dice:.3f}"
            if dice > best.best_val_dice:
                best.state_dict = _cpu_copy(kept)
                best.best_iteration, best.best_val_dice = iteration, dice
    best.seconds = time.perf_counter() - start
    return best


def batch_sampler(labeled: SliceSet, settings: TrainSettings, truth_share: float | None, rng: np.random.Generator):
    """The labeled batches' sampler: ground truth and pseudo labels drawn apart when both are present and a
    share is asked for, else one pool (round 0 draws exactly as before rounds existed)."""
    if truth_share is not None and labeled.pseudo is not None and labeled.pseudo.any():
        return StratifiedBatchSampler(labeled.has_tumor(), ~labeled.pseudo, settings.batch_size,
                                      settings.foreground_fraction, truth_share, rng)
    return ForegroundBatchSampler(labeled.has_tumor(), settings.batch_size, settings.foreground_fraction, rng)


def _frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    averaged = copy.deepcopy(model)
    for parameter in averaged.parameters():
        parameter.requires_grad_(False)
    return averaged


def _cpu_copy(model: torch.nn.Module) -> dict:
    return {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
