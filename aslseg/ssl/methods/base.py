"""What every SS(.) training method provides to the shared loop in aslseg/ssl/train.py."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss, DiceLoss

from aslseg.seg2d.network import build_network
from aslseg.ssl.schedules import sigmoid_rampup


@dataclass
class Batch:
    image: torch.Tensor  # (B, 1, H, W) float
    label: torch.Tensor | None = None  # (B, 1, H, W) long in {0, 1}; None for unlabeled slices
    region: torch.Tensor | None = None  # (B, 1, H, W) float: the liver, where losses count (ssl.loss_in_liver)


class Method:
    """One SSL paradigm: the networks it trains, its loss for a labeled (+ unlabeled) batch, and the model
    that predicts. Subclasses set `uses_unlabeled` when the loop must also draw unlabeled batches."""

    uses_unlabeled = False

    def __init__(self, settings, device: str):
        self.settings = settings
        self.device = device
        self.student = build_network(settings.features, bf16=settings.bf16).to(device)
        self.dice_ce = DiceCELoss(
            to_onehot_y=True,
            softmax=True,
            include_background=settings.dice_include_background,
            batch=settings.batch_dice,
        )
        self.region_dice = DiceLoss(include_background=False, batch=True)

    def supervised_loss(self, logits: torch.Tensor, label: torch.Tensor, region: torch.Tensor | None = None):
        """Dice + cross-entropy of (B, 2, H, W) logits against (B, 1, H, W) labels; with `region`, over its
        pixels only (SS(.) predicts tumor only inside the liver, so elsewhere nothing is to be learned)."""
        if region is None:
            return self.dice_ce(logits, label)
        return self.region_loss(logits, label, region)

    def region_loss(self, logits: torch.Tensor, target: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
        """Dice + CE over the pixels where `region` is 1 (target: (B, 1, H, W) long)."""
        ce = (F.cross_entropy(logits, target[:, 0], reduction="none") * region[:, 0]).sum() / (region.sum() + 1e-6)
        onehot = F.one_hot(target[:, 0], 2).permute(0, 3, 1, 2).float()
        dice = self.region_dice(torch.softmax(logits, dim=1) * region, onehot * region)
        return dice + ce

    def start_from(self, state_dict: dict) -> None:
        """Begin from a trained SS(.)'s weights instead of a random initialisation (`loop.warm_start`: a round
        >= 1 continues from the model that pseudo-labeled its list)."""
        self.model().load_state_dict(state_dict)

    def trainable(self) -> list[torch.nn.Parameter]:
        return list(self.student.parameters())

    def unlabeled_batch_size(self) -> int:
        """Unlabeled slices the loop draws per step (for methods that use them)."""
        return self.settings.unlabeled_batch_size

    def loss(self, labeled: Batch, unlabeled: Batch | None, progress: float) -> tuple[torch.Tensor, dict]:
        """Loss to minimise at `progress` (iterations done / total) and named parts for the log."""
        raise NotImplementedError

    def after_step(self, step: int) -> None:
        """Called after each optimizer step (EMA teachers update here)."""

    def model(self) -> torch.nn.Module:
        """The network whose weights are saved and used for prediction."""
        return self.student

    def consistency_weight(self, progress: float) -> float:
        """The unsupervised loss weight, ramped up over the first `rampup` share of training."""
        return self.settings.consistency * sigmoid_rampup(progress, self.settings.rampup)
