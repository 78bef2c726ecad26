"""What the workflow's artifacts are called, and which settings each one depends on: the one home of the names,
keys and file patterns that aslseg/plan.py, aslseg/job_inputs.py, the rule files and the Snakefile's wildcard
constraints use.

Every artifact is named by a hash (`experiments.settings_key`) of exactly the settings its job reads and the
names of the artifacts it is derived from, so experiments that would compute the same thing share it and an
edit reruns only what it touches. Folders, relative to the results folder:

    ssl/{run}/seed-S/                       round 0: a Stage I model ({model}), shared by every experiment
                                            with the same Stage I
    loop/{loop}/seed-S/round-R/             round R >= 1 of a loop ({model}): the round-0 run, SAM, AN and
                                            selection settings that built its labeled list (not loop.rounds,
                                            so a one-round and a two-round experiment share round 1)
      pl1/                                  Pseudo Label 1 of the model
      sam-{samrun}/pl2/                     Stage II: Pseudo Label 2 (samrun "none": PL1 is used as is)
        adapt-{adaptrun}/pl3/               Stage III: Pseudo Label 3 (adaptrun "none": PL2 as is)
          select-{select}/                  scores, the next round's labeled list
    sam/embeddings/{embed}/                 one set for every experiment, seed and round
    sam/finetune/{tune}/labeled-F/seed-S/   a fine-tuned decoder per labeled draw
    adapt/synthetic/{synth}/labeled-F/seed-S/, adapt/model/{adapt}/labeled-F/seed-S/

Everything here is a pure function of an experiment's effective config (`experiments.experiment_config`), so
what shares and what reruns can be checked by unit tests (tests/test_artifacts.py) without Snakemake.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aslseg.experiments import settings_key
from aslseg.select.reliability import selection_settings
from aslseg.ssl.settings import method_settings

# ---- which settings each artifact depends on -------------------------------------------------------------
# The `sam` keys the embeddings depend on (backend, weights, precision, sharding): one set for every run.
EMBED_KEYS = ("backend", "model_type", "checkpoint", "input_norm", "bf16", "embed_batch", "shards")
# The prompt-shape keys: how a component of a mask becomes a box or points, for fine-tuning and prompting.
PROMPT_KEYS = ("box_margin", "min_component_pixels", "multipoint_n")
# The `adapt` keys AN's training reads (the corruption settings name its synthetic data instead).
ADAPT_TRAINING = ("inputs", "iterations", "batch_size", "lr", "weight_decay", "features", "bf16", "foreground_fraction",
                  "val_every", "rotate_deg", "scale", "intensity", "threshold")
# The `data` keys that turn a raw case into prepared slices (rule prepare; a model's predictor records them, so a
# new scan is prepared the same way).
PREPARE_KEYS = ("window", "size", "crop", "crop_margin_mm", "slice_margin")
NONE = "none"  # the SAM run without SAM, the AN run without AN: the earlier pseudo label is used as it is
VAL_SHARD = "val"  # the val volumes, predicted like one more unlabeled shard for a calibrated selection

# ---- wildcard patterns (the Snakefile's wildcard_constraints) --------------------------------------------
HASH = r"[0-9a-f]{10}"
NAMED_HASH = rf"[a-z_]+-{HASH}"  # <method or prompt>-<hash>
WILDCARDS = {
    "case": r"\d+",
    "seed": r"\d+",
    "labeled": r"\d+(\.\d+)?",
    "shard": rf"\d+|{VAL_SHARD}",
    "model": rf"ssl/{NAMED_HASH}/seed-\d+|loop/{NAMED_HASH}/seed-\d+/round-[1-9]\d*",
    "samrun": rf"{NONE}|{NAMED_HASH}",
    "embed": HASH,
    "tune": HASH,
    "synth": HASH,
    "adapt": HASH,
    "adaptrun": rf"{NONE}|{HASH}",
    "select": HASH,
}


# ---- folder and file patterns (relative to the results folder) --------------------------------------------
# The one spelling of every path: rule outputs are f"{RESULTS}/{PATTERN}" (the braces stay Snakemake
# wildcards), input functions fill them (`fill`, `str.format`).
SAM_RUN_DIR = "{model}/sam-{samrun}"  # prompts/, pl2/
ADAPT_RUN_DIR = SAM_RUN_DIR + "/adapt-{adaptrun}"  # pl3/, judgement.json
SELECTION_DIR = ADAPT_RUN_DIR + "/select-{select}"
EMBEDDINGS_DIR = "sam/embeddings/{embed}"
DRAW = "labeled-{labeled}/seed-{seed}"  # per labeled draw: what is trained on a split's labeled volumes
FINETUNE_DIR = "sam/finetune/{tune}/" + DRAW
SYNTHESIS_DIR = "adapt/synthetic/{synth}/" + DRAW
ADAPT_MODEL_DIR = "adapt/model/{adapt}/" + DRAW

# the data stage
PHANTOM_VOLUME = "data/phantom/volume-{case}.nii.gz"
PHANTOM_SEGMENTATION = "data/phantom/segmentation-{case}.nii.gz"
PREPARED_IMAGE = "data/prepared/images/case-{case}.npz"  # image, liver, geometry: what any job may read
PREPARED_LABEL = "data/prepared/labels/case-{case}.npz"  # tumor: read only where the split allows
PREPARED_STATS = "data/prepared/stats/case-{case}.json"
DATA_SUMMARY = "data/summary.csv"
SPLIT = "data/splits/" + DRAW + ".json"
HOLDOUT = "data/splits/holdout.json"
# a Stage I model ({model}) and what is evaluated of it
MODEL = "{model}/model.pt"
PSEUDO_LABEL_1 = "{model}/pl1/shard-{shard}.npz"
TEST_CASES = "{model}/test_cases.csv"
TEST_SUMMARY = "{model}/test_summary.json"
PREDICTOR = "{model}/predictor.json"
END_TO_END_CASES = "{model}/end_to_end/test_cases.csv"
END_TO_END_SUMMARY = "{model}/end_to_end/test_summary.json"
# Stage II
EMBEDDINGS = EMBEDDINGS_DIR + "/shard-{shard}.npy"
EMBEDDING_INDEX = EMBEDDINGS_DIR + "/shard-{shard}.json"
DECODER = FINETUNE_DIR + "/decoder.pt"
FINETUNE_REPORT = FINETUNE_DIR + "/val_prompt_dice.json"
PROMPTS = SAM_RUN_DIR + "/prompts/shard-{shard}.json"
PSEUDO_LABEL_2 = SAM_RUN_DIR + "/pl2/shard-{shard}.npz"
SAM_COMPONENTS = SAM_RUN_DIR + "/pl2/shard-{shard}.csv"  # per component: PL1 and SAM area, predicted IoU
# Stage III and the selection
SYNTHETIC = SYNTHESIS_DIR + "/synthetic.npz"
SYNTHETIC_SUMMARY = SYNTHESIS_DIR + "/synthetic.json"
ADAPT_MODEL = ADAPT_MODEL_DIR + "/model.pt"
ADAPT_REPORT = ADAPT_MODEL_DIR + "/report.json"
JUDGEMENT = ADAPT_RUN_DIR + "/judgement.json"
PSEUDO_LABEL_3 = ADAPT_RUN_DIR + "/pl3/shard-{shard}.npz"
SCORES = SELECTION_DIR + "/scores.csv"
CALIBRATION = SELECTION_DIR + "/calibration.json"
LABELED_LIST = SELECTION_DIR + "/labeled_next_round.csv"  # the next round's labeled list
PSEUDO_LABEL_QUALITY = SELECTION_DIR + "/pseudo_label_quality.json"
# the liver stage: one model per liver settings ({liver}: their hash) and labeled draw
LIVER_MODEL = "liver/{liver}/" + DRAW + "/model.pt"
# the run's tables, and the paper's (`snakemake paper`)
SUMMARY = "summary.csv"
PSEUDO_LABEL_SUMMARY = "pseudo_label_summary.csv"
PAPER_RUNS = "paper/runs.csv"
PAPER_PSEUDO_LABELS = "paper/pseudo_labels.csv"
PAPER_METHODS_CSV = "paper/table1_methods.csv"
PAPER_METHODS = "paper/table1_methods.md"
PAPER_ABLATION_CSV = "paper/table2_ablation.csv"
PAPER_ABLATION = "paper/table2_ablation.md"
PAPER_FIGURE_COMPARISON = "paper/figure_comparison.png"
PAPER_FIGURE_ROUNDS = "paper/figure_rounds.png"

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def fill(pattern: str, **values) -> str:
    """`pattern` with the placeholders named in `values` filled and the others left as they are (Snakemake
    wildcards), e.g. fill(LIVER_MODEL, liver=key) for a rule whose output has a fixed hash."""
    return _PLACEHOLDER.sub(lambda m: str(values[m[1]]) if m[1] in values else m[0], pattern)


# ---- the data stage ---------------------------------------------------------------------------------------
def prepare_settings(data: dict) -> dict:
    return {key: data[key] for key in PREPARE_KEYS}


def split_settings(data: dict) -> dict:
    """What the test / val draw and a split's labeled draw read of config `data.split`, less the labeled
    fraction: that comes from the split's path, so other fractions' splits stay valid."""
    return {key: value for key, value in data["split"].items() if key != "labeled"}


# ---- Stage I ----------------------------------------------------------------------------------------------
def ssl_run_name(settings: dict) -> str:
    """An SSL run: its method and a hash of what the model depends on (the ssl settings its method reads, the
    labeled fraction)."""
    ssl = settings["ssl"]
    return f"{ssl['method']}-{settings_key(method_settings(ssl), settings['data']['split']['labeled'])}"


def labeled_name(labeled: float | str) -> str:
    """A labeled fraction as paths spell it (0.1, not 0.10); a wildcard string is already spelled so."""
    return labeled if isinstance(labeled, str) else f"{labeled:g}"


# ---- Stage II: the medical SAM ----------------------------------------------------------------------------
# Three levels of sharing: embeddings; a fine-tuned decoder (+ fine-tuning and prompt-shape settings) per
# labeled draw; a SAM run (+ the prompt type and threshold) applied to the Pseudo Label 1 of a model.
def sam_embedding_settings(sam: dict) -> dict:
    return {key: sam[key] for key in EMBED_KEYS}


def sam_tuning_settings(sam: dict) -> dict:
    return {"finetune": sam["finetune"], **{key: sam[key] for key in PROMPT_KEYS}}


def finetune_settings(sam: dict) -> dict:
    """What sam_finetune reads: the embeddings it trains on, the fine-tuning and prompt-shape settings."""
    return {**sam_embedding_settings(sam), **sam_tuning_settings(sam)}


def prompt_settings(sam: dict) -> dict:
    """What sam_prompts reads: the prompt type and how a component becomes one."""
    return {"prompt": sam["prompt"], **{key: sam[key] for key in PROMPT_KEYS}}


def sam_predict_settings(sam: dict) -> dict:
    """What sam_predict reads beyond its inputs: the embeddings' settings and SAM's mask threshold."""
    return {**sam_embedding_settings(sam), "threshold": sam["threshold"]}


def embed_key(sam: dict) -> str:
    return settings_key(sam_embedding_settings(sam))


def tune_key(sam: dict) -> str:
    return settings_key(sam_embedding_settings(sam), sam_tuning_settings(sam))


def embedding_files(sam: dict) -> dict[str, list[str]]:
    """Every shard's embeddings (.npy) and index (.json) of a SAM configuration."""
    embed = embed_key(sam)
    return {
        "embeddings": [EMBEDDINGS.format(embed=embed, shard=k) for k in range(sam["shards"])],
        "embedding_index": [EMBEDDING_INDEX.format(embed=embed, shard=k) for k in range(sam["shards"])],
    }


