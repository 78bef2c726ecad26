# Stage I: train SS(.) on a split, predict Pseudo Label 1 for the unlabeled slices, evaluate on the test set.
# An SSL run is named by its method and a hash of the settings it depends on (the ssl section and the labeled
# fraction), so experiments that would train the same model share one.


rule ssl_train:
    """Train SS(.) with ssl.method; the labels of labeled and val volumes are its only label inputs."""
    input:
        unpack(ssl_run_inputs),
        code=package_code("ssl", "metrics.py", "prepared.py"),
    output:
        model=f"{RESULTS}/ssl/{{run}}/seed-{{seed}}/model.pt",
    params:
        ssl=lambda wildcards: SSL_RUNS[wildcards.run]["ssl"],
    log:
        f"{LOGS}/ssl_train/{{run}}_seed-{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/ssl_train/{{run}}_seed-{{seed}}.tsv"
    threads: job_threads("train")
    resources:
        **job_resources("train", gpu=True),
    conda:
        ENV
    script:
        "../workflow_scripts/ssl_train.py"


rule ssl_predict:
    """Pseudo Label 1 (probabilities and masks) for the unlabeled volumes of one shard."""
    input:
        model=f"{RESULTS}/ssl/{{run}}/seed-{{seed}}/model.pt",
        images=lambda wildcards: [
            prepared_image(case) for case in shard_cases(wildcards.shard, run_split(wildcards)["unlabeled"])
        ],
        code=package_code("ssl", "prepared.py"),
    output:
        f"{RESULTS}/ssl/{{run}}/seed-{{seed}}/pl1/shard-{{shard}}.npz",
    params:
        threshold=lambda wildcards: SSL_RUNS[wildcards.run]["ssl"]["threshold"],
    log:
        f"{LOGS}/ssl_predict/{{run}}_seed-{{seed}}_shard-{{shard}}.log",
    benchmark:
        f"{BENCHMARKS}/ssl_predict/{{run}}_seed-{{seed}}_shard-{{shard}}.tsv"
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
        model=f"{RESULTS}/ssl/{{run}}/seed-{{seed}}/model.pt",
        images=lambda wildcards: [prepared_image(case) for case in run_split(wildcards)["test"]],
        labels=lambda wildcards: [prepared_label(case) for case in run_split(wildcards)["test"]],
        code=package_code("metrics.py", "ssl", "prepared.py"),
    output:
        cases=f"{RESULTS}/ssl/{{run}}/seed-{{seed}}/test_cases.csv",
        summary=f"{RESULTS}/ssl/{{run}}/seed-{{seed}}/test_summary.json",
    params:
        threshold=lambda wildcards: SSL_RUNS[wildcards.run]["ssl"]["threshold"],
    log:
        f"{LOGS}/evaluate/{{run}}_seed-{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/evaluate/{{run}}_seed-{{seed}}.tsv"
    threads: job_threads("infer")
    resources:
        **job_resources("infer", gpu=True),
    conda:
        ENV
    script:
        "../workflow_scripts/evaluate.py"


rule summary:
    """One row per experiment x round x seed: the test-set means and the number of cases behind them."""
    input:
        lambda wildcards: [experiment_summary(e, s) for e in config["targets"] for s in config["seeds"]],
    output:
        report(f"{RESULTS}/summary.csv", caption="../docs/report/summary.rst", category="Results"),
    params:
        rows=[
            {"experiment": e, "round": 0, "seed": s, "run": ssl_run(e)} for e in config["targets"] for s in config["seeds"]
        ],
    log:
        f"{LOGS}/summary.log",
    localrule: True
    conda:
        ENV
    script:
        "../workflow_scripts/summary.py"
