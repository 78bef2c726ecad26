"""The labeled list of a round: which slices SS(.) trains on, and where each one's mask lives.

One row per slice, columns `LIST_COLUMNS`, sorted by (case, position) so that the CSV of a round diffs
cleanly against the previous one:

- ``source`` is ``ground_truth`` (a slice of a labeled volume), ``pseudo`` (accepted by reliability
  thresholding) or ``negative`` (with `select.negatives`: a liver slice of an unlabeled volume whose final
  pseudo label is empty and which the selection did not accept, a tumor-free pseudo label; see
  `tumor_free_slices`);
- ``round_accepted`` is the round whose selection accepted the slice; slices accepted by round r's selection
  are in the list of round r + 1, so round 0 is a real acceptance round, and ground truth takes -1 (never
  accepted by a selection) rather than 0, which would be ambiguous;
- ``score`` is the reliability score the slice was accepted (or, a negative, scored) with, NaN (an empty CSV
  cell) for ground truth;
- ``label_file`` is the prepared label file of the case for ground truth, the PL3 artifact of the accepting
  round for pseudo labels and negatives.

The list only grows. A slice once accepted keeps its round, score and label file for good, even if a later
round scores it lower: later rounds predict on the slices still unlabeled, and re-deciding old slices would
make the training set of a round depend on more than the rounds before it. Labeled volumes are labeled as a
whole, so a pseudo label in a ground-truth case is always an error (it could only replace, or duplicate, a
ground-truth slice), as is one in a test or val volume (it would leak evaluation data into training).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

LIST_COLUMNS = ("case", "position", "source", "round_accepted", "score", "label_file")
GROUND_TRUTH, PSEUDO, NEGATIVE = "ground_truth", "pseudo", "negative"
SOURCES = (GROUND_TRUTH, PSEUDO, NEGATIVE)
GROUND_TRUTH_ROUND = -1


def _canonical(rows: pd.DataFrame) -> pd.DataFrame:
    rows = rows.astype({"case": np.int64, "position": np.int64, "round_accepted": np.int64, "score": np.float64})
    rows = rows.sort_values(["case", "position"], kind="mergesort").reset_index(drop=True)
    return rows[list(LIST_COLUMNS)]


def check_list(df: pd.DataFrame) -> None:
    """Raise ValueError unless `df` is a well-formed labeled list (as written, or read back from CSV)."""
    missing, extra = sorted(set(LIST_COLUMNS) - set(df.columns)), sorted(set(df.columns) - set(LIST_COLUMNS))
    if missing or extra:
        raise ValueError(f"labeled list: missing columns {missing}, unknown columns {extra}")
    if df.duplicated(["case", "position"]).any():
        raise ValueError("labeled list holds a (case, position) more than once")
    sources = set(df["source"])
    if not sources <= set(SOURCES):
        raise ValueError(f"labeled list: unknown sources {sorted(sources - set(SOURCES))}")
    truth = df["source"] == GROUND_TRUTH
    rounds = df["round_accepted"]
    if (rounds[truth] != GROUND_TRUTH_ROUND).any() or (rounds[~truth] < 0).any():
        raise ValueError(f"labeled list: ground truth must have round_accepted {GROUND_TRUTH_ROUND}, pseudo labels and "
                         "negatives >= 0")
    mixed = set(df.loc[truth, "case"]) & set(df.loc[~truth, "case"])
    if mixed:
        raise ValueError(f"labeled list: cases {sorted(mixed)} hold both ground truth and pseudo labels or negatives")


def initial_list(labeled_cases: dict[int, int], label_files: dict[int, str]) -> pd.DataFrame:
    """Round 0's list: every slice of every labeled volume, `labeled_cases` mapping case -> number of slices
    and `label_files` case -> its prepared label file."""
    missing = sorted(set(labeled_cases) - set(label_files))
    if missing:
        raise ValueError(f"no label file for labeled cases {missing}")
    frames = []
    for case in sorted(labeled_cases):
        n = int(labeled_cases[case])
        if n < 1:
            raise ValueError(f"labeled case {case} has {n} slices")
        frames.append(pd.DataFrame({
            "case": int(case), "position": np.arange(n), "source": GROUND_TRUTH,
            "round_accepted": GROUND_TRUTH_ROUND, "score": np.nan, "label_file": str(label_files[case]),
        }))
    if not frames:
        raise ValueError("no labeled cases: round 0 needs at least one labeled volume")
    return _canonical(pd.concat(frames, ignore_index=True))


def expand(
    previous: pd.DataFrame,
    selection: pd.DataFrame,
    round_index: int,
    pl3_file_of_case: dict[int, str],
    forbidden_cases: set[int],
    negatives: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Round `round_index` + 1's list: `previous` (round `round_index`'s list) unchanged, plus the slices that
    `selection` (from `reliability.select`) accepted and that the list does not hold yet, as pseudo labels
    with their score and `pl3_file_of_case[case]`. An accepted slice already in the list keeps its row.

    `negatives` (case, position, score; from `tumor_free_slices`) join as source ``negative`` -- but only when the
    round accepted at least one new slice: they restore the batch shape that the accepted slices, all with
    tumor, would tilt (aslseg/seg2d/sampling.py), and a round that accepted nothing has nothing to balance
    (its list stays the previous one, so the round is not retrained). Slices already listed or accepted are
    not added twice.

    Raises ValueError when an accepted slice or a negative belongs to `forbidden_cases` (test and val volumes)
    or to a ground-truth case, when `previous` already holds slices of this round or later (the list was
    expanded twice, or is the wrong round's), or when a new case has no PL3 file."""
    check_list(previous)
    if round_index < 0:
        raise ValueError(f"round_index must be >= 0, got {round_index}")
    missing = sorted({"case", "position", "score", "accepted"} - set(selection.columns))
    if missing:
        raise ValueError(f"selection lacks the columns {missing}")
    if selection.duplicated(["case", "position"]).any():
        raise ValueError("selection holds a (case, position) more than once")
    pseudo = previous["source"] != GROUND_TRUTH
    if (previous.loc[pseudo, "round_accepted"] >= round_index).any():
        raise ValueError(f"the previous list already holds slices accepted in round {round_index} or later")
    forbidden = {int(c) for c in forbidden_cases}
    leaked = sorted(set(previous["case"].astype(int)) & forbidden)
    if leaked:
        raise ValueError(f"the previous list holds forbidden (test/val) cases {leaked}")

    accepted = selection.loc[selection["accepted"].astype(bool), ["case", "position", "score"]]
    new = _new_rows(accepted, previous, forbidden, "pseudo labels accepted")
    if len(new) and negatives is not None:
        missing = sorted({"case", "position", "score"} - set(negatives.columns))
        if missing:
            raise ValueError(f"negatives lack the columns {missing}")
        negatives = _new_rows(negatives[["case", "position", "score"]], previous, forbidden, "negatives")
        taken = pd.MultiIndex.from_frame(new[["case", "position"]])
        negatives = negatives[~pd.MultiIndex.from_frame(negatives[["case", "position"]]).isin(taken)]
    else:
        negatives = new.iloc[0:0]
    no_file = sorted((set(new["case"]) | set(negatives["case"])) - {int(c) for c in pl3_file_of_case})
    if no_file:
        raise ValueError(f"no PL3 file for cases {no_file}")
    files = {int(c): str(f) for c, f in pl3_file_of_case.items()}
    # empty frames left out of the concatenation: they would turn the text columns' dtype into object
    added = [_list_rows(rows, source, round_index, files) for rows, source in ((new, PSEUDO), (negatives, NEGATIVE))
             if len(rows)]
    if not added:
        return _canonical(previous.reset_index(drop=True))
    return _canonical(pd.concat([previous[list(LIST_COLUMNS)], *added], ignore_index=True))