def finetune_dir(sam: dict, labeled, seed) -> str:
    """Where the decoder fine-tuned for a labeled draw lives (DECODER, FINETUNE_REPORT)."""
    return FINETUNE_DIR.format(tune=tune_key(sam), labeled=labeled_name(labeled), seed=seed)


def finetune_file(pattern: str, sam: dict, labeled, seed) -> str:
    """DECODER or FINETUNE_REPORT of a labeled draw."""
    return pattern.format(tune=tune_key(sam), labeled=labeled_name(labeled), seed=seed)


def sam_run_name(sam: dict) -> str:
    """A SAM run: "<prompt>-<hash of every SAM setting>" (box+point is spelled box_point in paths), or "none"
    without SAM (sam.enabled false: PL1 is thresholded alone)."""
    if not sam["enabled"]:
        return NONE
    settings = {**finetune_settings(sam), **prompt_settings(sam), **sam_predict_settings(sam)}
    return f"{sam['prompt'].replace('+', '_')}-{settings_key(settings)}"


# ---- Stage III and the selection --------------------------------------------------------------------------
# Synthetic pseudo-labels depend on the SAM run and the corruption settings; AN also on its training
# settings; PL3 on AN and the PL2 it refines; the selection also on `select`. So editing select.threshold
# redoes only the scoring and what follows, never SAM, AN or round 0 of Stage I.
def synth_key(sam: dict, adapt: dict) -> str:
    return settings_key(sam_run_name(sam), adapt["corruptions"], adapt["copies"])


