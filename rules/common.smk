# Helpers shared by all rule files -- where things live, which cases exist, the code a job depends on.
import json
from pathlib import Path

from aslseg.data.lits import discover_cases
from aslseg.config import ConfigError
from aslseg.experiments import experiment_config, settings_key
from aslseg.ssl.settings import method_settings

RESULTS = config["results_dir"]
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"
DATA = config["data"]
RESOURCES = config["resources"]

ENV = "../envs/aslseg.yaml"  # relative to the rule files


def split_path(labeled, seed):
    """The split for a labeled fraction (a number, or the "{labeled}" wildcard) and a run seed."""
    labeled = labeled if isinstance(labeled, str) else f"{labeled:g}"
    return f"{RESULTS}/data/splits/labeled-{labeled}/seed-{seed}.json"


def prepared_image(case):
    return f"{RESULTS}/data/prepared/images/case-{case}.npz"


def prepared_label(case):
    return f"{RESULTS}/data/prepared/labels/case-{case}.npz"


def package_code(*modules):
    """Package modules (files, or folders meaning every module in them) a job runs, as inputs: editing them
    must rerun the job (a script: directive only tracks the script itself)."""
    paths = []
    for module in modules:
        path = Path(workflow.basedir) / "aslseg" / module
        paths.extend(sorted(str(p) for p in path.rglob("*.py")) if path.is_dir() else [str(path)])
    return paths


# ---- experiments and Stage I runs -------------------------------------------------------------------------
# Each target experiment's effective config is validated here, before any job runs. An SSL run is named by
# its method and a hash of what the model depends on (the ssl settings its method reads, the labeled
# fraction): experiments that would train the same model share it.
EXPERIMENTS = {name: experiment_config(config, name) for name in config["targets"]}


def ssl_run(experiment):
    settings = EXPERIMENTS[experiment]
    labeled = settings["data"]["split"]["labeled"]
    return f"{settings['ssl']['method']}-{settings_key(method_settings(settings['ssl']), labeled)}"


SSL_RUNS = {
    ssl_run(name): {"ssl": method_settings(settings["ssl"]), "labeled": settings["data"]["split"]["labeled"]}
    for name, settings in EXPERIMENTS.items()
}


def run_split_file(wildcards):
    """The split a run trains on; a checkpoint, since which volumes' labels a job reads depends on it."""
    labeled = f"{SSL_RUNS[wildcards.run]['labeled']:g}"
    return checkpoints.split.get(labeled=labeled, seed=wildcards.seed).output[0]


def run_split(wildcards):
    return json.loads(Path(run_split_file(wildcards)).read_text())


def ssl_run_inputs(wildcards):
    """Images of the training and val volumes; tumor labels of the labeled and val volumes only."""
    split = run_split(wildcards)
    return {
        "split": run_split_file(wildcards),
        "images": [prepared_image(c) for c in sorted(split["labeled"] + split["unlabeled"] + split["val"])],
        "labels": [prepared_label(c) for c in sorted(split["labeled"] + split["val"])],
    }


def experiment_summary(experiment, seed):
    return f"{RESULTS}/ssl/{ssl_run(experiment)}/seed-{seed}/test_summary.json"


# ---- Stage II: the medical SAM --------------------------------------------------------------------------
# Three levels of sharing, each named by a hash of exactly what it depends on:
# - embeddings (backend, weights, precision, sharding): one set for every experiment, seed and round;
# - a fine-tuned decoder (+ fine-tuning and prompt-shape settings): per labeled fraction and seed;
# - a SAM run (+ the prompt type and threshold): applied to the Pseudo Label 1 of an SSL run.
EMBED_KEYS = ("backend", "model_type", "checkpoint", "input_norm", "bf16", "embed_batch", "shards")
PROMPT_KEYS = ("box_margin", "min_component_pixels", "multipoint_n")


def sam_embedding_settings(sam):
    return {key: sam[key] for key in EMBED_KEYS}


def sam_tuning_settings(sam):
    return {"finetune": sam["finetune"], **{key: sam[key] for key in PROMPT_KEYS}}


