# Which artifacts each experiment needs, and the input functions that find them. What an artifact is called
# and which settings it depends on lives in aslseg/artifacts.py (its docstring draws the folders); this file
# wires those names to the experiments of this config. Functions and constants only (the rule files use them).
#   results/liver/{hash}/labeled-F/seed-S/model.pt   the liver model of a labeled draw (config liver, data.window)
from aslseg import artifacts
from aslseg.artifacts import (
    ADAPT_MODEL_DIR, ADAPT_RUN_DIR, EMBEDDINGS_DIR, FINETUNE_DIR, NONE, SAM_RUN_DIR, SELECTION_DIR, SYNTHESIS_DIR,
    VAL_SHARD, Catalog, adapt_run_name, adapt_training_settings, finetune_settings, labeled_name, prompt_settings,
    sam_embedding_settings, sam_predict_settings, sam_run_name,
)

# ---- experiments and Stage I runs -------------------------------------------------------------------------
# The experiments of `targets` (rule all) and of the paper's tables (rule paper); each one's effective config
# is validated here, before any job runs. A paper experiment that `experiments` does not define is an error
# of the paper target only (paper_targets below), so a config with experiments of its own still runs its
# targets.
PAPER = config["paper"]
PAPER_METHODS = [name for name in PAPER["methods"] if name in config["experiments"]]
PAPER_ABLATION = [name for name in PAPER["ablation"] if name in config["experiments"]]
PAPER_REFERENCE = [PAPER["reference"]] if PAPER["reference"] in config["experiments"] else []
PAPER_EXPERIMENTS = list(dict.fromkeys(PAPER_METHODS + PAPER_ABLATION + PAPER_REFERENCE))
EXPERIMENTS = {name: experiment_config(config, name) for name in dict.fromkeys(config["targets"] + PAPER_EXPERIMENTS)}
for _name, _settings in EXPERIMENTS.items():
    if not _settings["sam"]["enabled"] and _settings["select"]["agreement_weight"] > 0:
        raise ConfigError(f"experiments.{_name}: without SAM the final label is PL1 itself, so agreement is 1 on "
                          "every slice; set select.agreement_weight to 0 and select.confidence_weight > 0")


CATALOG = Catalog(EXPERIMENTS)
SSL_RUNS = CATALOG.ssl_runs


def ssl_run(experiment):
    return artifacts.ssl_run_name(EXPERIMENTS[experiment])


def rounds_of(experiment):
    """Round indices whose SS model the experiment trains and evaluates: 0 .. loop.rounds."""
    return range(EXPERIMENTS[experiment]["loop"]["rounds"] + 1)


# ---- Stage II: the medical SAM --------------------------------------------------------------------------
LOOP_EXPERIMENTS = CATALOG.loop_experiments
STAGE2_EXPERIMENTS = [name for name in LOOP_EXPERIMENTS if EXPERIMENTS[name]["sam"]["enabled"]]
SAM_RUNS, EMBEDDINGS, TUNES = CATALOG.sam_runs, CATALOG.embeddings, CATALOG.tunes


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


def embedding_files(sam):
    return {name: [f"{RESULTS}/{path}" for path in paths] for name, paths in artifacts.embedding_files(sam).items()}


def decoder_file(sam, labeled, seed):
    """{"decoder": the fine-tuned decoder a SAM run uses}, or {} when sam.finetune.enabled is false (zero-shot)."""
    if not sam["finetune"]["enabled"]:
        return {}
    return {"decoder": f"{RESULTS}/{artifacts.finetune_dir(sam, labeled, seed)}/decoder.pt"}


def finetune_report(experiment, seed):
    sam = EXPERIMENTS[experiment]["sam"]
    if not sam["enabled"] or not sam["finetune"]["enabled"]:
        return None
    labeled = EXPERIMENTS[experiment]["data"]["split"]["labeled"]
    return f"{RESULTS}/{artifacts.finetune_dir(sam, labeled, seed)}/val_prompt_dice.json"


# ---- Stage III and selection ------------------------------------------------------------------------------
SYNTHS, ADAPTS, ADAPT_RUNS, SELECTS = CATALOG.synths, CATALOG.adapts, CATALOG.adapt_runs, CATALOG.selects


def adapt_report(experiment, seed):
    settings = EXPERIMENTS[experiment]
    if adapt_run_name(settings["sam"], settings["adapt"]) == NONE:
        return None
    folder = artifacts.adapt_model_dir(settings["sam"], settings["adapt"], settings["data"]["split"]["labeled"], seed)
    return f"{RESULTS}/{folder}/report.json"


