import numpy as np
import pandas as pd
import pytest

from aslseg.config import default_config
from aslseg.select.expand import (GROUND_TRUTH_ROUND, LIST_COLUMNS, accepted_in, check_list, expand, initial_list,
                                  summarize_list, tumor_free_slices)
from aslseg.select.reliability import (
    SCORE_COLUMNS, SelectSettings, agreement, calibrate_round, calibrate_threshold, precision_lower_bound,
    selection_settings, score_slices, select,
)


def square(top=2, left=2, side=4, shape=(12, 12)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[top:top + side, left:left + side] = True
    return mask


# --- agreement -----------------------------------------------------------------------------------------------

def test_agreement_of_identical_disjoint_and_partial_masks():
    a = square()
    assert agreement(a, a) == 1.0
    assert agreement(a, square(top=7, left=7)) == 0.0
    assert agreement(a, square(top=2, left=4)) == pytest.approx(2 * 8 / 32)  # half of each square overlaps


def test_agreement_of_empty_masks_is_defined():
    empty = np.zeros((12, 12), dtype=np.uint8)
    assert agreement(empty, empty) == 1.0  # they agree there is no tumor; never NaN
    assert agreement(square(), empty) == 0.0
    assert agreement(empty, square()) == 0.0


def test_agreement_treats_any_nonzero_value_as_tumor_and_checks_shapes():
    assert agreement(square().astype(np.uint8) * 2, square()) == 1.0
    with pytest.raises(ValueError):
        agreement(square(), square(shape=(10, 10)))


# --- score_slices --------------------------------------------------------------------------------------------

def volumes():
    """Case 4: identical, disjoint, both empty, PL1 only. Case 2: one half-overlapping slice."""
    empty = np.zeros((12, 12), dtype=bool)
    pl1 = {4: np.stack([square(), square(), empty, square()]), 2: square()[None]}
    pl3 = {4: np.stack([square(), square(top=7, left=7), empty, empty]), 2: square(top=2, left=4)[None]}
    return pl1, pl3


def test_score_slices_rows_and_default_score_is_agreement():
    table = score_slices(*volumes())
    assert list(table.columns) == list(SCORE_COLUMNS)
    assert list(zip(table["case"], table["position"])) == [(2, 0), (4, 0), (4, 1), (4, 2), (4, 3)]
    assert table["agreement"].tolist() == pytest.approx([0.5, 1.0, 0.0, 1.0, 0.0])
    assert table["score"].tolist() == table["agreement"].tolist()
    assert table["both_empty"].tolist() == [False, False, False, True, False]
    assert table["pl1_pixels"].tolist() == [16, 16, 16, 0, 16]
    assert table["pl3_pixels"].tolist() == [16, 16, 16, 0, 0]
    assert table["sam_iou"].isna().all() and table["confidence"].isna().all()
    assert not table["score"].isna().any()


def test_score_weights_and_renormalisation_of_unknown_terms():
    pl1, pl3 = volumes()
    iou = {4: np.array([0.5, 0.9, np.nan, 1.2]), 2: np.array([np.nan])}  # NaN: no prompt; 1.2 clipped to 1
    confidence = {4: np.array([1.0, 0.5, 0.8, 0.2]), 2: np.array([0.9])}
    table = score_slices(pl1, pl3, iou, confidence, weights={"agreement": 2, "sam_iou": 1, "confidence": 1})
    expected = [
        (2 * 0.5 + 0.9) / 3,  # no SAM IoU: agreement and confidence, weights 2 and 1
        (2 * 1.0 + 0.5 + 1.0) / 4,
        (2 * 0.0 + 0.9 + 0.5) / 4,
        (2 * 1.0 + 0.8) / 3,
        (2 * 0.0 + 1.0 + 0.2) / 4,
    ]
    assert table["score"].tolist() == pytest.approx(expected)
    # A term with weight 0 is reported but does not score.
    only_agreement = score_slices(pl1, pl3, iou, confidence, weights={"agreement": 1, "sam_iou": 0})
    assert only_agreement["score"].tolist() == only_agreement["agreement"].tolist()
    assert only_agreement["confidence"].tolist() == pytest.approx([0.9, 1.0, 0.5, 0.8, 0.2])


def test_score_slices_rejects_bad_inputs():
    pl1, pl3 = volumes()
    with pytest.raises(ValueError, match="not given"):
        score_slices(pl1, pl3, weights={"agreement": 1, "sam_iou": 1})
    with pytest.raises(ValueError, match="agreement or the confidence weight"):
        score_slices(pl1, pl3, {4: np.ones(4), 2: np.ones(1)}, weights={"agreement": 0, "sam_iou": 1})
    with pytest.raises(ValueError, match="unknown"):
        score_slices(pl1, pl3, weights={"agreemnt": 1})
    with pytest.raises(ValueError, match="cases"):
        score_slices(pl1, {4: pl3[4]})
    with pytest.raises(ValueError, match="slices"):
        score_slices(pl1, pl3, confidence={4: np.ones(3), 2: np.ones(1)})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        score_slices(pl1, pl3, confidence={4: np.full(4, 1.5), 2: np.ones(1)})


def test_confidence_alone_scores_pl1_without_sam():
    """The no-SAM ablation: PL1 is its own final label, agreement is 1, the score is the confidence alone."""
    pl1, _ = volumes()
    confidence = {4: np.array([1.0, 0.6, 0.95, 0.7]), 2: np.array([0.85])}
    table = score_slices(pl1, pl1, confidence=confidence, weights={"agreement": 0, "confidence": 1})
    assert (table["agreement"] == 1).all()
    assert table["score"].tolist() == pytest.approx([0.85, 1.0, 0.6, 0.95, 0.7])


# --- select --------------------------------------------------------------------------------------------------

def scores(values, both_empty=None) -> pd.DataFrame:
    """Slices (case, position) = (i // 3 + 1, i % 3) with the given scores."""
    n = len(values)
    return pd.DataFrame({
        "case": [i // 3 + 1 for i in range(n)], "position": [i % 3 for i in range(n)],
        "both_empty": both_empty or [False] * n, "score": values,
    })


def test_threshold_rule_includes_the_threshold_and_honours_accept_empty():
    table = scores([0.9, 0.8, 0.79, 1.0], both_empty=[False, False, False, True])
    chosen = select(table, "threshold", 0.8, None, accept_empty=False)
    assert chosen["accepted"].tolist() == [True, True, False, False]
    assert select(table, "threshold", 0.8, None, accept_empty=True)["accepted"].tolist() == [True, True, False, True]
    assert "accepted" not in table.columns  # a copy


def test_top_fraction_breaks_ties_by_case_and_position():
    # Shuffled rows: the result must not depend on row order.
    table = scores([0.5, 0.9, 0.9, 0.9, 0.1, 0.9]).sample(frac=1, random_state=3)
    chosen = select(table, "top_fraction", None, 0.5, accept_empty=True)  # 3 of 6; four tie at 0.9
    kept = sorted(zip(chosen.loc[chosen["accepted"], "case"], chosen.loc[chosen["accepted"], "position"]))
    assert kept == [(1, 1), (1, 2), (2, 0)]  # (2, 2) loses the tie
    again = select(scores([0.5, 0.9, 0.9, 0.9, 0.1, 0.9]), "top_fraction", None, 0.5, accept_empty=True)
    assert sorted(zip(again.loc[again["accepted"], "case"], again.loc[again["accepted"], "position"])) == kept


def test_top_fraction_counts_eligible_slices_only_and_never_exceeds_the_fraction():
    table = scores([1.0, 1.0, 0.7, 0.6, 0.5], both_empty=[True, True, False, False, False])
    chosen = select(table, "top_fraction", None, 0.5, accept_empty=False)  # floor(0.5 * 3) = 1
    assert chosen["accepted"].tolist() == [False, False, True, False, False]
    assert select(table, "top_fraction", None, 1.0, accept_empty=False)["accepted"].tolist() == [
        False, False, True, True, True]
    hundred = pd.DataFrame({"case": 1, "position": range(100), "both_empty": False, "score": np.linspace(0, 1, 100)})
    assert select(hundred, "top_fraction", None, 0.29, accept_empty=True)["accepted"].sum() == 29


def test_select_rejects_bad_rules_and_parameters():
    table = scores([0.5])
    with pytest.raises(ValueError, match="unknown selection rule"):
        select(table, "best", 0.5, None, accept_empty=False)
    with pytest.raises(ValueError, match="threshold"):
        select(table, "threshold", None, 0.5, accept_empty=False)
    with pytest.raises(ValueError, match="fraction"):
        select(table, "top_fraction", 0.5, None, accept_empty=False)
    with pytest.raises(ValueError, match="fraction"):
        select(table, "top_fraction", None, 0.0, accept_empty=False)


# --- calibrated ----------------------------------------------------------------------------------------------

def test_calibration_takes_the_lowest_threshold_that_is_precise_enough():
    # Eight eligible val slices, best first: right, right, wrong, right, wrong, wrong, right, wrong; one both-empty
    # slice (right, highest score) is not eligible and must not count.
    table = scores([1.0, 0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.4],
                   both_empty=[True] + [False] * 8)
    right = np.array([True, True, True, False, True, False, False, True, False])
    found = calibrate_threshold(table, right, precision=0.6, min_val_slices=2, accept_empty=False)
    # Precision after each cut: 1, 1, 2/3, 3/4, 3/5, 1/2, 4/7, 1/2 -> the lowest cut with >= 0.6 is the fifth.
    assert found["threshold"] == 0.7 and found["val_accepted"] == 5 and found["val_accepted_right"] == 3
    assert found["val_eligible"] == 8 and found["val_right"] == 4
    assert [point["accepted"] for point in found["curve"]] == list(range(1, 9))
    # The threshold is then applied to the unlabeled slices like a fixed one.
    unlabeled = scores([0.69, 0.7, 0.99])
    assert select(unlabeled, "calibrated", found["threshold"], None, False)["accepted"].tolist() == [False, True, True]


def test_calibration_needs_enough_val_slices_and_else_accepts_nothing():
    table = scores([0.9, 0.8, 0.7, 0.6])
    right = np.array([True, False, False, False])
    assert calibrate_threshold(table, right, 0.6, 1, False)["threshold"] == 0.9  # 1 of 1 right
    assert calibrate_threshold(table, right, 0.5, 1, False)["threshold"] == 0.8  # 1 of 2: exactly 0.5 counts
    found = calibrate_threshold(table, right, 0.6, 2, False)  # no cut of >= 2 slices is 60% right
    assert found["threshold"] is None and found["val_accepted"] == 0
    chosen = select(scores([0.99, 0.5]), "calibrated", found["threshold"], None, accept_empty=True)
    assert not chosen["accepted"].any()


def test_calibration_cuts_between_different_scores_only():
    # Two slices tie at 0.9, one right and one wrong: a threshold takes both or neither.
    table = scores([0.95, 0.9, 0.9, 0.5])
    right = np.array([True, True, False, False])
    found = calibrate_threshold(table, right, 0.7, 1, False)
    assert found["threshold"] == 0.95  # 0.9 would accept 2 of 3 right < 0.7
    assert [p["threshold"] for p in found["curve"]] == [0.95, 0.9, 0.5]
    with pytest.raises(ValueError, match="right flags"):
        calibrate_threshold(table, right[:2], 0.7, 1, False)
    with pytest.raises(ValueError, match="precision"):
        calibrate_threshold(table, right, 0.0, 1, False)


def test_the_precision_lower_bound_is_the_share_at_confidence_one_half_and_tightens_with_more_slices():
    assert precision_lower_bound(np.array([3, 30]), np.array([5, 50]), 0.5) == pytest.approx([0.6, 0.6])
    few, many = precision_lower_bound(np.array([3, 30]), np.array([5, 50]), 0.9)
    assert 0 < few < many < 0.6  # the same share over ten times the slices is known better
    assert 0.9 < precision_lower_bound(np.array([50]), np.array([50]), 0.9)[0] < 1  # all right: never a certainty


def test_calibration_demands_the_precision_at_its_lower_confidence_bound():
    # Best first: 6 right, then 4 wrong, then alternating right and wrong.
    right = np.array([True] * 6 + [False] * 4 + [True, False] * 5)
    table = scores(list(np.linspace(1.0, 0.05, len(right))))
    estimate = calibrate_threshold(table, right, 0.5, 1, False)  # confidence 0.5: the share itself
    assert estimate["val_accepted"] == 20 and estimate["val_accepted_right"] == 11
    bounded = calibrate_threshold(table, right, 0.5, 1, False, confidence=0.9)
    # 11 of 20 right is an estimate of 0.55, too uncertain for 0.5; 6 of 6 (lower bound ~0.78) is not
    assert bounded["val_accepted"] < 20 and bounded["val_accepted_right"] == 6
    assert bounded["precision_confidence"] == 0.9
    with pytest.raises(ValueError, match="confidence"):
        calibrate_threshold(table, right, 0.5, 1, False, confidence=1.0)


def test_the_default_calibration_rests_on_four_right_val_slices_and_no_fewer():
    # The Wilson bound guards small sets (4 of 4 right: ~0.71 at 0.9; 3 of 4: ~0.43), so the floor of val
    # slices only stops a threshold resting on 3 or fewer: 3 of 3 right clears the bound (~0.65) but not the floor.
    settings = SelectSettings.from_config(selection_settings(default_config()["select"]))
    table = scores(list(np.linspace(1.0, 0.1, 10))).assign(case=7, position=range(10))
    four = calibrate_round(table, np.array([True] * 4 + [False] * 6), settings, taken=[])
    assert four["threshold"] == table["score"][3] and four["val_accepted"] == four["val_accepted_right"] == 4
    three = calibrate_round(table, np.array([True] * 3 + [False] * 7), settings, taken=[])
    assert three["threshold"] is None and three["val_accepted"] == 0
    assert precision_lower_bound(np.array([3]), np.array([3]), settings.precision_confidence)[0] > settings.precision


def test_a_later_round_calibrates_on_the_val_slices_earlier_rounds_left():
    # Val case 7, best first: two right slices (positions 0, 1) an earlier round's threshold took, then
    # wrong, right, wrong, wrong. On all six slices the first four are 3 of 4 right (3 of 5: too few); on what
    # is left, no threshold reaches 0.7, so this round accepts nothing and takes no val slice.
    table = scores([0.95, 0.9, 0.8, 0.7, 0.6, 0.5]).assign(case=7, position=range(6))
    right = np.array([True, True, False, True, False, False])
    settings = SelectSettings.from_config({**SECTION, "rule": "calibrated", "precision": 0.7,
                                           "precision_confidence": 0.5, "min_val_slices": 1})
    first = calibrate_round(table, right, settings, taken=[])
    assert first["threshold"] == 0.7 and first["val_taken"] == [[7, 0], [7, 1], [7, 2], [7, 3]]
    later = calibrate_round(table, right, settings, taken=[[7, 0], [7, 1]])
    assert later["val_eligible"] == 4 and later["val_right"] == 1
    assert later["threshold"] is None and later["val_taken"] == [[7, 0], [7, 1]]
    # With a looser target the later round accepts the remaining right slice's cut and records it as taken too.
    looser = calibrate_round(table, right, SelectSettings.from_config(
        {**SECTION, "rule": "calibrated", "precision": 0.5, "precision_confidence": 0.5, "min_val_slices": 1}),
        taken=[[7, 0], [7, 1]])
    assert looser["threshold"] == 0.7 and looser["val_taken"] == [[7, 0], [7, 1], [7, 2], [7, 3]]


SECTION = dict(rule="threshold", threshold=0.8, fraction=0.5, accept_empty=False,
               agreement_weight=1.0, sam_iou_weight=0.0, confidence_weight=0.0)


def test_select_settings_from_config():
    settings = SelectSettings.from_config(SECTION)
    assert settings.threshold == 0.8 and settings.weights == {"agreement": 1.0, "sam_iou": 0.0, "confidence": 0.0}
    with pytest.raises(KeyError, match="missing"):
        SelectSettings.from_config({k: v for k, v in SECTION.items() if k != "threshold"})
    with pytest.raises(KeyError, match="unknown"):
        SelectSettings.from_config({**SECTION, "treshold": 0.7})
    for bad in ({"rule": "best"}, {"threshold": 1.5}, {"rule": "top_fraction", "fraction": None},
                {"agreement_weight": 0.0, "confidence_weight": 0.0}, {"sam_iou_weight": -1.0}, {"accept_empty": "no"},
                {"negatives": 1},
                {"rule": "calibrated", "precision": 0.0, "precision_confidence": 0.9, "min_val_slices": 5},
                {"rule": "calibrated", "precision": 0.5, "precision_confidence": 1.0, "min_val_slices": 5},
                {"rule": "calibrated", "precision": 0.5, "precision_confidence": 0.9, "min_val_slices": 0}):
        with pytest.raises(ValueError):
            SelectSettings.from_config({**SECTION, **bad})
    with pytest.raises(KeyError, match="missing"):  # the calibrated rule reads its own keys
        SelectSettings.from_config({**SECTION, "rule": "calibrated"})


def test_rule_settings_keep_calibration_keys_for_the_calibrated_rule_only():
    full = {**SECTION, "precision": 0.5, "precision_confidence": 0.9, "min_val_slices": 5}
    assert selection_settings(full) == SECTION  # a threshold selection is named as before these keys existed
    calibrated = selection_settings({**full, "rule": "calibrated"})
    assert "threshold" not in calibrated and "fraction" not in calibrated and calibrated["precision"] == 0.5
    settings = SelectSettings.from_config(calibrated)
    assert settings.precision == 0.5 and settings.min_val_slices == 5 and settings.threshold is None


def test_negatives_name_a_selection_only_when_on():
    assert selection_settings({**SECTION, "negatives": False}) == SECTION  # named as before the option existed
    assert selection_settings({**SECTION, "negatives": True}) == {**SECTION, "negatives": True}
    assert not SelectSettings.from_config(SECTION).negatives
    assert SelectSettings.from_config({**SECTION, "negatives": True}).negatives


# --- labeled lists -------------------------------------------------------------------------------------------

def round0() -> pd.DataFrame:
    return initial_list({3: 4, 1: 2}, {1: "prepared/1/label.nii.gz", 3: "prepared/3/label.nii.gz"})


def selection(rows) -> pd.DataFrame:
    """rows: (case, position, score, accepted)."""
    return pd.DataFrame(rows, columns=["case", "position", "score", "accepted"])


def keys(df) -> list[tuple[int, int]]:
    return list(zip(df["case"].astype(int), df["position"].astype(int)))


def test_initial_list_covers_every_slice_of_the_labeled_volumes():
    df = round0()
    assert list(df.columns) == list(LIST_COLUMNS)
    assert keys(df) == [(1, 0), (1, 1), (3, 0), (3, 1), (3, 2), (3, 3)]
    assert set(df["source"]) == {"ground_truth"} and set(df["round_accepted"]) == {GROUND_TRUTH_ROUND}
    assert df["score"].isna().all()
    assert df.loc[df["case"] == 3, "label_file"].eq("prepared/3/label.nii.gz").all()
    with pytest.raises(ValueError, match="label file"):
        initial_list({1: 2, 2: 3}, {1: "a"})


def test_expand_adds_accepted_slices_and_keeps_ground_truth_as_is():
    before = round0()
    after = expand(before, selection([(5, 0, 0.9, True), (5, 1, 0.4, False), (7, 2, 0.85, True)]), 0,
                   {5: "r0/pl3/5.nii.gz", 7: "r0/pl3/7.nii.gz"}, forbidden_cases={8, 9})
    assert keys(after) == keys(before) + [(5, 0), (7, 2)]
    pd.testing.assert_frame_equal(after[after["source"] == "ground_truth"].reset_index(drop=True), before)
    new = after[after["source"] == "pseudo"]
    assert new["round_accepted"].tolist() == [0, 0]
    assert new["score"].tolist() == [0.9, 0.85]
    assert new["label_file"].tolist() == ["r0/pl3/5.nii.gz", "r0/pl3/7.nii.gz"]


def test_expand_keeps_earlier_accepted_slices_and_never_duplicates():
    first = expand(round0(), selection([(5, 0, 0.9, True)]), 0, {5: "r0/5"}, set())
    # Round 1 rejects (5, 0) and accepts it again under another score: neither changes its row.
    rejected = expand(first, selection([(5, 0, 0.1, False), (5, 1, 0.95, True)]), 1, {5: "r1/5"}, set())
    reaccepted = expand(first, selection([(5, 0, 0.99, True), (5, 1, 0.95, True)]), 1, {5: "r1/5"}, set())
    for after in (rejected, reaccepted):
        assert not after.duplicated(["case", "position"]).any()
        row = after[(after["case"] == 5) & (after["position"] == 0)].iloc[0]
        assert (row["round_accepted"], row["score"], row["label_file"]) == (0, 0.9, "r0/5")
        row = after[(after["case"] == 5) & (after["position"] == 1)].iloc[0]
        assert (row["round_accepted"], row["score"], row["label_file"]) == (1, 0.95, "r1/5")
    pd.testing.assert_frame_equal(rejected, reaccepted)


def test_a_round_that_accepts_nothing_leaves_the_list_unchanged():
    first = expand(round0(), selection([(5, 0, 0.9, True), (5, 1, 0.2, False)]), 0, {5: "r0/5"}, set())
    second = expand(first, selection([(5, 1, 0.2, False)]), 1, {5: "r1/5"}, set())
    assert accepted_in(round0(), 0) == 0 and accepted_in(first, 0) == 1
    assert accepted_in(second, 1) == 0  # so round 2 would train on round 1's list
    pd.testing.assert_frame_equal(second, first)


def test_expand_refuses_test_val_and_ground_truth_cases():
    with pytest.raises(ValueError, match="forbidden"):
        expand(round0(), selection([(5, 0, 0.9, True), (8, 0, 0.9, True)]), 0, {5: "a", 8: "b"}, {8, 9})
    with pytest.raises(ValueError, match="ground-truth"):
        expand(round0(), selection([(3, 1, 0.9, True)]), 0, {3: "a"}, set())
    # Rejected slices of such cases do no harm.
    after = expand(round0(), selection([(8, 0, 0.1, False), (3, 1, 0.1, False)]), 0, {}, {8})
    pd.testing.assert_frame_equal(after, round0())


def test_expand_refuses_wrong_rounds_duplicates_and_missing_files():
    first = expand(round0(), selection([(5, 0, 0.9, True)]), 1, {5: "r1/5"}, set())
    with pytest.raises(ValueError, match="round 1 or later"):
        expand(first, selection([(5, 1, 0.9, True)]), 1, {5: "r1/5"}, set())
    with pytest.raises(ValueError, match="more than once"):
        expand(round0(), selection([(5, 0, 0.9, True), (5, 0, 0.8, True)]), 0, {5: "a"}, set())
    with pytest.raises(ValueError, match="no PL3 file"):
        expand(round0(), selection([(5, 0, 0.9, True)]), 0, {6: "a"}, set())


def test_expand_is_deterministic_and_survives_a_csv_round_trip(tmp_path):
    rows = [(7, 2, 0.85, True), (5, 1, 0.8, True), (5, 0, 0.9, True), (6, 0, 0.2, False)]
    files = {5: "r0/5", 7: "r0/7", 6: "r0/6"}
    a = expand(round0(), selection(rows), 0, files, {9})
    b = expand(round0(), selection(rows[::-1]), 0, files, {9})
    pd.testing.assert_frame_equal(a, b)
    path = tmp_path / "labeled.csv"
    a.to_csv(path, index=False)
    read = pd.read_csv(path)
    assert read["score"].isna().sum() == 6  # ground truth: empty cells
    c = expand(read, selection([(6, 0, 0.9, True)]), 1, {6: "r1/6"}, {9})
    assert keys(c) == keys(a)[:6] + [(5, 0), (5, 1), (6, 0), (7, 2)]
    assert c["round_accepted"].tolist() == [-1] * 6 + [0, 0, 1, 0]


def negatives(rows) -> pd.DataFrame:
    """rows: (case, position, score)."""
    return pd.DataFrame(rows, columns=["case", "position", "score"])


def test_negatives_join_only_beside_accepted_slices():
    files = {5: "r0/5", 6: "r0/6", 7: "r0/7"}
    chosen = selection([(5, 0, 0.9, True), (5, 1, 0.3, False)])
    after = expand(round0(), chosen, 0, files, {9}, negatives=negatives([(5, 1, 0.3), (6, 0, 0.5), (5, 0, 0.9)]))
    added = after[after["source"] != "ground_truth"]
    # the accepted slice stays a pseudo label even when also offered as a negative; nothing twice
    assert list(zip(keys(added), added["source"])) == [((5, 0), "pseudo"), ((5, 1), "negative"), ((6, 0), "negative")]
    assert added["round_accepted"].tolist() == [0, 0, 0] and added["label_file"].tolist() == ["r0/5", "r0/5", "r0/6"]
    check_list(after)
    assert accepted_in(after, 0) == 3
    # a round that accepts nothing adds no negatives: its list is the previous one, so it is not retrained
    nothing = expand(round0(), selection([(5, 0, 0.1, False)]), 0, files, {9}, negatives=negatives([(6, 0, 0.5)]))
    pd.testing.assert_frame_equal(nothing, round0())
    # negatives already listed keep their row; forbidden and ground-truth cases are refused as for accepted slices
    again = expand(after, selection([(7, 0, 0.9, True)]), 1, files, {9},
                   negatives=negatives([(6, 0, 0.1), (7, 1, 0.2)]))
    assert again.loc[(again["case"] == 6), "round_accepted"].tolist() == [0]
    assert again.loc[(again["case"] == 7), "source"].tolist() == ["pseudo", "negative"]
    for bad, match in (((9, 0, 0.5), "forbidden"), ((3, 0, 0.5), "ground-truth")):
        with pytest.raises(ValueError, match=match):
            expand(round0(), chosen, 0, files, {9}, negatives=negatives([bad]))
    with pytest.raises(ValueError, match="no PL3 file"):
        expand(round0(), chosen, 0, {5: "r0/5"}, {9}, negatives=negatives([(6, 0, 0.5)]))


def test_tumor_free_slices_are_the_unaccepted_liver_slices_with_an_empty_final_label():
    scores = pd.DataFrame({"case": [5, 5, 5, 5, 6], "position": [0, 1, 2, 3, 0], "pl3_pixels": [0, 0, 12, 0, 0],
                           "score": [1.0, 0.2, 0.9, 0.8, 1.0], "accepted": [False, False, True, True, False]})
    livers = {5: np.array([False, True, True, True]), 6: np.array([True])}
    # (5, 0): no liver; (5, 2): tumor in its final label; (5, 3): accepted
    assert keys(tumor_free_slices(scores, livers)) == [(5, 1), (6, 0)]
    with pytest.raises(ValueError, match="no liver mask"):
        tumor_free_slices(scores, {5: livers[5]})


def test_summarize_list():
    after = expand(round0(), selection([(5, 0, 0.9, True), (7, 2, 0.85, True)]), 0, {5: "a", 7: "b"}, set())
    after = expand(after, selection([(5, 1, 0.9, True)]), 1, {5: "c"}, set())
    assert summarize_list(after) == {
        "slices": 9, "cases": 4,
        "slices_by_source": {"ground_truth": 6, "pseudo": 3, "negative": 0},
        "cases_by_source": {"ground_truth": 2, "pseudo": 2, "negative": 0},
        "slices_by_round": {-1: 6, 0: 2, 1: 1},
    }
    assert summarize_list(round0())["slices_by_source"] == {"ground_truth": 6, "pseudo": 0, "negative": 0}


# The scoring of a round's artifacts (aslseg/select/scoring.py), on real shard files.

def test_slice_confidence_is_the_certainty_over_either_label_and_one_where_both_are_empty():
    from aslseg.select.scoring import slice_confidence

    probability = np.zeros((3, 2, 2), np.float32)
    probability[0] = [[0.9, 0.6], [0.1, 0.0]]
    pl1 = np.zeros((3, 2, 2), np.uint8)
    pl3 = np.zeros((3, 2, 2), np.uint8)
    pl1[0, 0, 0], pl3[0, 0, 1] = 1, 1  # slice 0: two pixels, certainties 0.9 and 0.6
    pl1[1, 1, 1] = 1  # slice 1: one pixel with p = 0, certainty 1
    confidence = slice_confidence(probability, pl1, pl3)
    assert np.allclose(confidence, [0.75, 1.0, 1.0])


def test_score_shards_reads_labels_probabilities_and_sam_ious_from_the_round_files(tmp_path):
    import pandas as pd

    from aslseg.pseudo_labels import write_shard
    from aslseg.select.scoring import score_shards, val_right

    pl1 = {4: np.zeros((2, 4, 4), np.uint8)}
    pl1[4][0, :2, :2] = 1
    pl3 = {4: pl1[4].copy()}
    pl3[4][0, 2, 2] = 1
    write_shard(tmp_path / "pl1.npz", pl1)
    write_shard(tmp_path / "pl3.npz", pl3, {4: pl3[4] * 0.9})
    pd.DataFrame({"case": [4, 4], "position": [0, 0], "component": [0, 1], "input_area": [4, 1], "sam_area": [4, 1],
                  "predicted_iou": [0.8, 0.6]}).to_csv(tmp_path / "components.csv", index=False)
    settings = SelectSettings.from_config({**SECTION, "sam_iou_weight": 1.0})
    scores, final = score_shards([tmp_path / "pl1.npz"], [tmp_path / "pl3.npz"], [tmp_path / "components.csv"],
                                 settings)
    assert list(scores["position"]) == [0, 1] and np.array_equal(final[4], pl3[4])
    assert scores.loc[0, "sam_iou"] == pytest.approx(0.7) and np.isnan(scores.loc[1, "sam_iou"])
    assert scores.loc[0, "agreement"] == pytest.approx(2 * 4 / 9)
    np.savez(tmp_path / "case-4.npz", tumor=pl1[4])  # the truth: PL1's square
    assert list(val_right(scores, final, [str(tmp_path / "case-4.npz")])) == [True, True]
