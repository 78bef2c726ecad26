"""Reliability thresholding: which pseudo-labeled slices of a round are trusted enough to train on.

A slice is reliable when the final pseudo label PL3 (after SAM and the adaptation network) still agrees with
the network's own first guess PL1: two models that see the slice differently reached the same mask, and a
mask both of them would draw is less likely to be a hallucinated or missed lesion. Agreement is the Dice of
PL1 and PL3 on the slice, with one decision this module makes for everyone:

=========  =========  =========  ==============================================
PL1        PL3        agreement  why
=========  =========  =========  ==============================================
tumor      tumor      Dice       normal case
tumor      empty      0          SAM/AN removed what SS saw: they disagree
empty      tumor      0          AN added a lesion SS did not see: they disagree
empty      empty      1          they agree there is no tumor (never NaN)
=========  =========  =========  ==============================================

Both-empty slices are perfect agreements, so a threshold alone would accept every tumor-free slice of the
unlabeled volumes and flood the next round with negatives; `select(accept_empty=False)` keeps them out.

The paper's criterion is the agreement alone. Our default score is the weighted mean of three terms: the
agreement, SAM's predicted IoU, and the confidence of the model that drew the final label (AN's; SS's own when
there is no SAM). A false component that SAM enlarges and AN keeps still agrees with PL1, but SAM rates its
mask lower and AN is less sure of it. So the top of the ranking is cleaner, and the few val slices can
certify a stricter precision (docs/BENCHMARKS.md, session 17):
``score = sum(w_t * x_t) / sum(w_t)`` over the terms t whose value x_t is known on that slice. A term is
unknown where its value is NaN -- SAM's IoU on a slice SAM was not prompted on (PL1 empty) -- and its weight
is then left out of both sums, i.e. the other weights are renormalised. Agreement and confidence are known on
every slice, and one of their weights must be positive, so the score is defined and stays in [0, 1]. Without
SAM (the "PL1 thresholded alone" ablation) the final label is PL1 itself, agreement is trivially 1, and the
score is the confidence alone (its SAM IoU weight must be 0). A term given a positive weight but not passed at
all is an error, not a renormalisation: the configured formula would silently not be the one scored.

Which scores are high enough? The paper fixes a threshold. Rule ``calibrated`` instead runs the same stages
on the val volumes, whose labels training already reads, scores their slices the same way, and takes the
lowest threshold at which at least ``precision`` of the accepted val slices carry a right label (slice Dice
>= aslseg.metrics.CORRECT_SLICE_DICE), over at least ``min_val_slices`` of them (`calibrate_threshold`).
A few val volumes give a few dozen slices, so the share right is itself uncertain (sd ~0.09 over 30 slices):
it must reach ``precision`` at the one-sided ``precision_confidence`` lower bound (Wilson's), not just as a
point estimate, or the unlabeled slices will miss the target about half the time. With many val slices the
bound approaches the share itself. When no threshold reaches it, nothing is accepted: a round whose pseudo
labels cannot be told apart from wrong ones then trains on what it had, instead of on mostly wrong labels.

From round 1 on, the unlabeled slices still to be scored are those no earlier round accepted: the ones the
earlier thresholds judged best are gone, and what is left is harder. The val slices are thinned the same
way -- each round's calibration leaves out the val slices an earlier round's threshold accepted
(``val_taken`` in calibration.json) -- so the threshold is found on val slices like the ones it is applied to.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from aslseg.dice import dice_from_counts, pooled_dice

TERMS = ("agreement", "sam_iou", "confidence")
SELECTION_RULES = ("threshold", "top_fraction", "calibrated")
SCORE_COLUMNS = (
    "case", "position", "pl1_pixels", "pl3_pixels", "both_empty", "agreement", "sam_iou", "confidence", "score",
)


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two binary masks of one slice (any nonzero value is tumor); 1.0 when both are empty, 0.0 when
    exactly one is."""
    return pooled_dice(a, b)