# ---- models and rounds ------------------------------------------------------------------------------------
def round_training(experiment):
    return artifacts.round_training(EXPERIMENTS[experiment])


def loop_name(experiment):
    return artifacts.loop_name(EXPERIMENTS[experiment])


LOOPS = CATALOG.loops


def model_dir(experiment, seed, round_index):
    """The {model} of an experiment's round (a path under RESULTS)."""
    return artifacts.model_dir(EXPERIMENTS[experiment], seed, round_index)


def parse_model(model):
    return CATALOG.parse_model(model)


def model_of(wildcards):
    return parse_model(wildcards.model)


def selection_dir(experiment, seed, round_index):
    return f"{RESULTS}/{artifacts.selection_dir(EXPERIMENTS[experiment], seed, round_index)}"


def pseudo_label_1(model, shard):
    return f"{RESULTS}/{artifacts.pseudo_label_1(model, shard)}"


def pseudo_label_2(model, samrun, shard):
    return f"{RESULTS}/{artifacts.pseudo_label_2(model, samrun, shard)}"


def pseudo_label_3(model, samrun, adaptrun, shard):
    return f"{RESULTS}/{artifacts.pseudo_label_3(model, samrun, adaptrun, shard)}"


def final_pseudo_labels(experiment, seed, round_index):
    settings = EXPERIMENTS[experiment]
    samrun = sam_run_name(settings["sam"])
    adaptrun = adapt_run_name(settings["sam"], settings["adapt"])
    return [pseudo_label_3(model_dir(experiment, seed, round_index), samrun, adaptrun, k) for k in SHARDS]


def labeled_list_of(experiment, seed, round_index):
    """Round `round_index`'s labeled list (round >= 1): written by round `round_index` - 1's selection."""
    return f"{selection_dir(experiment, seed, round_index - 1)}/labeled_next_round.csv"


def previous_round_inputs(rule_name):
    """Input function of a job derived from a round's model (ssl_predict ... evaluate_end_to_end): from round 1
    on, the round's model, the previous round's model and this job's outputs in the previous round. A round
    whose model is the previous round's (ssl_train reuses it when the list is unchanged) would only repeat
    the previous round's jobs, so each copies those outputs (aslseg.workflow.reuse_previous_round_outputs)."""

    def inputs(wildcards):
        model = model_of(wildcards)
        if model.round == 0:
            return {}
        previous = {**dict(wildcards.items()), "model": model_dir(model.experiment, model.seed, model.round - 1)}
        return {
            "round_model": f"{RESULTS}/{wildcards.model}/model.pt",
            "previous_model": f"{RESULTS}/{previous['model']}/model.pt",
            "previous_outputs": [pattern.format(**previous) for pattern in getattr(rules, rule_name).output],
        }

    return inputs


# ---- splits and the inputs of Stage I jobs ----------------------------------------------------------------
def run_split_file(wildcards):
    """The split a model trains on; a checkpoint, since which volumes' labels a job reads depends on it."""
    model = model_of(wildcards)
    return checkpoints.split.get(labeled=model.labeled, seed=model.seed).output[0]


def run_split(wildcards):
    return json.loads(Path(run_split_file(wildcards)).read_text())


def ssl_train_inputs(wildcards):
    """Images of the training and val volumes; tumor labels of the labeled and val volumes only; from round 1
    on, the round's labeled list, the pseudo-label files it can name (the final pseudo labels of every
    earlier round) and the previous round's model, never an unlabeled volume's label."""
    model, split = model_of(wildcards), run_split(wildcards)
    inputs = {
        "split": run_split_file(wildcards),
        "images": [prepared_image(c) for c in sorted(split["labeled"] + split["unlabeled"] + split["val"])],
        "labels": [prepared_label(c) for c in sorted(split["labeled"] + split["val"])],
    }
    if model.round >= 1:
        inputs["labeled_list"] = labeled_list_of(model.experiment, model.seed, model.round)
        # reused as it is when the previous round accepted nothing (its training would only be repeated)
        inputs["previous_model"] = f"{RESULTS}/{model_dir(model.experiment, model.seed, model.round - 1)}/model.pt"
        inputs["pseudo_labels"] = [
            path for r in range(model.round) for path in final_pseudo_labels(model.experiment, model.seed, r)
        ]
    return inputs


