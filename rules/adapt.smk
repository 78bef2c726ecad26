# Stage III: the adaptation network AN(.). Synthetic pseudo-labels on the labeled slices (ground truth
# corrupted the way SS(.) errs, prompted through the same SAM) train AN(image ⊕ PL2) -> ground truth; AN then
# refines each PL2 shard into Pseudo Label 3.


rule adapt_synthesize:
    """Synthetic PL1 (corrupted ground truth) and PL2 (SAM's masks for its prompts) for the labeled volumes'
    slices (AN's training set) and the val volumes' slices (its validation set)."""
    input:
        unpack(INPUTS.synthesis),
        code=script_code("adapt_synthesize.py"),
    output:
        synthetic=result(artifacts.SYNTHETIC),
        summary=result(artifacts.SYNTHETIC_SUMMARY),
    params:
        sam=lambda wildcards: SYNTHS[wildcards.synth].sam,
        corruptions=lambda wildcards: SYNTHS[wildcards.synth].corruptions,
        copies=lambda wildcards: SYNTHS[wildcards.synth].copies,
    log:
        f"{LOGS}/adapt_synthesize/{{synth}}_labeled-{{labeled}}_seed-{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/adapt_synthesize/{{synth}}_labeled-{{labeled}}_seed-{{seed}}.tsv"
    threads: job_threads("infer")
    resources:
        **job_resources("infer", gpu=True),
    conda:
        ENV
    script:
        "../workflow_scripts/adapt_synthesize.py"


rule adapt_train:
    """Train AN on the labeled volumes' synthetic pseudo-labels; report its val Dice against that of the
    synthetic PL2 it starts from."""
    input:
        unpack(INPUTS.adapt_train),
        code=script_code("adapt_train.py"),
    output:
        model=result(artifacts.ADAPT_MODEL),
        report=result(artifacts.ADAPT_REPORT),
    params:
        adapt=lambda wildcards: ADAPTS[wildcards.adapt].training,
    log:
        f"{LOGS}/adapt_train/{{adapt}}_labeled-{{labeled}}_seed-{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/adapt_train/{{adapt}}_labeled-{{labeled}}_seed-{{seed}}.tsv"
    threads: job_threads("train")
    resources:
        **job_resources("train", gpu=True),
    conda:
        ENV
    script:
        "../workflow_scripts/adapt_train.py"


rule adapt_judge:
    """Does AN improve this round's real pseudo labels? AN refines the val volumes' PL2, and both are compared
    with their ground truth (pooled Dice): with adapt.fallback, PL3 is AN's only where it wins."""
    input:
        unpack(INPUTS.previous_round("adapt_judge")),
        unpack(INPUTS.adapt_judge),
        code=script_code("adapt_judge.py"),
    output:
        result(artifacts.JUDGEMENT),
    log:
        f"{LOGS}/adapt_judge/{{model}}_sam-{{samrun}}_adapt-{{adaptrun}}.log",
    benchmark:
        f"{BENCHMARKS}/adapt_judge/{{model}}_sam-{{samrun}}_adapt-{{adaptrun}}.tsv"
    threads: job_threads("infer")
    resources:
        **job_resources("infer", gpu=True),
    conda:
        ENV
    script:
        "../workflow_scripts/adapt_judge.py"


rule adapt_refine:
    """Pseudo Label 3 for one shard: AN(image ⊕ PL2 [⊕ SAM probability ⊕ PL1]); with adapt.fallback, PL2 as
    it is in a round where AN lost on the val volumes (rule adapt_judge)."""
    input:
        unpack(INPUTS.previous_round("adapt_refine")),
        unpack(INPUTS.adapt_refine),
        code=script_code("adapt_refine.py"),
    output:
        result(artifacts.PSEUDO_LABEL_3),
    log:
        f"{LOGS}/adapt_refine/{{model}}_sam-{{samrun}}_adapt-{{adaptrun}}_shard-{{shard}}.log",
    benchmark:
        f"{BENCHMARKS}/adapt_refine/{{model}}_sam-{{samrun}}_adapt-{{adaptrun}}_shard-{{shard}}.tsv"
    threads: job_threads("infer")
    resources:
        **job_resources("infer", gpu=True),
    conda:
        ENV
    script:
        "../workflow_scripts/adapt_refine.py"
