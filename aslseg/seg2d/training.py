"""The one training loop of the seg2d U-Nets (SS(.) with any SSL method, AN(.), the liver model): AdamW with
a polynomially decayed learning rate, a validation every `val_every` steps and at the last, the weights best
on validation kept. What a stage trains on and how it scores a step is the `step` and `validate` it passes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch

from aslseg.precision import Precision
from aslseg.progress import Progress
from aslseg.seg2d.settings import LoopSettings


@dataclass
class TrainResult:
    state_dict: dict  # the kept weights, on the CPU
    best_iteration: int
    best_val_dice: float
    history: list[dict] = field(default_factory=list)  # per validation: iteration, loss (and its parts), val_dice
    seconds: float = 0.0
    precision: Precision | None = None  # what the network ran in (the bf16 setting resolved for the device)


def cpu_copy(model: torch.nn.Module) -> dict:
    return {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}


def fit(parameters: Iterable[torch.nn.Parameter], kept: torch.nn.Module, settings: LoopSettings,
        step: Callable[[int], tuple[torch.Tensor, dict]], validate: Callable[[], float], name: str,
        precision: Precision | None = None, after_step: Callable[[int], None] | None = None,
        progress: bool = True) -> TrainResult:
    """Optimize `parameters` for settings.iterations steps. `step(iteration)` draws a batch and returns its loss
    and named loss parts to log; `after_step(iteration)` follows each optimizer step (an EMA teacher's update);
    `validate()` scores `kept`, the network whose best weights are returned."""
    optimizer = torch.optim.AdamW(parameters, lr=settings.lr, weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=settings.iterations, power=0.9)
    best = TrainResult(cpu_copy(kept), 0, -1.0, precision=precision)
    start = time.perf_counter()
    bar = Progress(settings.iterations, name, "iterations", enabled=progress)
    for iteration in range(1, settings.iterations + 1):
        loss, parts = step(iteration)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if after_step is not None:
            after_step(iteration)
        bar.advance()
        if iteration % settings.val_every == 0 or iteration == settings.iterations:
            dice = validate()
            best.history.append({"iteration": iteration, "loss": loss.item(), **parts, "val_dice": dice})
            bar.note = f"loss {loss.item():.3f}, val Dice {dice:.3f}"
            if dice > best.best_val_dice:
                best.state_dict, best.best_iteration, best.best_val_dice = cpu_copy(kept), iteration, dice
    best.seconds = time.perf_counter() - start
    return best