def shard_images(wildcards):
    """The images of one prediction shard: a share of the unlabeled volumes, or every val volume."""
    split = run_split(wildcards)
    cases = split["val"] if wildcards.shard == VAL_SHARD else shard_cases(wildcards.shard, split["unlabeled"])
    return [prepared_image(case) for case in cases]


SUMMARY_KEYS = ("experiment", "round", "seed", "run", "model")  # the columns that say which model a row is


def summary_rows(experiments, seeds):
    """One row per experiment x seed x round, with its model folder and test summaries, with the ground-truth
    liver and end to end (results/summary.csv: the targets' rows)."""
    return [
        {"experiment": e, "round": r, "seed": s, "run": model_dir(e, s, r).split("/")[1],
         "model": model_dir(e, s, r),
         "summary": f"{RESULTS}/{model_dir(e, s, r)}/test_summary.json",
         "end_to_end": f"{RESULTS}/{model_dir(e, s, r)}/end_to_end/test_summary.json"}
        for e in experiments for s in seeds for r in rounds_of(e)
    ]


# ---- Stage II/III inputs ----------------------------------------------------------------------------------
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


def tune_split_file(wildcards):
    return checkpoints.split.get(labeled=wildcards.labeled, seed=wildcards.seed).output[0]


def tune_split(wildcards):
    return json.loads(Path(tune_split_file(wildcards)).read_text())


def sam_finetune_inputs(wildcards):
    """Embeddings, and the tumor labels of the labeled volumes (to fine-tune on) and val volumes (to report
    zero-shot vs fine-tuned Dice): the labels a Stage I run of the same split may read, nothing more."""
    split = tune_split(wildcards)
    return {
        **embedding_files(TUNES[wildcards.tune]),
        "split": tune_split_file(wildcards),
        "labels": [prepared_label(c) for c in sorted(split["labeled"] + split["val"])],
    }


def sam_decoder(wildcards):
    return decoder_file(SAM_RUNS[wildcards.samrun], model_of(wildcards).labeled, model_of(wildcards).seed)


def synthesis_inputs(wildcards):
    """SAM (embeddings, decoder) and the images and tumor labels of the labeled volumes (training examples)
    and val volumes (AN's validation): the labels a Stage I run of the same split may read."""
    settings = SYNTHS[wildcards.synth]
    split = tune_split(wildcards)
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
    split = tune_split(wildcards)
    cases = sorted(split["labeled"] + split["val"])
    folder = artifacts.synthesis_dir(settings["sam"], settings["adapt"], wildcards.labeled, wildcards.seed)
    return {
        "synthetic": f"{RESULTS}/{folder}/synthetic.npz",
        "split": tune_split_file(wildcards),
        "images": [prepared_image(c) for c in cases],
        "labels": [prepared_label(c) for c in cases],
    }


def adapt_model_file(wildcards):
    model, settings = model_of(wildcards), ADAPT_RUNS[wildcards.adaptrun]
    return f"{RESULTS}/{artifacts.adapt_model_dir(settings['sam'], settings['adapt'], model.labeled, model.seed)}/model.pt"


def adapt_refine_inputs(wildcards):
    """AN, the shard's PL1, PL2 and images, and with adapt.fallback the round's judgement of AN."""
    inputs = {
        "model": adapt_model_file(wildcards),
        "pl2": pseudo_label_2(wildcards.model, wildcards.samrun, wildcards.shard),
        "pl1": pseudo_label_1(wildcards.model, wildcards.shard),
        "images": shard_images(wildcards),
    }
    if ADAPT_RUNS[wildcards.adaptrun]["adapt"]["fallback"]:
        inputs["judgement"] = f"{RESULTS}/{ADAPT_RUN_DIR.format(model=wildcards.model, samrun=wildcards.samrun, adaptrun=wildcards.adaptrun)}/judgement.json"
    return inputs


def adapt_judge_inputs(wildcards):
    """AN, the val volumes' PL1, PL2, images and tumor labels (which training reads already)."""
    split = run_split(wildcards)
    return {
        "model": adapt_model_file(wildcards),
        "pl2": pseudo_label_2(wildcards.model, wildcards.samrun, VAL_SHARD),
        "pl1": pseudo_label_1(wildcards.model, VAL_SHARD),
        "images": [prepared_image(case) for case in split["val"]],
        "labels": [prepared_label(case) for case in split["val"]],
    }


