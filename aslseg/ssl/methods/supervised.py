"""Supervised baseline: labeled slices only (ground truth, and accepted pseudo-labels in later rounds)."""

from __future__ import annotations

from aslseg.ssl.methods.base import Batch, Method


class Supervised(Method):
    def loss(self, labeled: Batch, unlabeled: Batch | None, progress: float):
        loss = self.supervised_loss(self.student(labeled.image), labeled.label, labeled.region)
        return loss, {"supervised": loss.item()}