def sam_run_of(experiment):
    """The SAM run of an experiment: "<prompt>-<hash>" (box+point is spelled box_point in paths)."""
    sam = EXPERIMENTS[experiment]["sam"]
    settings = {**sam_embedding_settings(sam), **sam_tuning_settings(sam), "prompt": sam["prompt"], "threshold": sam["threshold"]}
    return f"{sam['prompt'].replace('+', '_')}-{settings_key(settings)}"


STAGE2_EXPERIMENTS = [name for name, settings in EXPERIMENTS.items() if settings["loop"]["rounds"] >= 1]
SAM_RUNS = {sam_run_of(name): EXPERIMENTS[name]["sam"] for name in STAGE2_EXPERIMENTS}
EMBEDDINGS = {settings_key(sam_embedding_settings(sam)): sam for sam in SAM_RUNS.values()}
TUNES = {settings_key(sam_embedding_settings(sam), sam_tuning_settings(sam)): sam for sam in SAM_RUNS.values()}


def embed_key(sam):
    return settings_key(sam_embedding_settings(sam))


def tune_key(sam):
    return settings_key(sam_embedding_settings(sam), sam_tuning_settings(sam))


def check_sam_weights():
    """A missing or mismatching checkpoint stops the workflow here, before any job runs (torch is imported
    only when a target uses Stage II with a user-given checkpoint)."""
    checked = set()
    for sam in SAM_RUNS.values():
        spec = (sam["backend"], sam["model_type"], sam["checkpoint"])
        if sam["backend"] == "segment_anything" and sam["checkpoint"] is None:
            raise ConfigError("sam.checkpoint: the segment_anything backend needs a weights file (SAM or MedSAM)")
        if sam["checkpoint"] is not None and spec not in checked:
            from aslseg.sam.model import SamCheckpointError, check_checkpoint

            try:
                check_checkpoint(*spec)
            except SamCheckpointError as error:
                raise ConfigError(str(error)) from None
            checked.add(spec)


def sam_weights(wildcards):
    """The base weights file as an input when the config names one (ancient: a copied file with a new
    timestamp must not re-embed every slice); the shipped LiteMedSAM weights belong to the installed package."""
    weights = EMBEDDINGS[wildcards.embed]["checkpoint"]
    return {"weights": ancient(weights)} if weights else {}


def holdout():
    return json.loads(Path(checkpoints.holdout.get().output[0]).read_text())


def embed_shard_cases(shard):
    """Train and val volumes (the slices Stage II ever prompts or fine-tunes on) of embedding shard `shard`;
    test volumes are never embedded."""
    cases = sorted(holdout()["train"] + holdout()["val"])
    shards = EMBEDDINGS[next(iter(EMBEDDINGS))]["shards"] if EMBEDDINGS else 1
    return cases[int(shard) :: shards]


def embedding_files(sam):
    key = embed_key(sam)
    return {
        "embeddings": [f"{RESULTS}/sam/embeddings/{key}/shard-{k}.npy" for k in range(sam["shards"])],
        "embedding_index": [f"{RESULTS}/sam/embeddings/{key}/shard-{k}.json" for k in range(sam["shards"])],
    }


def tune_split_file(wildcards):
    return checkpoints.split.get(labeled=wildcards.labeled, seed=wildcards.seed).output[0]


def sam_finetune_inputs(wildcards):
    """Embeddings, and the tumor labels of the labeled volumes (to fine-tune on) and val volumes (to report
    zero-shot vs fine-tuned Dice): the labels a Stage I run of the same split may read, nothing more."""
    split = json.loads(Path(tune_split_file(wildcards)).read_text())
    return {
        **embedding_files(TUNES[wildcards.tune]),
        "split": tune_split_file(wildcards),
        "labels": [prepared_label(c) for c in sorted(split["labeled"] + split["val"])],
    }


def sam_decoder(wildcards):
    """The fine-tuned decoder a SAM run uses ({} when sam.finetune.enabled is false: SAM zero-shot)."""
    sam = SAM_RUNS[wildcards.samrun]
    if not sam["finetune"]["enabled"]:
        return {}
    labeled = f"{SSL_RUNS[wildcards.run]['labeled']:g}"
    return {"decoder": f"{RESULTS}/sam/finetune/{tune_key(sam)}/labeled-{labeled}/seed-{wildcards.seed}/decoder.pt"}