def adapt_training_settings(adapt: dict) -> dict:
    return {key: adapt[key] for key in ADAPT_TRAINING}


def adapt_model_name(sam: dict, adapt: dict) -> str:
    """AN's name: a hash of its synthetic data and training settings."""
    return settings_key(synth_key(sam, adapt), adapt_training_settings(adapt))


def adapt_run_name(sam: dict, adapt: dict) -> str:
    """What makes PL3: AN's name, and with adapt.fallback a hash of it and the fallback (PL3 is then PL2
    in a round where AN loses on the val volumes); "none" without AN (adapt.enabled false, or no SAM: PL2,
    or PL1, is scored as it is)."""
    if not adapt["enabled"] or not sam["enabled"]:
        return NONE
    name = adapt_model_name(sam, adapt)
    return settings_key(name, {"fallback": True}) if adapt["fallback"] else name


def synthesis_dir(sam: dict, adapt: dict, labeled, seed) -> str:
    return SYNTHESIS_DIR.format(synth=synth_key(sam, adapt), labeled=labeled_name(labeled), seed=seed)


def adapt_model_dir(sam: dict, adapt: dict, labeled, seed) -> str:
    """Where AN trained for a labeled draw lives (ADAPT_MODEL, ADAPT_REPORT)."""
    return ADAPT_MODEL_DIR.format(adapt=adapt_model_name(sam, adapt), labeled=labeled_name(labeled), seed=seed)