def _weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    """Every term's weight (0 for terms not named); None means agreement alone."""
    weights = {"agreement": 1.0} if weights is None else dict(weights)
    unknown = sorted(set(weights) - set(TERMS))
    if unknown:
        raise ValueError(f"unknown score terms {unknown}; known: {list(TERMS)}")
    full = {term: float(weights.get(term, 0.0)) for term in TERMS}
    if any(not math.isfinite(w) or w < 0 for w in full.values()):
        raise ValueError(f"score weights must be finite and >= 0, got {full}")
    if full["agreement"] <= 0 and full["confidence"] <= 0:
        raise ValueError("the agreement or the confidence weight must be > 0: they are known on every slice")
    return full


def _per_slice(name: str, values: dict | None, shapes: dict[int, int], clip: bool) -> dict[int, np.ndarray]:
    """One float per slice of every case, NaN where unknown. SAM's IoU head is a regression and may stray a
    little outside [0, 1], so it is clipped (`clip`); a confidence outside [0, 1] is a bug and is refused."""
    if values is None:
        return {case: np.full(n, np.nan) for case, n in shapes.items()}
    if set(values) != set(shapes):
        raise ValueError(f"{name} covers cases {sorted(values)}, the pseudo labels {sorted(shapes)}")
    out = {}
    for case, n in shapes.items():
        v = np.asarray(values[case], dtype=np.float64).reshape(-1)
        if len(v) != n:
            raise ValueError(f"case {case}: {name} has {len(v)} values for {n} slices")
        if clip:
            v = np.clip(v, 0.0, 1.0)  # NaN stays NaN
        elif np.any((v < 0) | (v > 1)):
            raise ValueError(f"case {case}: {name} must lie in [0, 1] (or be NaN)")
        out[case] = v
    return out