def sam_components(wildcards, shard):
    """SAM's per-component table of a shard (predicted IoU, area) beside its PL2."""
    return f"{RESULTS}/{SAM_RUN_DIR.format(model=wildcards.model, samrun=wildcards.samrun)}/pl2/shard-{shard}.csv"


def selection_inputs(wildcards):
    """PL1, the final pseudo label (PL3; PL2 without AN; PL1 without SAM) and SAM's per-component table of
    every shard of one round's selection; from round 1 on, the round's labeled list (its slices are no
    longer unlabeled, so they are not scored again)."""
    model = model_of(wildcards)
    inputs = {
        "pl1": [pseudo_label_1(wildcards.model, k) for k in SHARDS],
        "pl3": [pseudo_label_3(wildcards.model, wildcards.samrun, wildcards.adaptrun, k) for k in SHARDS],
    }
    if wildcards.samrun != NONE:
        inputs["components"] = [sam_components(wildcards, k) for k in SHARDS]
    if model.round >= 1:
        inputs["labeled_list"] = labeled_list_of(model.experiment, model.seed, model.round)
    if SELECTS[wildcards.select]["rule"] == "calibrated":  # the same on the val volumes, with their labels
        inputs["val_pl1"] = pseudo_label_1(wildcards.model, VAL_SHARD)
        inputs["val_pl3"] = pseudo_label_3(wildcards.model, wildcards.samrun, wildcards.adaptrun, VAL_SHARD)
        if wildcards.samrun != NONE:
            inputs["val_components"] = sam_components(wildcards, VAL_SHARD)
        inputs["val_labels"] = [prepared_label(case) for case in run_split(wildcards)["val"]]
    return inputs


def loop_rows(experiments, seeds):
    """One row per loop experiment x seed x pseudo-labeling round, with the files that describe its pseudo
    labels and selection (results/pseudo_label_summary.csv: the targets' rows)."""
    return [
        {"experiment": e, "seed": s, "round": r, "run": model_dir(e, s, r).split("/")[1],
         "prompt": EXPERIMENTS[e]["sam"]["prompt"] if EXPERIMENTS[e]["sam"]["enabled"] else NONE,
         "quality": f"{selection_dir(e, s, r)}/pseudo_label_quality.json", "finetune_report": finetune_report(e, s),
         "calibration": f"{selection_dir(e, s, r)}/calibration.json",
         "adapt_report": adapt_report(e, s), "labeled_list": f"{selection_dir(e, s, r)}/labeled_next_round.csv"}
        for e in experiments if e in LOOP_EXPERIMENTS for s in seeds
        for r in range(EXPERIMENTS[e]["loop"]["rounds"])
    ]


def loop_row_files(rows):
    """Every file the rows of loop_rows name (the inputs of a pseudo-label summary)."""
    keys = ("quality", "calibration", "finetune_report", "adapt_report", "labeled_list")
    return [row[key] for row in rows for key in keys if row[key]]


LOOP_ROWS = loop_rows(config["targets"], config["seeds"])


# ---- the paper (rules/paper.smk) --------------------------------------------------------------------------
PAPER_DIR = f"{RESULTS}/paper"
PAPER_UNDEFINED = [name for name in PAPER["methods"] + PAPER["ablation"] + [PAPER["reference"]]
                   if name not in config["experiments"]]
PAPER_LOOPS = [name for name in PAPER_EXPERIMENTS if name in LOOP_EXPERIMENTS]
PAPER_RUNS = summary_rows(PAPER_EXPERIMENTS, PAPER["seeds"])
PAPER_LOOP_ROWS = loop_rows(PAPER_LOOPS, PAPER["seeds"])
FIRST_SEED = PAPER["seeds"][0]  # the comparison figure's models, and the split the tables count volumes in


def paper_split(experiment, seed):
    return split_path(EXPERIMENTS[experiment]["data"]["split"]["labeled"], seed)


def final_model_dir(experiment, seed):
    """The folder of the model an experiment ends with (its last round)."""
    return f"{RESULTS}/{model_dir(experiment, seed, EXPERIMENTS[experiment]['loop']['rounds'])}"


# (experiment, seed, its final model's per-volume test rows): what the tables' paired comparison reads
PAPER_CASES = [(e, s, f"{final_model_dir(e, s)}/test_cases.csv") for e in PAPER_EXPERIMENTS for s in PAPER["seeds"]]


