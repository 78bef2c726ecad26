# Stage II: the medical SAM MS(.). Slices are embedded once (sam_embed); the mask decoder is fine-tuned on the
# labeled ground truth from those embeddings (sam_finetune); Pseudo Label 1 becomes one prompt per connected
# component (sam_prompts) and SAM's masks, united per slice, are Pseudo Label 2 (sam_predict).

check_sam_weights()


rule sam_embed:
    """Image embeddings of one shard of the train and val slices, fp16. Depends on the images and the SAM
    base weights only: no experiment, seed, round or SSL setting reruns it."""
    input:
        unpack(sam_weights),
        holdout=f"{RESULTS}/data/splits/holdout.json",
        images=lambda wildcards: [prepared_image(case) for case in embed_shard_cases(wildcards)],
        code=script_code("sam_embed.py"),
    output:
        embeddings=f"{RESULTS}/{EMBEDDINGS_DIR}/shard-{{shard}}.npy",
        index=f"{RESULTS}/{EMBEDDINGS_DIR}/shard-{{shard}}.json",
    params:
        sam=lambda wildcards: sam_embedding_settings(EMBEDDINGS[wildcards.embed]),
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
        unpack(sam_finetune_inputs),
        code=script_code("sam_finetune.py"),
    output:
        decoder=f"{RESULTS}/{FINETUNE_DIR}/decoder.pt",
        report=f"{RESULTS}/{FINETUNE_DIR}/val_prompt_dice.json",
    params:
        sam=lambda wildcards: finetune_settings(TUNES[wildcards.tune]),
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
    """One prompt per connected component of Pseudo Label 1 in one shard: an inspectable JSON (per slice, per
    component: area, box, points)."""
    input:
        unpack(previous_round_inputs("sam_prompts")),
        pl1=f"{RESULTS}/{{model}}/pl1/shard-{{shard}}.npz",
        code=script_code("sam_prompts.py"),
    output:
        f"{RESULTS}/{SAM_RUN_DIR}/prompts/shard-{{shard}}.json",
    params:
        prompt=lambda wildcards: prompt_settings(SAM_RUNS[wildcards.samrun]),
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
        unpack(previous_round_inputs("sam_predict")),
        unpack(sam_decoder),
        unpack(lambda wildcards: embedding_files(SAM_RUNS[wildcards.samrun])),
        prompts=f"{RESULTS}/{SAM_RUN_DIR}/prompts/shard-{{shard}}.json",
        code=script_code("sam_predict.py"),
    output:
        masks=f"{RESULTS}/{SAM_RUN_DIR}/pl2/shard-{{shard}}.npz",
        components=f"{RESULTS}/{SAM_RUN_DIR}/pl2/shard-{{shard}}.csv",
    params:
        sam=lambda wildcards: sam_predict_settings(SAM_RUNS[wildcards.samrun]),
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
