# Data stage: the embedded phantom (or a LiTS copy read in place) -> prepared 2D slices -> volume splits.


rule phantom:
    """One synthetic CT case in LiTS format (volume-N.nii.gz, segmentation-N.nii.gz)."""
    input:
        code=script_code("phantom.py"),
    output:
        volume=result(artifacts.PHANTOM_VOLUME),
        segmentation=result(artifacts.PHANTOM_SEGMENTATION),
    params:
        phantom=DATA["phantom"],
    log:
        f"{LOGS}/phantom/case-{{case}}.log",
    benchmark:
        f"{BENCHMARKS}/phantom/case-{{case}}.tsv"
    threads: 1
    resources:
        **job_resources("data"),
    conda:
        ENV
    script:
        "../workflow_scripts/phantom.py"


rule prepare:
    """Canonical orientation, HU window, liver slices +- margin, liver crop, resize; image and tumor label kept
    in separate files so that only labeled volumes' labels reach training."""
    input:
        unpack(raw_case_files),
        code=script_code("prepare.py"),
    output:
        image=result(artifacts.PREPARED_IMAGE),
        label=result(artifacts.PREPARED_LABEL),
        stats=result(artifacts.PREPARED_STATS),
    params:
        **artifacts.prepare_settings(DATA),
    log:
        f"{LOGS}/prepare/case-{{case}}.log",
    benchmark:
        f"{BENCHMARKS}/prepare/case-{{case}}.tsv"
    threads: 1
    resources:
        **job_resources("data"),
    conda:
        ENV
    script:
        "../workflow_scripts/prepare.py"


checkpoint split:
    """Test / val / labeled / unlabeled volumes for one labeled fraction and run seed (test and val are the
    same for every seed and fraction, so experiments with different fractions share them). A checkpoint:
    which volumes' labels a training job may read is only known once it exists."""
    input:
        stats=expand(result(artifacts.PREPARED_STATS), case=CASE_IDS),
        code=script_code("split.py"),
    output:
        result(artifacts.SPLIT),
    params:
        split=artifacts.split_settings(DATA),
    log:
        f"{LOGS}/split/labeled-{{labeled}}_seed-{{seed}}.log",
    localrule: True
    conda:
        ENV
    script:
        "../workflow_scripts/split.py"


checkpoint holdout:
    """Test / val / train volumes alone: what every run seed and labeled fraction shares (Stage II embeds the
    train and val volumes once for all of them). A checkpoint: the volumes are known once it exists."""
    input:
        stats=expand(result(artifacts.PREPARED_STATS), case=CASE_IDS),
        code=script_code("holdout.py"),
    output:
        result(artifacts.HOLDOUT),
    params:
        split=artifacts.split_settings(DATA),
    log:
        f"{LOGS}/split/holdout.log",
    localrule: True
    conda:
        ENV
    script:
        "../workflow_scripts/holdout.py"


rule data_summary:
    """One row per prepared case: slices, spacing, liver and tumor volume (a table to look at)."""
    input:
        stats=expand(result(artifacts.PREPARED_STATS), case=CASE_IDS),
    output:
        result(artifacts.DATA_SUMMARY),
    log:
        f"{LOGS}/data_summary.log",
    localrule: True
    conda:
        ENV
    script:
        "../workflow_scripts/data_summary.py"
