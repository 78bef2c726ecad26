"""Bidirectional Copy-Paste (Bai et al., CVPR 2023), 2D.

Pre-training: labeled pairs mixed by copy-paste (skipped when training starts from a trained model).
Self-training: an EMA teacher (initialised from the pre-trained network) labels the unlabeled slices; a box of
2/3 H x 2/3 W at a random place swaps content between a labeled and an unlabeled slice in both directions, and
the loss weighs the pseudo-labeled region by `bcp_unlabeled_weight`. Unlike the reference, every tumor
component of a pseudo-label is kept (liver tumors are multifocal; keeping only the largest would teach the
network to miss lesions). The reference's largest component also keeps a weak teacher's false specks out of
the student's targets; `bcp_confidence` does that per pixel instead: pseudo-labeled pixels count only where
the teacher is that sure of its label.
"""

from __future__ import annotations

import copy

import torch

from aslseg.ssl.methods.base import Batch, Method
from aslseg.ssl.schedules import ema_update


def box_mask(shape: tuple[int, ...], fraction: float, generator: torch.Generator, device) -> torch.Tensor:
    """(1, 1, H, W) mask: 0 inside one random box of fraction*H x fraction*W, 1 outside."""
    height, width = shape[-2:]
    box_h, box_w = int(height * fraction), int(width * fraction)
    top = int(torch.randint(0, height - box_h + 1, (1,), generator=generator))
    left = int(torch.randint(0, width - box_w + 1, (1,), generator=generator))
    mask = torch.ones((1, 1, height, width), device=device)
    mask[..., top : top + box_h, left : left + box_w] = 0
    return mask


def paste(outside: torch.Tensor, inside: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`inside` within the box of `mask` (where it is 0), `outside` elsewhere: how BCP mixes two slices."""
    return outside * mask + inside * (1 - mask)


class BidirectionalCopyPaste(Method):
    uses_unlabeled = True

    def __init__(self, settings, device: str):
        super().__init__(settings, device)
        self.teacher: torch.nn.Module | None = None
        self.pretrained = False  # started from a trained model (start_from): no copy-paste pre-training
        self.generator = torch.Generator().manual_seed(int(torch.initial_seed() % 2**31))

    def mixed_loss(self, logits, target, from_first, weight_first, weight_second, region):
        """Loss of a mixed slice whose pixels come from the first source where `from_first` is 1, counted
        only inside `region`."""
        first = from_first.expand_as(target).float() * region
        second = (1 - from_first).expand_as(target).float() * region
        return weight_first * self.region_loss(logits, target, first) + weight_second * self.region_loss(
            logits, target, second
        )

    def start_from(self, state_dict: dict) -> None:
        """Pre-training exists to give the teacher a start; a trained model is one, so self-training begins
        at once, its teacher a copy of that model."""
        super().start_from(state_dict)
        self.pretrained = True

    def unlabeled_batch_size(self) -> int:
        return self.settings.batch_size  # each labeled slice is mixed with one unlabeled slice

    def loss(self, labeled: Batch, unlabeled: Batch | None, progress: float):
        image_a, image_b = labeled.image.chunk(2)
        label_a, label_b = labeled.label.chunk(2)
        mask = box_mask(labeled.image.shape, self.settings.bcp_box, self.generator, labeled.image.device)
        if not self.pretrained and progress < self.settings.bcp_pretrain:
            # Copy-paste within labeled pairs: the box of b pasted into a.
            mixed = paste(image_a, image_b, mask)
            target = paste(label_a, label_b, mask).long()
            region = None if labeled.region is None else paste(*labeled.region.chunk(2), mask)
            loss = self.supervised_loss(self.student(mixed), target, region)
            return loss, {"pretrain": loss.item()}
        if self.teacher is None:  # the self-training phase starts from the pre-trained network
            self.teacher = copy.deepcopy(self.student)
            for parameter in self.teacher.parameters():
                parameter.requires_grad_(False)
        unlabeled_a, unlabeled_b = unlabeled.image.chunk(2)
        pseudo_a, trusted_a = self.pseudo_label(unlabeled_a)
        pseudo_b, trusted_b = self.pseudo_label(unlabeled_b)
        # Regions of counted pixels, mixed as the images are: the liver (ones without `loss_in_liver`), and on
        # the pseudo-labeled side only where the teacher is sure (with `bcp_confidence`).
        everywhere = torch.ones_like(labeled.image)
        region_a, region_b = (labeled.region if labeled.region is not None else everywhere).chunk(2)
        unlabeled_region = unlabeled.region if unlabeled.region is not None else everywhere[: len(unlabeled.image)]
        unlabeled_region_a, unlabeled_region_b = unlabeled_region.chunk(2)
        # pseudo labels, like every prediction of SS(.), lie inside the liver
        pseudo_a, pseudo_b = pseudo_a * unlabeled_region_a.long(), pseudo_b * unlabeled_region_b.long()
        if trusted_a is not None:
            unlabeled_region_a, unlabeled_region_b = unlabeled_region_a * trusted_a, unlabeled_region_b * trusted_b
        region_1 = paste(unlabeled_region_a, region_a, mask)
        region_2 = paste(region_b, unlabeled_region_b, mask)
        # Direction 1: unlabeled outside the box, labeled inside; direction 2 the other way round.
        mixed_1 = paste(unlabeled_a, image_a, mask)
        target_1 = paste(pseudo_a, label_a, mask).long()
        mixed_2 = paste(image_b, unlabeled_b, mask)
        target_2 = paste(label_b, pseudo_b, mask).long()
        weight = self.settings.bcp_unlabeled_weight
        loss_1 = self.mixed_loss(self.student(mixed_1), target_1, mask, weight, 1.0, region_1)
        loss_2 = self.mixed_loss(self.student(mixed_2), target_2, mask, 1.0, weight, region_2)
        loss = loss_1 + loss_2
        return loss, {"self_training": loss.item()}

    @torch.no_grad()
    def pseudo_label(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The teacher's labels of `images` ((B, 1, H, W) long) and, with `bcp_confidence`, the pixels where
        it is that sure of them (float 0/1; None: every pixel counts)."""
        logits = self.teacher(images)
        label = logits.argmax(dim=1, keepdim=True)
        if self.settings.bcp_confidence is None:
            return label, None
        confidence = torch.softmax(logits.float(), dim=1).amax(dim=1, keepdim=True)
        return label, (confidence >= self.settings.bcp_confidence).float()

    def after_step(self, step: int) -> None:
        if self.teacher is not None:
            ema_update(self.teacher, self.student, self.settings.ema_decay, step)