def score_slices(
    pl1: dict[int, np.ndarray],
    pl3: dict[int, np.ndarray],
    sam_iou: dict[int, np.ndarray] | None = None,
    confidence: dict[int, np.ndarray] | None = None,
    weights: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """One row per slice of every case, sorted by (case, position), with the columns of `SCORE_COLUMNS`.

    `pl1` and `pl3` map case -> (slices, H, W) mask of the same cases and shapes; `sam_iou` and
    `confidence` map case -> (slices,) float, NaN where unknown. `weights` maps terms (`TERMS`) to weights,
    terms not named weigh 0; None scores agreement alone. See the module docstring for the score."""
    if set(pl1) != set(pl3):
        raise ValueError(f"PL1 covers cases {sorted(pl1)}, PL3 {sorted(pl3)}")
    w = _weights(weights)
    for term, values in (("sam_iou", sam_iou), ("confidence", confidence)):
        if w[term] > 0 and values is None:
            raise ValueError(f"{term} has weight {w[term]} but was not given")
    cases = sorted(int(c) for c in pl1)
    frames = []
    shapes = {}
    for case in cases:
        a, b = np.asarray(pl1[case]).astype(bool, copy=False), np.asarray(pl3[case]).astype(bool, copy=False)
        if a.ndim != 3 or a.shape != b.shape:
            raise ValueError(f"case {case}: PL1 {a.shape} and PL3 {b.shape} must be (slices, H, W) of equal shape")
        shapes[case] = len(a)
        n1, n3 = a.reshape(len(a), -1).sum(axis=1), b.reshape(len(b), -1).sum(axis=1)
        both = (a & b).reshape(len(a), -1).sum(axis=1)
        frames.append(pd.DataFrame({
            "case": np.full(len(a), case, dtype=np.int64),
            "position": np.arange(len(a), dtype=np.int64),
            "pl1_pixels": n1.astype(np.int64),
            "pl3_pixels": n3.astype(np.int64),
            "both_empty": (n1 == 0) & (n3 == 0),
            "agreement": dice_from_counts(both, n1 + n3),
        }))
    iou = _per_slice("sam_iou", sam_iou, shapes, clip=True)
    confidence = _per_slice("confidence", confidence, shapes, clip=False)
    if not frames:
        dtypes = {"case": np.int64, "position": np.int64, "pl1_pixels": np.int64, "pl3_pixels": np.int64,
                  "both_empty": bool}
        return pd.DataFrame({c: pd.Series(dtype=dtypes.get(c, np.float64)) for c in SCORE_COLUMNS})
    table = pd.concat(frames, ignore_index=True)
    table["sam_iou"] = np.concatenate([iou[c] for c in cases])
    table["confidence"] = np.concatenate([confidence[c] for c in cases])
    terms = table[list(TERMS)].to_numpy(dtype=np.float64)
    weight = np.where(np.isnan(terms), 0.0, np.array([w[t] for t in TERMS]))
    table["score"] = (weight * np.nan_to_num(terms)).sum(axis=1) / weight.sum(axis=1)
    return table[list(SCORE_COLUMNS)]


def _eligible(scores: pd.DataFrame, accept_empty: bool) -> np.ndarray:
    """The slices a rule may accept: scored ones, and without `accept_empty` only those where PL1 or PL3 has
    tumor (a both-empty slice would only add a negative)."""
    eligible = np.ones(len(scores), dtype=bool) if accept_empty else ~scores["both_empty"].to_numpy(dtype=bool)
    return eligible & ~np.isnan(scores["score"].to_numpy(dtype=np.float64))


def select(
    scores: pd.DataFrame,
    rule: str,
    threshold: float | None,
    fraction: float | None,
    accept_empty: bool,
) -> pd.DataFrame:
    """A copy of `scores` (from `score_slices`) with a boolean `accepted` column.

    Eligible slices are all slices, or, without `accept_empty`, those where PL1 or PL3 has tumor.
    `rule="threshold"` accepts eligible slices with score >= `threshold`; so does `rule="calibrated"`, with the
    threshold `calibrate_threshold` found on the val volumes, or nothing when it found none (None).
    `rule="top_fraction"` accepts the floor(`fraction` * eligible) best-scored eligible slices -- never more than
    the fraction asked for -- and breaks ties by (case, position), lowest first: arbitrary, but the same on
    every run and machine. The parameter the rule does not use is ignored."""
    if rule not in SELECTION_RULES:
        raise ValueError(f"unknown selection rule {rule!r}; known: {list(SELECTION_RULES)}")
    missing = sorted({"case", "position", "both_empty", "score"} - set(scores.columns))
    if missing:
        raise ValueError(f"scores lack the columns {missing}")
    if scores.duplicated(["case", "position"]).any():
        raise ValueError("scores hold a (case, position) more than once")
    out = scores.copy()
    eligible = _eligible(out, accept_empty)
    score = out["score"].to_numpy(dtype=np.float64)
    if rule == "calibrated" and threshold is None:
        out["accepted"] = np.zeros(len(out), dtype=bool)
        return out
    if rule in ("threshold", "calibrated"):
        if threshold is None or not math.isfinite(threshold):
            raise ValueError(f"rule {rule!r} needs a finite threshold, got {threshold!r}")
        out["accepted"] = eligible & (np.nan_to_num(score, nan=-np.inf) >= threshold)
        return out
    if fraction is None or not 0 < fraction <= 1:
        raise ValueError(f"rule 'top_fraction' needs a fraction in (0, 1], got {fraction!r}")
    candidates = out.loc[eligible, ["case", "position", "score"]]
    n = math.floor(fraction * len(candidates) + 1e-9)  # 1e-9: 0.29 * 100 is 28.999... in floating point
    ranked = candidates.sort_values(["score", "case", "position"], ascending=[False, True, True], kind="mergesort")
    accepted = np.zeros(len(out), dtype=bool)
    accepted[out.index.get_indexer(ranked.index[:n])] = True
    out["accepted"] = accepted
    return out


def precision_lower_bound(right: np.ndarray, accepted: np.ndarray, confidence: float) -> np.ndarray:
    """One-sided lower bound at `confidence` of the share right, `right` of `accepted` slices (elementwise):
    Wilson's score interval, which stays inside [0, 1] and is sensible at a handful of slices. Confidence 0.5
    gives the share itself."""
    z = NormalDist().inv_cdf(confidence)
    n = np.asarray(accepted, dtype=np.float64)
    share = np.asarray(right, dtype=np.float64) / n
    spread = z * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    return (share + z * z / (2 * n) - spread) / (1 + z * z / n)


def calibrate_threshold(
    val_scores: pd.DataFrame, right: np.ndarray, precision: float, min_val_slices: int, accept_empty: bool,
    confidence: float = 0.5,
) -> dict:
    """The lowest score threshold at which at least `precision` of the accepted val slices are right, at the
    one-sided `confidence` lower bound of that share (0.5: the share itself).

    `val_scores` scores the val volumes' slices as `score_slices` scores the unlabeled ones; `right` (one bool
    per row) says whether a slice's final label is right (slice Dice with the val ground truth >=
    aslseg.metrics.CORRECT_SLICE_DICE). Eligibility is `select`'s. Candidate thresholds are the eligible
    slices' scores; one accepts every eligible slice scoring at least as much, and counts only if that is at
    least `min_val_slices` slices (a precision over two slices says little). The lowest such threshold keeps
    the most slices. Returns the threshold (None: no threshold is precise enough, accept nothing), the counts
    behind it and the whole precision curve, for calibration.json."""
    if not 0 < precision <= 1 or min_val_slices < 1:
        raise ValueError(f"calibration needs precision in (0, 1] and min_val_slices >= 1, got {precision}, {min_val_slices}")
    if not 0.5 <= confidence < 1:
        raise ValueError(f"calibration needs a confidence in [0.5, 1), got {confidence}")
    right = np.asarray(right, dtype=bool).reshape(-1)
    if len(right) != len(val_scores):
        raise ValueError(f"{len(right)} right flags for {len(val_scores)} scored val slices")
    eligible = _eligible(val_scores, accept_empty)
    score = val_scores["score"].to_numpy(dtype=np.float64)[eligible]
    order = np.argsort(-score, kind="mergesort")
    score, right = score[order], right[eligible][order]
    accepted = np.arange(1, len(score) + 1)
    accepted_right = np.cumsum(right)
    cut = np.r_[score[1:] != score[:-1], True][: len(score)]  # a threshold takes every slice of equal score
    curve = [{"threshold": float(score[k]), "accepted": int(accepted[k]), "right": int(accepted_right[k])}
             for k in np.flatnonzero(cut)]
    bound = precision_lower_bound(accepted_right, accepted, confidence)
    good = cut & (accepted >= min_val_slices) & (bound >= precision - 1e-9)
    best = int(np.flatnonzero(good)[-1]) if good.any() else None
    return {
        "threshold": None if best is None else float(score[best]),
        "precision_target": float(precision),
        "precision_confidence": float(confidence),
        "min_val_slices": int(min_val_slices),
        "val_eligible": int(len(score)),
        "val_right": int(right.sum()),
        "val_accepted": 0 if best is None else int(accepted[best]),
        "val_accepted_right": 0 if best is None else int(accepted_right[best]),
        "curve": curve,
    }


def among(scores: pd.DataFrame, slices) -> np.ndarray:
    """Per row of `scores`: is its (case, position) among `slices` (pairs)?"""
    pairs = pd.MultiIndex.from_tuples([(int(c), int(p)) for c, p in slices], names=["case", "position"])
    return pd.MultiIndex.from_frame(scores[["case", "position"]].astype(np.int64)).isin(pairs)


def without_slices(scores: pd.DataFrame, slices) -> pd.DataFrame:
    """The rows of `scores` whose (case, position) is not among `slices` (pairs), renumbered from 0."""
    return scores[~among(scores, slices)].reset_index(drop=True)


def calibrate_round(val_scores: pd.DataFrame, right: np.ndarray, settings: "SelectSettings",
                    taken: list[list[int]]) -> dict:
    """Rule calibrated for one round: `calibrate_threshold` on the val slices that no earlier round's threshold
    accepted (`taken`, [case, position] pairs: the previous round's ``val_taken``; empty in round 0), so the
    val slices thin out as the unlabeled ones do. Returns calibration.json's fields, with ``val_taken`` now
    also holding the val slices this round's threshold accepts."""
    left = ~among(val_scores, taken)
    remaining = val_scores[left].reset_index(drop=True)
    found = calibrate_threshold(remaining, np.asarray(right, dtype=bool)[left], settings.precision,
                                settings.min_val_slices, settings.accept_empty, settings.precision_confidence)
    accepted = select(remaining, "calibrated", found["threshold"], None, settings.accept_empty)
    newly = accepted.loc[accepted["accepted"], ["case", "position"]].to_numpy(dtype=np.int64).tolist()
    return {"rule": "calibrated", **found, "val_taken_before": len(taken),
            "val_taken": [list(map(int, pair)) for pair in taken] + newly}


CALIBRATION_KEYS = ("precision", "precision_confidence", "min_val_slices")
FIXED_RULE_KEYS = ("threshold", "fraction")


def selection_settings(select: dict) -> dict:
    """The part of config `select` a selection depends on: the calibration keys under rule "calibrated" (and
    not the fixed threshold or fraction), the others under the other rules. It names a selection and reaches
    rule score, so editing `precision` reruns no threshold selection and editing `threshold` no calibrated one
    (and a threshold selection keeps the name it had before the calibrated rule existed). `negatives` enters
    only when on, so a selection keeps the name it had before that option existed."""
    unused = FIXED_RULE_KEYS if select.get("rule") == "calibrated" else CALIBRATION_KEYS
    return {key: value for key, value in select.items()
            if key not in unused and not (key == "negatives" and value is False)}


@dataclass(frozen=True)
class SelectSettings:
    """Config `select` (documented in the config schema, which also holds the defaults). The None defaults
    here are for the keys a rule does not read (`selection_settings` leaves them out); `from_config` requires every
    other key, so a key missing from the config is an error rather than a silent default."""

    rule: str  # "threshold", "top_fraction" or "calibrated"
    accept_empty: bool  # accept slices where PL1 and PL3 are both empty
    agreement_weight: float
    sam_iou_weight: float
    confidence_weight: float
    threshold: float | None = None  # minimum score, rule "threshold"
    fraction: float | None = None  # share of eligible slices accepted, rule "top_fraction"
    precision: float | None = None  # share of accepted val slices that must be right, rule "calibrated"
    precision_confidence: float | None = None  # confidence of the lower bound that must reach `precision`
    min_val_slices: int | None = None  # fewest val slices a calibrated threshold may rest on
    negatives: bool = False  # the next round's list also takes tumor-free pseudo labels (aslseg/select/expand.py)

    def __post_init__(self):
        if self.rule not in SELECTION_RULES:
            raise ValueError(f"select.rule must be one of {list(SELECTION_RULES)}, got {self.rule!r}")
        if self.rule == "threshold" and (self.threshold is None or not 0 <= self.threshold <= 1):
            raise ValueError(f"select.threshold must be in [0, 1] for rule 'threshold', got {self.threshold!r}")
        if self.rule == "top_fraction" and (self.fraction is None or not 0 < self.fraction <= 1):
            raise ValueError(f"select.fraction must be in (0, 1] for rule 'top_fraction', got {self.fraction!r}")
        if self.rule == "calibrated" and (self.precision is None or not 0 < self.precision <= 1):
            raise ValueError(f"select.precision must be in (0, 1] for rule 'calibrated', got {self.precision!r}")
        if self.rule == "calibrated" and (self.precision_confidence is None or not 0.5 <= self.precision_confidence < 1):
            raise ValueError("select.precision_confidence must be in [0.5, 1) for rule 'calibrated', "
                             f"got {self.precision_confidence!r}")
        if self.rule == "calibrated" and (not isinstance(self.min_val_slices, int) or self.min_val_slices < 1):
            raise ValueError(
                f"select.min_val_slices must be an integer >= 1 for rule 'calibrated', got {self.min_val_slices!r}")
        for name in ("accept_empty", "negatives"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"select.{name} must be true or false, got {getattr(self, name)!r}")
        _weights(self.weights)

    @property
    def weights(self) -> dict[str, float]:
        """The `weights` argument of `score_slices`."""
        return {"agreement": self.agreement_weight, "sam_iou": self.sam_iou_weight,
                "confidence": self.confidence_weight}

    @classmethod
    def from_config(cls, section: dict) -> "SelectSettings":
        """From config["select"] (already filled with schema defaults), whole or narrowed by `selection_settings`:
        every key it keeps required, unknown keys rejected -- a misspelt threshold silently ignored would
        change which slices are trained on."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown, missing = set(section) - names, names - set(section)
        missing -= set(FIXED_RULE_KEYS if section.get("rule") == "calibrated" else CALIBRATION_KEYS)
        missing -= {"negatives"}  # selection_settings leaves it out when off
        if unknown or missing:
            raise KeyError(f"select settings: unknown {sorted(unknown)}, missing {sorted(missing)}")
        return cls(**section)
