# Reliability thresholding and the expanded label list: PL3 is compared with PL1 per slice; the slices that
# pass join the next round's labeled list with PL3 as their label. Plus the evaluation-only diagnostics of
# every pseudo label and of the selection.


rule score:
    """Per unlabeled slice: agreement of PL3 with PL1 (and SAM's IoU, AN's confidence as configured), and
    whether it is accepted."""
    input:
        unpack(selection_inputs),
        code=package_code("select"),
    output:
        f"{RESULTS}/ssl/{{run}}/seed-{{seed}}/sam-{{samrun}}/adapt-{{adaptrun}}/select-{{select}}/scores.csv",
    params:
        select=lambda wildcards: SELECTS[wildcards.select],
    log:
        f"{LOGS}/score/{{run}}_seed-{{seed}}_sam-{{samrun}}_adapt-{{adaptrun}}_select-{{select}}.log",
    threads: 1
    resources:
        **job_resources("data"),
    conda:
        ENV
    script:
        "../workflow_scripts/score.py"


rule expand_labels:
    """Round 1's labeled list: the ground-truth slices of the labeled volumes plus every accepted slice, with
    PL3 as its label (file), the round it was accepted in and its score."""
    input:
        unpack(selection_inputs),
        split=run_split_file,
        scores=f"{RESULTS}/ssl/{{run}}/seed-{{seed}}/sam-{{samrun}}/adapt-{{adaptrun}}/select-{{select}}/scores.csv",
        labeled_images=lambda wildcards: [prepared_image(c) for c in run_split(wildcards)["labeled"]],
        code=package_code("select", "prepared.py"),
    output:
        f"{RESULTS}/ssl/{{run}}/seed-{{seed}}/sam-{{samrun}}/adapt-{{adaptrun}}/select-{{select}}/labeled_round-1.csv",
    params:
        # Where the ground truth of each labeled volume lives (recorded in the list, not read here).
        label_files=lambda wildcards: {case: prepared_label(case) for case in run_split(wildcards)["labeled"]},
    log:
        f"{LOGS}/expand_labels/{{run}}_seed-{{seed}}_sam-{{samrun}}_adapt-{{adaptrun}}_select-{{select}}.log",
    localrule: True
    conda:
        ENV
    script:
        "../workflow_scripts/expand_labels.py"


rule evaluate_pseudo_labels:
    """(Evaluation only: reads the unlabeled volumes' hidden tumor labels.) Dice of PL1, PL2 and PL3 against
    the ground truth on the unlabeled slices, lesion-level misses and false positives of each, and the same
    on the accepted and the rejected slices (how precise the selection is)."""
    input:
        unpack(selection_inputs),
        pl2=lambda wildcards: [f"{stage2_dir(wildcards.run, wildcards.seed, wildcards.samrun)}/pl2/shard-{k}.npz" for k in SHARDS],
        scores=f"{RESULTS}/ssl/{{run}}/seed-{{seed}}/sam-{{samrun}}/adapt-{{adaptrun}}/select-{{select}}/scores.csv",
        labels=lambda wildcards: [prepared_label(case) for case in run_split(wildcards)["unlabeled"]],
        images=lambda wildcards: [prepared_image(case) for case in run_split(wildcards)["unlabeled"]],
        code=package_code("metrics.py", "diagnostics.py", "prepared.py", "io.py"),
    output:
        f"{RESULTS}/ssl/{{run}}/seed-{{seed}}/sam-{{samrun}}/adapt-{{adaptrun}}/select-{{select}}/pseudo_label_quality.json",
    log:
        f"{LOGS}/evaluate_pseudo_labels/{{run}}_seed-{{seed}}_sam-{{samrun}}_adapt-{{adaptrun}}_select-{{select}}.log",
    threads: 1
    resources:
        **job_resources("data"),
    conda:
        ENV
    script:
        "../workflow_scripts/evaluate_pseudo_labels.py"


rule pseudo_label_summary:
    """One row per ASLseg experiment x seed (round 0): Dice of PL1, PL2 and PL3 on the unlabeled slices and on
    the accepted ones, lesion misses and false positives, selection precision, SAM's and AN's val Dice."""
    input:
        lambda wildcards: [
            path for row in LOOP_ROWS
            for path in (row["quality"], row["finetune_report"], row["adapt_report"], row["labeled_list"]) if path
        ],
    output:
        report(f"{RESULTS}/pseudo_label_summary.csv", caption="../docs/report/pseudo_label_summary.rst", category="Results"),
    params:
        rows=lambda wildcards: LOOP_ROWS,
    log:
        f"{LOGS}/pseudo_label_summary.log",
    localrule: True
    conda:
        ENV
    script:
        "../workflow_scripts/pseudo_label_summary.py"
