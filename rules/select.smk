# Reliability thresholding and the expanded label list: each round's final pseudo label (PL3) is compared with
# PL1 per slice; the slices that pass join the next round's labeled list with PL3 as their label. Plus the
# evaluation-only diagnostics of every pseudo label and of the selection.

SELECTION_LOG = "{model}_sam-{samrun}_adapt-{adaptrun}_select-{select}"


rule score:
    """Per slice still unlabeled in the round: agreement of PL3 with PL1 (and SAM's IoU, AN's confidence as
    configured), and whether it is accepted; the threshold used (for rule calibrated: found on the val
    volumes' slices, scored the same way, with its precision curve)."""
    input:
        unpack(INPUTS.previous_round("score")),
        unpack(INPUTS.selection),
        code=script_code("score.py"),
    output:
        scores=result(artifacts.SCORES),
        calibration=result(artifacts.CALIBRATION),
    params:
        select=lambda wildcards: SELECTS[wildcards.select].settings,
    log:
        f"{LOGS}/score/{SELECTION_LOG}.log",
    threads: 1
    resources:
        **job_resources("data"),
    conda:
        ENV
    script:
        "../workflow_scripts/score.py"


rule expand_labels:
    """The next round's labeled list: this round's list (round 0: the labeled volumes' ground-truth slices)
    plus every newly accepted slice, with its final pseudo label (file), the round it was accepted in and its
    score; with select.negatives, beside them, the tumor-free liver slices (the images' liver masks)."""
    input:
        unpack(INPUTS.selection),
        split=INPUTS.run_split_file,
        scores=result(artifacts.SCORES),
        labeled_images=INPUTS.labeled_images,
        unlabeled_images=INPUTS.unlabeled_images,
        code=script_code("expand_labels.py"),
    output:
        result(artifacts.LABELED_LIST),
    params:
        round=lambda wildcards: model_of(wildcards).round,
        negatives=lambda wildcards: SELECTS[wildcards.select].settings.get("negatives", False),
        # Where the ground truth of each labeled volume lives (recorded in the list, not read here).
        label_files=INPUTS.labeled_label_files,
    log:
        f"{LOGS}/expand_labels/{SELECTION_LOG}.log",
    localrule: True
    conda:
        ENV
    script:
        "../workflow_scripts/expand_labels.py"


rule evaluate_pseudo_labels:
    """(Evaluation only: reads the unlabeled volumes' hidden tumor labels.) Dice of PL1, PL2 and PL3 against
    the ground truth on the round's unlabeled slices, lesion-level misses and false positives of each, and the
    same on the accepted and the rejected slices (how precise the selection is)."""
    input:
        unpack(INPUTS.previous_round("evaluate_pseudo_labels")),
        unpack(INPUTS.selection),
        pl2=INPUTS.shard_pseudo_labels_2,
        scores=result(artifacts.SCORES),
        labels=INPUTS.unlabeled_labels,
        images=INPUTS.unlabeled_images,
        code=script_code("evaluate_pseudo_labels.py"),
    output:
        result(artifacts.PSEUDO_LABEL_QUALITY),
    log:
        f"{LOGS}/evaluate_pseudo_labels/{SELECTION_LOG}.log",
    threads: 1
    resources:
        **job_resources("data"),
    conda:
        ENV
    script:
        "../workflow_scripts/evaluate_pseudo_labels.py"


rule pseudo_label_summary:
    """One row per ASLseg experiment x seed x round: Dice of PL1, PL2 and PL3 on the round's unlabeled slices
    and on the accepted ones, lesion misses and false positives, selection precision, SAM's and AN's val Dice."""
    input:
        PLAN.loop_row_files(LOOP_ROWS),
    output:
        report(result(artifacts.PSEUDO_LABEL_SUMMARY), caption="../docs/report/pseudo_label_summary.rst", category="Results"),
    params:
        rows=lambda wildcards: LOOP_ROWS,
    log:
        f"{LOGS}/pseudo_label_summary.log",
    localrule: True
    conda:
        ENV
    script:
        "../workflow_scripts/pseudo_label_summary.py"
