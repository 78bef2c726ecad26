"""Training SS(.) with any method: its batches (labeled, pseudo-labeled, unlabeled) and its validation on whole
volumes, through the seg2d training loop (aslseg/seg2d/training.py). What differs between methods (their
losses, teachers, partner networks) lives in aslseg/ssl/methods/.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from aslseg.seg2d.augment import Augmenter
from aslseg.seg2d.sampling import ForegroundBatchSampler, ShapeKeepingBatchSampler, StratifiedBatchSampler
from aslseg.seg2d.training import TrainResult, fit
from aslseg.ssl.evaluation import Volume, mean_dice_with_tumor
from aslseg.ssl.methods import METHODS, Batch
from aslseg.ssl.schedules import ema_update
from aslseg.ssl.settings import TrainSettings
from aslseg.ssl.slices import SliceSet


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
    start_from: dict | None = None,
) -> TrainResult:
    """Train SS(.) with `method` on labeled slices (and unlabeled ones, for SSL methods). With `truth_share`
    and pseudo-labeled slices among the labeled ones, at least that share of every labeled batch is ground
    truth (`batch_sampler`). With `start_from` (a state dict of the same network) training begins from
    those weights (Method.start_from)."""
    settings, precision = settings.on_device(device)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    trainer = METHODS[method](settings, device)
    if start_from is not None:
        trainer.start_from(start_from)
    if trainer.uses_unlabeled and (unlabeled is None or len(unlabeled) == 0):
        raise ValueError(f"method {method!r} needs unlabeled slices, and there are none")
    sampler = batch_sampler(labeled, settings, truth_share, rng)
    augment = Augmenter(settings.rotate_deg, settings.scale, settings.intensity, settings.flip, seed, device)
    averaged = _frozen_copy(trainer.model()) if settings.weight_average is not None else None
    kept = averaged if averaged is not None else trainer.model()  # the network validated and saved

    if settings.loss_in_liver and (labeled.liver is None or (trainer.uses_unlabeled and unlabeled.liver is None)):
        raise ValueError("ssl loss_in_liver needs the slices' liver masks (the prepared images' `liver`)")

    def batch(slices: SliceSet, index: np.ndarray) -> Batch:
        """The slices at `index` augmented, with their labels when known and, for `loss_in_liver`, the liver
        region warped as the image is."""
        image, tumor = slices.image[index], None if slices.tumor is None else slices.tumor[index]
        if not settings.loss_in_liver:
            return Batch(*augment(image, tumor)) if tumor is not None else Batch(augment(image)[0])
        inputs, label = augment(image, tumor, slices.liver[index][:, None])
        return Batch(inputs[:, :1], label, inputs[:, 1:])

    def step(iteration: int):
        labeled_batch = batch(labeled, sampler())
        unlabeled_batch = None
        if trainer.uses_unlabeled:
            unlabeled_batch = batch(unlabeled, rng.choice(len(unlabeled), trainer.unlabeled_batch_size()))
        return trainer.loss(labeled_batch, unlabeled_batch, (iteration - 1) / settings.iterations)

    def after_step(iteration: int) -> None:
        trainer.after_step(iteration)
        if averaged is not None:
            ema_update(averaged, trainer.model(), settings.weight_average, iteration)

    return fit(trainer.trainable(), kept, settings, step, lambda: mean_dice_with_tumor(kept, val_volumes),
               f"ssl_train {method}", precision, after_step, progress)


def batch_sampler(labeled: SliceSet, settings: TrainSettings, truth_share: float | None, rng: np.random.Generator):
    """The labeled batches' sampler: ground truth and pseudo labels drawn apart when both are present and a
    share is asked for -- in round 0's batch shape when the list holds negatives (ShapeKeepingBatchSampler) --
    else one pool (round 0 draws exactly as before rounds existed)."""
    if truth_share is not None and labeled.pseudo is not None and labeled.pseudo.any():
        if labeled.negative is not None and labeled.negative.any():
            return ShapeKeepingBatchSampler(labeled.has_tumor(), ~labeled.pseudo, settings.batch_size,
                                            settings.foreground_fraction, truth_share, rng)
        return StratifiedBatchSampler(labeled.has_tumor(), ~labeled.pseudo, settings.batch_size,
                                      settings.foreground_fraction, truth_share, rng)
    return ForegroundBatchSampler(labeled.has_tumor(), settings.batch_size, settings.foreground_fraction, rng)


def _frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    averaged = copy.deepcopy(model)
    for parameter in averaged.parameters():
        parameter.requires_grad_(False)
    return averaged