def paper_targets(wildcards):
    if PAPER_UNDEFINED:
        raise ConfigError(f"paper: {PAPER_UNDEFINED} are not defined under experiments (defined: "
                          f"{sorted(config['experiments'])}); define them or name others in paper.methods, "
                          "paper.ablation, paper.reference")
    return [f"{PAPER_DIR}/table1_methods.md", f"{PAPER_DIR}/table2_ablation.md", f"{PAPER_DIR}/figure_comparison.png",
            *([f"{PAPER_DIR}/figure_rounds.png"] if PAPER_LOOPS else [])]


def comparison_inputs(wildcards):
    """(Evaluation only.) The final model of each method at the first seed, and the test volumes with their
    tumor labels (the test set is the same for every seed and labeled fraction)."""
    labeled = labeled_name(EXPERIMENTS[PAPER_METHODS[0]]["data"]["split"]["labeled"])
    split_file = checkpoints.split.get(labeled=labeled, seed=FIRST_SEED).output[0]
    test = json.loads(Path(split_file).read_text())["test"]
    return {
        "models": [f"{final_model_dir(name, FIRST_SEED)}/model.pt" for name in PAPER_METHODS],
        "images": [prepared_image(case) for case in test],
        "labels": [prepared_label(case) for case in test],
    }


# ---- the liver stage and new scans (rules/liver.smk) ---------------------------------------------------
LIVER = config["liver"]
LIVER_KEY = settings_key(LIVER, {"window": DATA["window"]})
PREDICT = config["predict"]


def liver_model_file(labeled, seed):
    """The liver model of a labeled fraction (number or wildcard string) and run seed."""
    return f"{RESULTS}/liver/{LIVER_KEY}/labeled-{labeled_name(labeled)}/seed-{seed}/model.pt"


def liver_train_inputs(wildcards):
    """The labeled volumes (training) and val volumes (checkpoint selection), whole: the volumes whose labels
    training may read."""
    split_file = checkpoints.split.get(labeled=wildcards.labeled, seed=wildcards.seed).output[0]
    split = json.loads(Path(split_file).read_text())
    files = {group: [raw_files(case) for case in sorted(split[group])] for group in ("labeled", "val")}
    return {
        "split": split_file,
        **{f"{group}_{kind}": [f[kind] for f in files[group]] for group in files for kind in ("volume", "segmentation")},
    }


def model_liver(wildcards):
    """The liver model of the {model} wildcard's split."""
    model = model_of(wildcards)
    return liver_model_file(model.labeled, model.seed)


def test_raw(kind):
    """Input function: the test volumes' volume or segmentation files of the {model} wildcard's split."""
    return lambda wildcards: [raw_files(case)[kind] for case in sorted(run_split(wildcards)["test"])]


def predict_request():
    """The model folder and the request that `snakemake predict` segments with (config `predict`)."""
    experiment = PREDICT["experiment"] or config["targets"][-1]
    if experiment not in EXPERIMENTS:
        raise ConfigError(f"predict.experiment: {experiment!r} is not a target or paper experiment")
    rounds = rounds_of(experiment)
    round_index = rounds[-1] if PREDICT["round"] is None else PREDICT["round"]
    if round_index not in rounds:
        raise ConfigError(f"predict.round: experiment {experiment!r} has rounds {list(rounds)}, not {round_index}")
    seed = config["seeds"][0] if PREDICT["seed"] is None else PREDICT["seed"]
    return model_dir(experiment, seed, round_index), {"experiment": experiment, "round": round_index, "seed": seed}


PREDICT_DIR = PREDICT["output"] or f"{RESULTS}/predictions"


def predict_scans():
    """Scan name -> file of every scan in predict.input (listed when the DAG is planned)."""
    from aslseg.data.scans import ScanError, scan_files, scan_name

    if PREDICT["input"] is None:
        raise ConfigError("predict.input: the folder of scans to segment is not set "
                          "(snakemake predict --config predict='{input: DIR}')")
    try:
        return {scan_name(path): str(path) for path in scan_files(PREDICT["input"])}
    except ScanError as error:
        raise ConfigError(f"predict.input: {error}") from error


PREDICT_SCAN_OUTPUTS = {
    "seg": f"{PREDICT_DIR}/{{scan}}_seg.nii.gz",
    "sidecar": f"{PREDICT_DIR}/{{scan}}_seg.json",
    **({"probability": f"{PREDICT_DIR}/{{scan}}_tumor_probability.nii.gz"} if PREDICT["probabilities"] else {}),
}