def adapt_file(pattern: str, sam: dict, adapt: dict, labeled, seed) -> str:
    """ADAPT_MODEL or ADAPT_REPORT of a labeled draw."""
    return pattern.format(adapt=adapt_model_name(sam, adapt), labeled=labeled_name(labeled), seed=seed)


def synthesis_file(pattern: str, sam: dict, adapt: dict, labeled, seed) -> str:
    """SYNTHETIC or SYNTHETIC_SUMMARY of a labeled draw."""
    return pattern.format(synth=synth_key(sam, adapt), labeled=labeled_name(labeled), seed=seed)


def select_key(select: dict) -> str:
    return settings_key(selection_settings(select))


# ---- loops and rounds -------------------------------------------------------------------------------------
def round_training(settings: dict) -> dict:
    """How a loop's rounds >= 1 train beyond the ssl settings (config `loop` without `rounds`)."""
    return {key: value for key, value in settings["loop"].items() if key != "rounds"}


def loop_name(settings: dict) -> str:
    """A loop: the SSL method and a hash of the round-0 run, the SAM run, AN, the selection settings and how
    its rounds train (`round_training`)."""
    key = settings_key(ssl_run_name(settings), sam_run_name(settings["sam"]),
                       adapt_run_name(settings["sam"], settings["adapt"]), selection_settings(settings["select"]),
                       round_training(settings))
    return f"{settings['ssl']['method']}-{key}"


def model_dir(settings: dict, seed: int, round_index: int) -> str:
    """The {model} folder of an experiment's round."""
    if round_index == 0:
        return f"ssl/{ssl_run_name(settings)}/seed-{seed}"
    return f"loop/{loop_name(settings)}/seed-{seed}/round-{round_index}"


