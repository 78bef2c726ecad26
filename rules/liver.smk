# The liver stage and segmentation of new scans (aslseg/liver.py, aslseg/predict.py): a liver model per
# labeled draw, each Stage I model's predictor (the models and settings a prediction needs), its end-to-end
# test metrics with the predicted liver, and the `predict` target.
# Names are in aslseg/artifacts.py and aslseg/plan.py, input functions in aslseg/job_inputs.py.


rule liver_train:
    """The liver model on the labeled volumes' whole slices (best weights on the val volumes)."""
    input:
        unpack(INPUTS.liver_train),
        code=script_code("liver_train.py"),
    output:
        model=result(artifacts.fill(artifacts.LIVER_MODEL, liver=PLAN.liver.key)),
    params:
        liver=PLAN.liver.settings,
        window=PLAN.liver.window,
    log:
        f"{LOGS}/liver_train/labeled-{{labeled}}_seed-{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/liver_train/labeled-{{labeled}}_seed-{{seed}}.tsv"
    threads: job_threads("train")
    resources:
        **job_resources("train", gpu=True),
    conda:
        ENV
    script:
        "../workflow_scripts/liver_train.py"


rule predictor:
    """What segmenting a new scan with a Stage I model takes: its weights, its split's liver model (paths
    relative to this file) and the preparation and threshold it was trained and evaluated with."""
    input:
        tumor_model=result(artifacts.MODEL),
        liver_model=INPUTS.model_liver,
    output:
        result(artifacts.PREDICTOR),
    params:
        data=artifacts.prepare_settings(DATA),
        threshold=lambda wildcards: SSL_RUNS[model_of(wildcards).ssl_run].settings["threshold"],
    log:
        f"{LOGS}/predictor/{{model}}.log",
    localrule: True
    conda:
        ENV
    script:
        "../workflow_scripts/predictor.py"


rule evaluate_end_to_end:
    """(Evaluation only: reads the test volumes' segmentations.) Each test volume segmented from its CT alone,
    as a new scan would be (predicted liver, the volume's own grid), and scored against its labels there."""
    input:
        unpack(INPUTS.previous_round("evaluate_end_to_end")),
        predictor=result(artifacts.PREDICTOR),
        tumor_model=result(artifacts.MODEL),
        liver_model=INPUTS.model_liver,
        volumes=INPUTS.test_raw("volume"),
        segmentations=INPUTS.test_raw("segmentation"),
        code=script_code("evaluate_end_to_end.py"),
    output:
        cases=result(artifacts.END_TO_END_CASES),
        summary=result(artifacts.END_TO_END_SUMMARY),
    log:
        f"{LOGS}/evaluate_end_to_end/{{model}}.log",
    benchmark:
        f"{BENCHMARKS}/evaluate_end_to_end/{{model}}.tsv"
    threads: job_threads("infer")
    resources:
        **job_resources("infer", gpu=True),
    conda:
        ENV
    script:
        "../workflow_scripts/evaluate_end_to_end.py"


rule predict:
    """Segment every scan of predict.input with the model that predict.experiment / round / seed name (the
    same as python -m aslseg.predict); the target of `snakemake predict`."""
    input:
        lambda wildcards: PLAN.predict_targets(),


rule predict_scan:
    """One scan -> <name>_seg.nii.gz (0 background, 1 liver, 2 tumor) in its own grid, and <name>_seg.json."""
    input:
        predictor=lambda wildcards: PLAN.path(artifacts.PREDICTOR, model=PLAN.predict_request()[0]),
        tumor_model=lambda wildcards: PLAN.path(artifacts.MODEL, model=PLAN.predict_request()[0]),
        liver_model=lambda wildcards: PLAN.predict_liver_model(),
        scan=lambda wildcards: ancient(PLAN.predict_scans()[wildcards.scan]),
        liver=lambda wildcards: [ancient(PREDICT["liver_dir"])] if PREDICT["liver_dir"] else [],
        code=script_code("predict_scan.py"),
    output:
        **PLAN.predict_outputs(),
    params:
        request=lambda wildcards: PLAN.predict_request()[1],
        model_dir=lambda wildcards: f"{RESULTS}/{PLAN.predict_request()[0]}",
        liver_dir=PREDICT["liver_dir"],
    log:
        f"{LOGS}/predict/{{scan}}.log",
    wildcard_constraints:
        scan=r"[^/]+",
    threads: job_threads("infer")
    resources:
        **job_resources("infer", gpu=True),
    conda:
        ENV
    script:
        "../workflow_scripts/predict_scan.py"
