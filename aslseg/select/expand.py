"""The labeled list of a round: which slices SS(.) trains on, and where each one's mask lives.

One row per slice, columns `LIST_COLUMNS`, sorted by (case, position) so that the CSV of a round diffs
cleanly against the previous one:

- ``source`` is ``ground_truth`` (a slice of a labeled volume) or ``pseudo`` (accepted by reliability
  thresholding);
- ``round_accepted`` is the round whose selection accepted the slice; slices accepted by round r's selection
  are in the list of round r + 1, so round 0 is a real acceptance round, and ground truth takes -1 (never
  accepted by a selection) rather than 0, which would be ambiguous;
- ``score`` is the reliability score the slice was accepted with, NaN (an empty CSV cell) for ground truth;
- ``label_file`` is the prepared label file of the case for ground truth, the PL3 artifact of the accepting
  round for pseudo labels.

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
GROUND_TRUTH, PSEUDO = "ground_truth", "pseudo"
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
    if not sources <= {GROUND_TRUTH, PSEUDO}:
        raise ValueError(f"labeled list: unknown sources {sorted(sources - {GROUND_TRUTH, PSEUDO})}")
    truth = df["source"] == GROUND_TRUTH
    rounds = df["round_accepted"]
    if (rounds[truth] != GROUND_TRUTH_ROUND).any() or (rounds[~truth] < 0).any():
        raise ValueError(f"labeled list: ground truth must have round_accepted {GROUND_TRUTH_ROUND}, pseudo labels >= 0")
    mixed = set(df.loc[truth, "case"]) & set(df.loc[~truth, "case"])
    if mixed:
        raise ValueError(f"labeled list: cases {sorted(mixed)} hold both ground truth and pseudo labels")


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
) -> pd.DataFrame:
    """Round `round_index` + 1's list: `previous` (round `round_index`'s list) unchanged, plus the slices that
    `selection` (from `reliability.select`) accepted and that the list does not hold yet, as pseudo labels
    with their score and `pl3_file_of_case[case]`. An accepted slice already in the list keeps its row.

    Raises ValueError when an accepted slice belongs to `forbidden_cases` (test and val volumes) or to a
    ground-truth case, when `previous` already holds slices of this round or later (the list was expanded
    twice, or is the wrong round's), or when a newly accepted case has no PL3 file."""
    check_list(previous)
    if round_index < 0:
        raise ValueError(f"round_index must be >= 0, got {round_index}")
    missing = sorted({"case", "position", "score", "accepted"} - set(selection.columns))
    if missing:
        raise ValueError(f"selection lacks the columns {missing}")
    if selection.duplicated(["case", "position"]).any():
        raise ValueError("selection holds a (case, position) more than once")
    pseudo = previous["source"] == PSEUDO
    if (previous.loc[pseudo, "round_accepted"] >= round_index).any():
        raise ValueError(f"the previous list already holds slices accepted in round {round_index} or later")
    forbidden = {int(c) for c in forbidden_cases}
    leaked = sorted(set(previous["case"].astype(int)) & forbidden)
    if leaked:
        raise ValueError(f"the previous list holds forbidden (test/val) cases {leaked}")

    accepted = selection.loc[selection["accepted"].astype(bool), ["case", "position", "score"]]
    accepted = accepted.astype({"case": np.int64, "position": np.int64})
    leaked = sorted(set(accepted["case"]) & forbidden)
    if leaked:
        raise ValueError(f"pseudo labels accepted in forbidden (test/val) cases {leaked}")
    truth_cases = set(previous.loc[~pseudo, "case"].astype(int))
    clash = sorted(set(accepted["case"]) & truth_cases)
    if clash:
        raise ValueError(f"pseudo labels accepted in ground-truth cases {clash}: ground truth is never replaced")

    listed = pd.MultiIndex.from_frame(previous[["case", "position"]].astype(np.int64))
    new = accepted[~pd.MultiIndex.from_frame(accepted[["case", "position"]]).isin(listed)]
    no_file = sorted(set(new["case"]) - {int(c) for c in pl3_file_of_case})
    if no_file:
        raise ValueError(f"no PL3 file for cases {no_file}")
    files = {int(c): str(f) for c, f in pl3_file_of_case.items()}
    rows = pd.DataFrame({
        "case": new["case"].to_numpy(), "position": new["position"].to_numpy(), "source": PSEUDO,
        "round_accepted": int(round_index), "score": new["score"].to_numpy(dtype=np.float64),
        "label_file": [files[c] for c in new["case"]],
    })
    if rows.empty:
        return _canonical(previous.reset_index(drop=True))
    return _canonical(pd.concat([previous[list(LIST_COLUMNS)], rows], ignore_index=True))


def summarize_list(df: pd.DataFrame) -> dict:
    """Counts for the logs: slices and cases in all, slices and cases per source, slices per acceptance round
    (-1 is ground truth)."""
    check_list(df)
    by_source = df.groupby("source")
    return {
        "slices": len(df),
        "cases": int(df["case"].nunique()),
        "slices_by_source": {s: int(by_source.size().get(s, 0)) for s in (GROUND_TRUTH, PSEUDO)},
        "cases_by_source": {s: int(by_source["case"].nunique().get(s, 0)) for s in (GROUND_TRUTH, PSEUDO)},
        "slices_by_round": {int(r): int(n) for r, n in df["round_accepted"].value_counts().sort_index().items()},
    }


def accepted_in(listed: pd.DataFrame, round_index: int) -> int:
    """How many slices of the list round `round_index`'s selection accepted. Lists only grow, so round r + 1's
    list equals round r's exactly when this is 0 for round r -- and a round that trains on an unchanged list,
    with the same settings and seed, would only repeat the previous round's training."""
    check_list(listed)
    return int((listed["round_accepted"] == round_index).sum())