def selection_wildcards(settings: dict, seed: int, round_index: int) -> dict[str, str]:
    """The wildcards of round `round_index`'s selection, which scores its pseudo labels and writes round
    `round_index` + 1's list: fill SELECTION_DIR, SCORES, LABELED_LIST ... with them."""
    return {"model": model_dir(settings, seed, round_index), "samrun": sam_run_name(settings["sam"]),
            "adaptrun": adapt_run_name(settings["sam"], settings["adapt"]), "select": select_key(settings["select"])}


def selection_dir(settings: dict, seed: int, round_index: int) -> str:
    return SELECTION_DIR.format(**selection_wildcards(settings, seed, round_index))


def final_model_dir(settings: dict, seed: int) -> str:
    """The {model} an experiment ends with (its last round)."""
    return model_dir(settings, seed, settings["loop"]["rounds"])


# ---- pseudo labels ----------------------------------------------------------------------------------------
def pseudo_label_1(model: str, shard) -> str:
    return PSEUDO_LABEL_1.format(model=model, shard=shard)


def pseudo_label_2(model: str, samrun: str, shard) -> str:
    """SAM's masks of a shard, PL1 itself without SAM."""
    if samrun == NONE:
        return pseudo_label_1(model, shard)
    return PSEUDO_LABEL_2.format(model=model, samrun=samrun, shard=shard)


def pseudo_label_3(model: str, samrun: str, adaptrun: str, shard) -> str:
    """The final pseudo label of a shard: AN's PL3, PL2 without AN, PL1 without SAM."""
    if adaptrun == NONE:
        return pseudo_label_2(model, samrun, shard)
    return PSEUDO_LABEL_3.format(model=model, samrun=samrun, adaptrun=adaptrun, shard=shard)


# ---- from names back to settings --------------------------------------------------------------------------
@dataclass(frozen=True)
class Model:
    """What a {model} wildcard names: the Stage I run it trains like (`ssl_run_name`), its seed and round, and
    (round >= 1) the loop -- through `experiment`, one experiment of that loop, whose settings are the loop's."""

    ssl_run: str
    seed: int
    round: int
    experiment: str | None
    labeled: str  # the labeled fraction its split draws, as paths spell it


class Catalog:
    """The artifacts of a set of experiments (name -> effective config), with the tables that turn each
    name back into the settings its job reads."""

    def __init__(self, experiments: dict[str, dict]):
        self.experiments = experiments
        self.loop_experiments = [name for name, e in experiments.items() if e["loop"]["rounds"] >= 1]
        stage2 = [experiments[name] for name in self.loop_experiments if experiments[name]["sam"]["enabled"]]
        self.ssl_runs = {
            ssl_run_name(e): {"ssl": method_settings(e["ssl"]), "labeled": e["data"]["split"]["labeled"]}
            for e in experiments.values()
        }
        self.sam_runs = {sam_run_name(e["sam"]): e["sam"] for e in stage2}
        self.embeddings = {embed_key(sam): sam for sam in self.sam_runs.values()}
        self.tunes = {tune_key(sam): sam for sam in self.sam_runs.values()}
        with_adapt = [e for e in stage2 if e["adapt"]["enabled"]]
        self.synths = {synth_key(e["sam"], e["adapt"]): e for e in with_adapt}
        self.adapts = {adapt_model_name(e["sam"], e["adapt"]): e for e in with_adapt}
        self.adapt_runs = {adapt_run_name(e["sam"], e["adapt"]): e for e in with_adapt}
        self.selects = {select_key(experiments[name]["select"]): selection_settings(experiments[name]["select"])
                        for name in self.loop_experiments}
        self.loops = {loop_name(experiments[name]): name for name in self.loop_experiments}

    def model_dir(self, experiment: str, seed: int, round_index: int) -> str:
        return model_dir(self.experiments[experiment], seed, round_index)

    def parse_model(self, model: str) -> Model:
        """The Model a {model} folder names (KeyError for a run or loop of no experiment here)."""
        parts = model.split("/")
        seed = int(parts[2].removeprefix("seed-"))
        if parts[0] == "ssl":
            ssl_run, round_index, experiment = parts[1], 0, None
        else:
            experiment = self.loops[parts[1]]
            ssl_run, round_index = ssl_run_name(self.experiments[experiment]), int(parts[3].removeprefix("round-"))
        return Model(ssl_run, seed, round_index, experiment, labeled_name(self.ssl_runs[ssl_run]["labeled"]))