def stage2_dir(run, seed, samrun):
    return f"{RESULTS}/ssl/{run}/seed-{seed}/sam-{samrun}"


def pseudo_label_quality(experiment, seed):
    return f"{stage2_dir(ssl_run(experiment), seed, sam_run_of(experiment))}/pseudo_label_quality.json"


def finetune_report(experiment, seed):
    sam = EXPERIMENTS[experiment]["sam"]
    if not sam["finetune"]["enabled"]:
        return None
    labeled = f"{EXPERIMENTS[experiment]['data']['split']['labeled']:g}"
    return f"{RESULTS}/sam/finetune/{tune_key(sam)}/labeled-{labeled}/seed-{seed}/val_prompt_dice.json"


STAGE2_ROWS = [
    {"experiment": e, "seed": s, "run": ssl_run(e), "sam_run": sam_run_of(e), "prompt": EXPERIMENTS[e]["sam"]["prompt"],
     "quality": pseudo_label_quality(e, s), "finetune_report": finetune_report(e, s)}
    for e in config["targets"] if e in STAGE2_EXPERIMENTS for s in config["seeds"]
]


if DATA["source"] == "phantom":
    RAW_DIR = f"{RESULTS}/data/phantom"
    CASE_IDS = list(range(DATA["phantom"]["n_volumes"]))

    def raw_case_files(wildcards):
        return {
            "volume": f"{RAW_DIR}/volume-{wildcards.case}.nii.gz",
            "segmentation": f"{RAW_DIR}/segmentation-{wildcards.case}.nii.gz",
        }

else:
    # Pairing problems (a volume without its segmentation) stop the workflow here, before any job runs.
    LITS_CASES = {files.case_id: files for files in discover_cases(DATA["lits_dir"])}
    RAW_DIR = DATA["lits_dir"]
    CASE_IDS = sorted(LITS_CASES)

    def raw_case_files(wildcards):
        files = LITS_CASES[int(wildcards.case)]
        # ancient(): raw data is read in place; a touched timestamp alone must not redo everything.
        return {"volume": ancient(str(files.volume)), "segmentation": ancient(str(files.segmentation))}


# ---- resources --------------------------------------------------------------------------------------------
# Rules ask for portable resources only (mem_mb, runtime, gpu); a SLURM profile turns them into sbatch options
# and adds the site's partition / account / GPU model. Memory grows with each retry (profile: retries), so a
# job killed for memory asks for more the next time.


def gpu_resources():
    """{"gpu": N} when the config asks for GPUs (resources.gpu: N > 0), {} on the CPU default -- unpack it into
    the resources of a rule that a GPU speeds up, so a CPU config requests no GPU anywhere."""
    return {"gpu": RESOURCES["gpu"]} if RESOURCES["gpu"] > 0 else {}


def job_resources(kind, gpu=False):
    """mem_mb and runtime of a job of `kind` (data, train, infer: the sections of config `resources`), plus the
    GPU request when `gpu` is true. Use as `resources: **job_resources("train", gpu=True)`."""
    section = RESOURCES[kind]
    factor = RESOURCES["retry_memory_factor"]

    def mem_mb(wildcards, attempt):
        return int(section["mem_mb"] * factor ** (attempt - 1))

    return {"mem_mb": mem_mb, "runtime": section["runtime"], **(gpu_resources() if gpu else {})}


def job_threads(kind):
    """CPU threads of a train or infer job (resources.<kind>.threads)."""
    return RESOURCES[kind]["threads"]


# Inference runs over the cases in resources.infer.shards jobs (shard k takes every k-th case), so many jobs
# of one step can run at once on a cluster.
SHARDS = list(range(RESOURCES["infer"]["shards"]))


def shard_cases(shard, case_ids):
    """The cases of inference shard `shard` (an int or wildcard string) among `case_ids`."""
    return [case for index, case in enumerate(sorted(case_ids)) if index % len(SHARDS) == int(shard)]
