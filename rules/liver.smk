# The liver stage and segmentation of new scans (aslseg/liver.py, aslseg/predict.py): a liver model per
# labeled draw, each Stage I model's predictor (the models and settings a prediction needs), its end-to-end
# test metrics with the predicted liver, and the `predict` target.
# Names and input functions are in rules/runs.smk.


rule liver_train:
    """The liver model on the labeled volumes' whole slices (best weights on the val volumes)."""
    input:
        unpack(liver_train_inputs),
        code=script_code("liver_train.py"),
    output:
        model=f"{RESULTS}/liver/{LIVER_KEY}/labeled-{{labeled}}/seed-{{seed}}/model.pt",
    params:
        liver=LIVER,
        window=DATA["window"],
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
        tumor_model=f"{RESULTS}/{{model}}/model.pt",
        liver_model=model_liver,
    output:
        f"{RESULTS}/{{model}}/predictor.json",
    params:
        data={key: DATA[key] for key in ("window", "size", "crop", "crop_margin_mm", "slice_margin")},
        threshold=lambda wildcards: SSL_RUNS[model_of(wildcards).run]["ssl"]["threshold"],
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
        unpack(previous_round_inputs("evaluate_end_to_end")),
        predictor=f"{RESULTS}/{{model}}/predictor.json",
        tumor_model=f"{RESULTS}/{{model}}/model.pt",
        liver_model=model_liver,
        volumes=test_raw("volume"),
        segmentations=test_raw("segmentation"),
        code=script_code("evaluate_end_to_end.py"),
    output:
        cases=f"{RESULTS}/{{model}}/end_to_end/test_cases.csv",
        summary=f"{RESULTS}/{{model}}/end_to_end/test_summary.json",
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
        lambda wildcards: [f"{PREDICT_DIR}/{name}_seg.nii.gz" for name in predict_scans()],


rule predict_scan:
    """One scan -> <name>_seg.nii.gz (0 background, 1 liver, 2 tumor) in its own grid, and <name>_seg.json."""
    input:
        predictor=lambda wildcards: f"{RESULTS}/{predict_request()[0]}/predictor.json",
        tumor_model=lambda wildcards: f"{RESULTS}/{predict_request()[0]}/model.pt",
        liver_model=lambda wildcards: liver_model_file(parse_model(predict_request()[0]).labeled,
                                                       parse_model(predict_request()[0]).seed),
        scan=lambda wildcards: ancient(predict_scans()[wildcards.scan]),
        liver=lambda wildcards: [ancient(PREDICT["liver_dir"])] if PREDICT["liver_dir"] else [],
        code=script_code("predict_scan.py"),
    output:
        **PREDICT_SCAN_OUTPUTS,
    params:
        request=lambda wildcards: predict_request()[1],
        model_dir=lambda wildcards: f"{RESULTS}/{predict_request()[0]}",
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
