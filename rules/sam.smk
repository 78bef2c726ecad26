# Stage II: the medical SAM MS(.). Slices are embedded once (sam_embed); the mask decoder is fine-tuned on the
# labeled ground truth from those embeddings (sam_finetune); Pseudo Label 1 becomes one prompt per connected
# component (sam_prompts) and SAM's masks, united per slice, are Pseudo Label 2 (sam_predict).

PLAN.check_sam_weights()


rule sam_embed:
    """Image embeddings of one shard of the train and val slices, fp16. Depends on the images and the SAM
    base weights only: no experiment, seed, round or SSL setting reruns it."""
    input:
        unpack(INPUTS.sam_weights),
        holdout=result(artifacts.HOLDOUT),
        images=INPUTS.embed_shard_images,
        code=script_code("sam_embed.py"),
    output:
        embeddings=result(artifacts.EMBEDDINGS),
        index=result(artifacts.EMBEDDING_INDEX),
    params:
        sam=lambda wildcards: EMBEDDINGS[wildcards.embed].settings,
    log:
        f"{LOGS}/sam_embed/{{embed}}_shard-{{shard}}.log",
    benchmark:
        f"{BENCHMARKS}/sam_embed/{{embed}}_shard-{{shard}}.tsv"
    threads: job_threads("infer")
    resources:
        **job_resources("infer", gpu=True),
    conda:
        ENV
    script:
        "../workflow_scripts/sam_embed.py"


rule sam_finetune:
    """Fine-tune SAM's mask decoder on the labeled volumes' tumor components (jittered boxes, points) from
    cached embeddings; report zero-shot vs fine-tuned Dice on the val volumes with ground-truth prompts."""
    input:
        unpack(INPUTS.sam_finetune),
        code=script_code("sam_finetune.py"),
    output:
        decoder=result(artifacts.DECODER),
        report=result(artifacts.FINETUNE_REPORT),
    params:
        sam=lambda wildcards: TUNES[wildcards.tune].settings,
    log:
        f"{LOGS}/sam_finetune/{{tune}}_labeled-{{labeled}}_seed-{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/sam_finetune/{{tune}}_labeled-{{labeled}}_seed-{{seed}}.tsv"
    threads: job_threads("train")
    resources:
        **job_resources("train", gpu=True),
    conda:
        ENV
    script:
        "../workflow_scripts/sam_finetune.py"


rule sam_prompts:
    """One prompt per connected component of Pseudo Label 1 in one shard, except those too small or lying
    mostly in the liver's rim (the images hold the liver masks): an inspectable JSON (per slice, per component:
    area, box, points)."""
    input:
        unpack(INPUTS.previous_round("sam_prompts")),
        pl1=result(artifacts.PSEUDO_LABEL_1),
        images=INPUTS.shard_images,
        code=script_code("sam_prompts.py"),
    output:
        result(artifacts.PROMPTS),
    params:
        prompt=lambda wildcards: SAM_RUNS[wildcards.samrun].prompt_settings,
    log:
        f"{LOGS}/sam_prompts/{{model}}_sam-{{samrun}}_shard-{{shard}}.log",
    threads: 1
    resources:
        **job_resources("data"),
    conda:
        ENV
    script:
        "../workflow_scripts/sam_prompts.py"


rule sam_predict:
    """Pseudo Label 2 for one shard: SAM's mask for each prompt from cached embeddings, united per slice, at
    the prepared slices' resolution; each component's predicted IoU in a table beside it."""
    input:
        unpack(INPUTS.previous_round("sam_predict")),
        unpack(INPUTS.sam_decoder),
        unpack(INPUTS.sam_run_embeddings),
        prompts=result(artifacts.PROMPTS),
        code=script_code("sam_predict.py"),
    output:
        masks=result(artifacts.PSEUDO_LABEL_2),
        components=result(artifacts.SAM_COMPONENTS),
    params:
        sam=lambda wildcards: SAM_RUNS[wildcards.samrun].predict_settings,
    log:
        f"{LOGS}/sam_predict/{{model}}_sam-{{samrun}}_shard-{{shard}}.log",
    benchmark:
        f"{BENCHMARKS}/sam_predict/{{model}}_sam-{{samrun}}_shard-{{shard}}.tsv"
    threads: job_threads("infer")
    resources:
        **job_resources("infer", gpu=True),
    conda:
        ENV
    script:
        "../workflow_scripts/sam_predict.py"
