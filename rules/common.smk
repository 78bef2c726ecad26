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


def sam_run_name(sam):
    """A SAM run: "<prompt>-<hash of every SAM setting>" (box+point is spelled box_point in paths)."""
    settings = {**sam_embedding_settings(sam), **sam_tuning_settings(sam), "prompt": sam["prompt"], "threshold": sam["threshold"]}
    return f"{sam['prompt'].replace('+', '_')}-{settings_key(settings)}"


def sam_run_of(experiment):
    return sam_run_name(EXPERIMENTS[experiment]["sam"])


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


def embed_shard_cases(wildcards):
    """Train and val volumes (the slices Stage II ever prompts or fine-tunes on) of one embedding shard; test
    volumes are never embedded."""
    cases = sorted(holdout()["train"] + holdout()["val"])
    return cases[int(wildcards.shard) :: EMBEDDINGS[wildcards.embed]["shards"]]


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


def decoder_file(sam, labeled, seed):
    """{"decoder": the fine-tuned decoder a SAM run uses}, or {} when sam.finetune.enabled is false (zero-shot)."""
    if not sam["finetune"]["enabled"]:
        return {}
    return {"decoder": f"{RESULTS}/sam/finetune/{tune_key(sam)}/labeled-{labeled}/seed-{seed}/decoder.pt"}


def sam_decoder(wildcards):
    return decoder_file(SAM_RUNS[wildcards.samrun], f"{SSL_RUNS[wildcards.run]['labeled']:g}", wildcards.seed)


def finetune_report(experiment, seed):
    sam = EXPERIMENTS[experiment]["sam"]
    if not sam["finetune"]["enabled"]:
        return None
    labeled = f"{EXPERIMENTS[experiment]['data']['split']['labeled']:g}"
    return f"{RESULTS}/sam/finetune/{tune_key(sam)}/labeled-{labeled}/seed-{seed}/val_prompt_dice.json"


# ---- Stage III and selection ------------------------------------------------------------------------------
# Synthetic pseudo-labels depend on the SAM run and the corruption settings; AN also on its training
# settings; PL3 on AN and the PL2 it refines; the selection also on `select`. So editing select.threshold
# redoes only the scoring and what follows, never SAM, AN or Stage I.
ADAPT_TRAINING = ("inputs", "iterations", "batch_size", "lr", "weight_decay", "features", "foreground_fraction",
                  "val_every", "rotate_deg", "scale", "intensity", "threshold")


def synth_key(sam, adapt):
    return settings_key(sam_run_name(sam), adapt["corruptions"], adapt["copies"])


def adapt_run_name(sam, adapt):
    """AN's name: a hash of its synthetic data and training settings, or "none" without AN (adapt.enabled
    false: PL2 is scored as it is)."""
    if not adapt["enabled"]:
        return "none"
    return settings_key(synth_key(sam, adapt), {key: adapt[key] for key in ADAPT_TRAINING})


STAGE3 = {name: EXPERIMENTS[name] for name in STAGE2_EXPERIMENTS}
SYNTHS = {synth_key(e["sam"], e["adapt"]): e for e in STAGE3.values() if e["adapt"]["enabled"]}
ADAPTS = {adapt_run_name(e["sam"], e["adapt"]): e for e in STAGE3.values() if e["adapt"]["enabled"]}
SELECTS = {settings_key(e["select"]): e["select"] for e in STAGE3.values()}


def synthesis_inputs(wildcards):
    """SAM (embeddings, decoder) and the images and tumor labels of the labeled volumes (training examples)
    and val volumes (AN's validation): the labels a Stage I run of the same split may read."""
    settings = SYNTHS[wildcards.synth]
    split = json.loads(Path(tune_split_file(wildcards)).read_text())
    cases = sorted(split["labeled"] + split["val"])
    return {
        **embedding_files(settings["sam"]),
        **decoder_file(settings["sam"], wildcards.labeled, wildcards.seed),
        "split": tune_split_file(wildcards),
        "images": [prepared_image(c) for c in cases],
        "labels": [prepared_label(c) for c in cases],
    }


def adapt_train_inputs(wildcards):
    settings = ADAPTS[wildcards.adapt]
    split = json.loads(Path(tune_split_file(wildcards)).read_text())
    cases = sorted(split["labeled"] + split["val"])
    key = synth_key(settings["sam"], settings["adapt"])
    return {
        "synthetic": f"{RESULTS}/adapt/synthetic/{key}/labeled-{wildcards.labeled}/seed-{wildcards.seed}/synthetic.npz",
        "split": tune_split_file(wildcards),
        "images": [prepared_image(c) for c in cases],
        "labels": [prepared_label(c) for c in cases],
    }


def stage2_dir(run, seed, samrun):
    return f"{RESULTS}/ssl/{run}/seed-{seed}/sam-{samrun}"


def stage3_dir(run, seed, samrun, adaptrun):
    return f"{stage2_dir(run, seed, samrun)}/adapt-{adaptrun}"


def pseudo_label_3(wildcards, shard):
    """PL3 of a shard: AN's refinement of PL2, or PL2 itself without AN."""
    if wildcards.adaptrun == "none":
        return f"{stage2_dir(wildcards.run, wildcards.seed, wildcards.samrun)}/pl2/shard-{shard}.npz"
    return f"{stage3_dir(wildcards.run, wildcards.seed, wildcards.samrun, wildcards.adaptrun)}/pl3/shard-{shard}.npz"


def selection_dir(experiment, seed):
    settings = EXPERIMENTS[experiment]
    samrun = sam_run_name(settings["sam"])
    adaptrun = adapt_run_name(settings["sam"], settings["adapt"])
    return f"{stage3_dir(ssl_run(experiment), seed, samrun, adaptrun)}/select-{settings_key(settings['select'])}"


def adapt_report(experiment, seed):
    settings = EXPERIMENTS[experiment]
    if not settings["adapt"]["enabled"]:
        return None
    labeled = f"{settings['data']['split']['labeled']:g}"
    return f"{RESULTS}/adapt/model/{adapt_run_name(settings['sam'], settings['adapt'])}/labeled-{labeled}/seed-{seed}/report.json"


def selection_inputs(wildcards):
    """PL1, PL3 (or PL2 without AN) and SAM's per-component table of every shard of one round's selection."""
    shard_files = lambda pattern: [pattern.format(shard=k) for k in SHARDS]
    base = stage2_dir(wildcards.run, wildcards.seed, wildcards.samrun)
    return {
        "pl1": shard_files(f"{RESULTS}/ssl/{wildcards.run}/seed-{wildcards.seed}/pl1/shard-{{shard}}.npz"),
        "pl3": [pseudo_label_3(wildcards, k) for k in SHARDS],
        "components": shard_files(f"{base}/pl2/shard-{{shard}}.csv"),
    }


LOOP_ROWS = [
    {"experiment": e, "seed": s, "run": ssl_run(e), "prompt": EXPERIMENTS[e]["sam"]["prompt"],
     "quality": f"{selection_dir(e, s)}/pseudo_label_quality.json", "finetune_report": finetune_report(e, s),
     "adapt_report": adapt_report(e, s), "labeled_list": f"{selection_dir(e, s)}/labeled_round-1.csv"}
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