def _new_rows(slices: pd.DataFrame, previous: pd.DataFrame, forbidden: set[int], what: str) -> pd.DataFrame:
    """The rows of `slices` (case, position, score) that `previous` does not list yet; ValueError when one lies
    in a forbidden or a ground-truth case."""
    if slices.duplicated(["case", "position"]).any():
        raise ValueError(f"{what}: a (case, position) more than once")
    slices = slices.astype({"case": np.int64, "position": np.int64})
    leaked = sorted(set(slices["case"]) & forbidden)
    if leaked:
        raise ValueError(f"{what} in forbidden (test/val) cases {leaked}")
    truth_cases = set(previous.loc[previous["source"] == GROUND_TRUTH, "case"].astype(int))
    clash = sorted(set(slices["case"]) & truth_cases)
    if clash:
        raise ValueError(f"{what} in ground-truth cases {clash}: ground truth is never replaced")
    listed = pd.MultiIndex.from_frame(previous[["case", "position"]].astype(np.int64))
    return slices[~pd.MultiIndex.from_frame(slices[["case", "position"]]).isin(listed)]


def _list_rows(slices: pd.DataFrame, source: str, round_index: int, files: dict[int, str]) -> pd.DataFrame:
    return pd.DataFrame({
        "case": slices["case"].to_numpy(dtype=np.int64), "position": slices["position"].to_numpy(dtype=np.int64),
        "source": source, "round_accepted": int(round_index), "score": slices["score"].to_numpy(dtype=np.float64),
        "label_file": [files[int(c)] for c in slices["case"]],
    })


