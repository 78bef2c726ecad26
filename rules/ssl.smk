# Stage I: train SS(.) for a round, predict Pseudo Label 1 for the unlabeled slices, evaluate on the test set.
# {model} is ssl/{run}/seed-S (round 0, shared by experiments with the same Stage I) or
# loop/{loop}/seed-S/round-R (round R >= 1 of an ASLseg loop); see aslseg/artifacts.py.


rule ssl_train:
    """Train SS(.) with ssl.method on the round's labeled slices: the labeled volumes' ground truth, and from
    round 1 on the accepted pseudo labels of the round's list; the rest of the unlabeled volumes stay
    unlabeled. The labels of labeled and val volumes and the pseudo-label files are its only label inputs. A
    round whose list the previous round's selection left unchanged reuses the previous round's model."""
    input:
        unpack(INPUTS.ssl_train),
        code=script_code("ssl_train.py"),
    output:
        model=result(artifacts.MODEL),
    params:
        ssl=lambda wildcards: SSL_RUNS[model_of(wildcards).ssl_run].settings,
        seed=lambda wildcards: model_of(wildcards).seed,
        loop=lambda wildcards: PLAN.round_training(model_of(wildcards).experiment) if model_of(wildcards).round else {},
        round=lambda wildcards: model_of(wildcards).round,
    log:
        f"{LOGS}/ssl_train/{{model}}.log",
    benchmark:
        f"{BENCHMARKS}/ssl_train/{{model}}.tsv"
    threads: job_threads("train")
    resources:
        **job_resources("train", gpu=True),
    conda:
        ENV
    script:
        "../workflow_scripts/ssl_train.py"


rule ssl_predict:
    """Pseudo Label 1 (probabilities and masks) for the unlabeled volumes of one shard (shard val: the val
    volumes, for a calibrated selection)."""
    input:
        unpack(INPUTS.previous_round("ssl_predict")),
        model=result(artifacts.MODEL),
        images=INPUTS.shard_images,
        code=script_code("ssl_predict.py"),
    output:
        result(artifacts.PSEUDO_LABEL_1),
    params:
        threshold=lambda wildcards: SSL_RUNS[model_of(wildcards).ssl_run].settings["threshold"],
    log:
        f"{LOGS}/ssl_predict/{{model}}_shard-{{shard}}.log",
    benchmark:
        f"{BENCHMARKS}/ssl_predict/{{model}}_shard-{{shard}}.tsv"
    threads: job_threads("infer")
    resources:
        **job_resources("infer", gpu=True),
    conda:
        ENV
    script:
        "../workflow_scripts/ssl_predict.py"


rule evaluate:
    """(Evaluation only: reads the test volumes' tumor labels.) Dice, Jaccard, 95HD, ASD in mm per test
    volume, lesion detection and false-positive volume, and their summary."""
    input:
        unpack(INPUTS.previous_round("evaluate")),
        model=result(artifacts.MODEL),
        images=INPUTS.test_images,
        labels=INPUTS.test_labels,
        code=script_code("evaluate.py"),
    output:
        cases=result(artifacts.TEST_CASES),
        summary=result(artifacts.TEST_SUMMARY),
    params:
        threshold=lambda wildcards: SSL_RUNS[model_of(wildcards).ssl_run].settings["threshold"],
    log:
        f"{LOGS}/evaluate/{{model}}.log",
    benchmark:
        f"{BENCHMARKS}/evaluate/{{model}}.tsv"
    threads: job_threads("infer")
    resources:
        **job_resources("infer", gpu=True),
    conda:
        ENV
    script:
        "../workflow_scripts/evaluate.py"


rule summary:
    """One row per experiment x round x seed: the test-set means and the number of cases behind them, with the
    ground-truth liver and end to end with the predicted liver."""
    input:
        summaries=[row["summary"] for row in SUMMARY_ROWS],
        end_to_end=[row["end_to_end"] for row in SUMMARY_ROWS],
    output:
        report(result(artifacts.SUMMARY), caption="../docs/report/summary.rst", category="Results"),
    params:
        rows=[{key: row[key] for key in SUMMARY_KEYS} for row in SUMMARY_ROWS],
    log:
        f"{LOGS}/summary.log",
    localrule: True
    conda:
        ENV
    script:
        "../workflow_scripts/summary.py"
