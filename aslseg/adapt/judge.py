"""Is AN worth using in this round? Judged on the val volumes' *real* pseudo labels.

AN is trained and validated on synthetic pseudo labels (corrupted ground truth), and there it usually wins;
on a round's real PL2 it can lose (docs/BENCHMARKS.md: PL2 -> PL3 Dice 0.57 -> 0.49 on a phantom where AN
gained on its synthetic val). The val volumes' labels are read by training anyway, so each round runs its
own Stages I-II on them, refines their PL2 with AN, and compares both with the truth: AN's PL3 is the round's
final pseudo label only where it is closer to the truth than the PL2 it started from; otherwise PL2 is.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from aslseg.dice import pooled_dice


def judge_adaptation(pl2: Mapping[int, np.ndarray], refined: Mapping[int, np.ndarray],
                     truth: Mapping[int, np.ndarray]) -> dict:
    """Pooled Dice over every slice of the val volumes of PL2 and of AN's refinement of it, and `use_an`:
    whether AN's is strictly higher (a tie keeps PL2, the simpler label)."""
    if not (set(pl2) == set(refined) == set(truth)) or not pl2:
        raise ValueError(f"PL2 covers val cases {sorted(pl2)}, AN {sorted(refined)}, the labels {sorted(truth)}")
    for case in pl2:
        if not (np.shape(pl2[case]) == np.shape(refined[case]) == np.shape(truth[case])):
            raise ValueError(f"val case {case}: PL2 {np.shape(pl2[case])}, AN {np.shape(refined[case])} and "
                             f"label {np.shape(truth[case])} differ in shape")
    cases = sorted(pl2)
    stack = lambda masks: np.concatenate([np.asarray(masks[c]) > 0 for c in cases])  # noqa: E731
    target = stack(truth)
    pl2_dice, an_dice = pooled_dice(stack(pl2), target), pooled_dice(stack(refined), target)
    return {"val_cases": cases, "val_slices": int(len(target)), "pl2_val_dice": pl2_dice, "an_val_dice": an_dice,
            "use_an": bool(an_dice > pl2_dice)}