def tumor_free_slices(scores: pd.DataFrame, liver_slices: dict[int, np.ndarray]) -> pd.DataFrame:
    """The tumor-free pseudo labels a round may add (`select.negatives`): the scored slices (of the unlabeled
    volumes) that show liver (`liver_slices`: case -> bool per slice) and whose final pseudo label is empty
    (`pl3_pixels` 0), less those the selection accepted. So both the slices where PL1 and the final label are
    empty and those where SAM and AN removed all of PL1: the parenchyma and rim where Stage I's false
    positives are. Columns case, position, score."""
    missing = sorted({"case", "position", "pl3_pixels", "score", "accepted"} - set(scores.columns))
    if missing:
        raise ValueError(f"scores lack the columns {missing}")
    no_liver = sorted(set(scores["case"].astype(int)) - set(liver_slices))
    if no_liver:
        raise ValueError(f"no liver mask for scored cases {no_liver}")
    in_liver = np.array([bool(liver_slices[int(c)][int(p)]) for c, p in zip(scores["case"], scores["position"])],
                        dtype=bool)
    keep = in_liver & (scores["pl3_pixels"].to_numpy() == 0) & ~scores["accepted"].to_numpy(dtype=bool)
    return scores.loc[keep, ["case", "position", "score"]].reset_index(drop=True)


def summarize_list(df: pd.DataFrame) -> dict:
    """Counts for the logs: slices and cases in all, slices and cases per source, slices per acceptance round
    (-1 is ground truth)."""
    check_list(df)
    by_source = df.groupby("source")
    return {
        "slices": len(df),
        "cases": int(df["case"].nunique()),
        "slices_by_source": {s: int(by_source.size().get(s, 0)) for s in SOURCES},
        "cases_by_source": {s: int(by_source["case"].nunique().get(s, 0)) for s in SOURCES},
        "slices_by_round": {int(r): int(n) for r, n in df["round_accepted"].value_counts().sort_index().items()},
    }


def accepted_in(listed: pd.DataFrame, round_index: int) -> int:
    """How many slices of the list round `round_index`'s selection added (accepted, and any negatives, which
    join only beside accepted slices). Lists only grow, so round r + 1's
    list equals round r's exactly when this is 0 for round r -- and a round that trains on an unchanged list,
    with the same settings and seed, would only repeat the previous round's training."""
    check_list(listed)
    return int((listed["round_accepted"] == round_index).sum())
