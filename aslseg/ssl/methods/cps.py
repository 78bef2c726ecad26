"""Cross Pseudo Supervision (Chen et al. 2021): two differently initialised networks, each supervised on
unlabeled slices by the other's hard (argmax) prediction, plus the usual supervised loss on both."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from aslseg.ssl.methods.base import Batch, Method
from aslseg.seg2d.network import build_network


class CrossPseudoSupervision(Method):
    uses_unlabeled = True

    def __init__(self, settings, device: str):
        super().__init__(settings, device)
        self.partner = build_network(settings.features, bf16=settings.bf16).to(device)  # initialised from the next RNG draws

    # start_from sets the student only: the partner keeps its own random initialisation, the difference
    # between the two networks that cross supervision needs.

    def trainable(self):
        return list(self.student.parameters()) + list(self.partner.parameters())

    def loss(self, labeled: Batch, unlabeled: Batch | None, progress: float):
        supervised = self.supervised_loss(self.student(labeled.image), labeled.label, labeled.region) + \
            self.supervised_loss(self.partner(labeled.image), labeled.label, labeled.region)
        logits_a, logits_b = self.student(unlabeled.image), self.partner(unlabeled.image)
        pseudo_a, pseudo_b = logits_a.detach().argmax(dim=1), logits_b.detach().argmax(dim=1)
        cross = F.cross_entropy(logits_a, pseudo_b) + F.cross_entropy(logits_b, pseudo_a)
        weight = self.consistency_weight(progress)
        return supervised + weight * cross, {"supervised": supervised.item(), "cross": cross.item(), "weight": weight}
