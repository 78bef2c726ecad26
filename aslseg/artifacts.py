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

Each kind is a class (StageOneRun, Embeddings, Decoder, SamRun, Synthesis, AdaptModel, AdaptRun, Selection,
Loop, LiverStage) holding the settings its job receives, its key and its files. Everything here is a pure function of an
experiment's effective config (`experiments.experiment_config`), so what shares and what reruns can be checked by
unit tests (tests/test_artifacts.py) without Snakemake.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from aslseg.experiments import settings_key
from aslseg.select.reliability import selection_settings
from aslseg.ssl.settings import method_settings

# ---- settings keys shared by several kinds ------------------------------------------------------------------
# The prompt-shape keys: how a component of a mask becomes a box or points, for fine-tuning and prompting.
PROMPT_KEYS = ("box_margin", "min_component_pixels", "multipoint_n")
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


# ---- the artifact kinds ------------------------------------------------------------------------------------
# One class per kind: the settings its job receives, its key (the hash that names it, of those settings and
# its parents' keys) and its files. `of(...)` builds one from an experiment's effective config; Catalog turns
# a name found in a path back into the object. Each key is computed as it was when the kind got its name, so
# existing results folders keep their artifacts.
@dataclass(frozen=True)
class StageOneRun:
    """Stage I trained like an experiment's `ssl` section on a labeled fraction: round 0 of every experiment
    with that Stage I ({model} = ssl/<name>/seed-S)."""

    settings: dict  # what ssl_train receives: the ssl keys its method reads (method_settings), threshold included
    labeled: float

    @classmethod
    def of(cls, experiment: dict) -> "StageOneRun":
        return cls(method_settings(experiment["ssl"]), experiment["data"]["split"]["labeled"])

    @property
    def name(self) -> str:
        return f"{self.settings['method']}-{settings_key(self.settings, self.labeled)}"


@dataclass(frozen=True)
class Embeddings:
    """SAM's image embeddings of the train and val slices: one set for every experiment, seed and round."""

    KEYS: ClassVar = ("backend", "model_type", "checkpoint", "input_norm", "bf16", "embed_batch", "shards")
    settings: dict  # what sam_embed receives: the `sam` keys above (base weights, precision, sharding)

    @classmethod
    def of(cls, sam: dict) -> "Embeddings":
        return cls({key: sam[key] for key in cls.KEYS})

    @property
    def key(self) -> str:
        return settings_key(self.settings)

    def files(self) -> dict[str, list[str]]:
        """Every shard's embeddings (.npy) and index (.json)."""
        shards = range(self.settings["shards"])
        return {"embeddings": [EMBEDDINGS.format(embed=self.key, shard=k) for k in shards],
                "embedding_index": [EMBEDDING_INDEX.format(embed=self.key, shard=k) for k in shards]}


class PerDraw:
    """An artifact made for each labeled draw (fraction F, seed S): its files are its pattern filled with its key
    ({tune}, {synth} or {adapt}), F and S."""

    WILDCARD: ClassVar[str]

    def file(self, pattern: str, labeled, seed) -> str:
        return pattern.format(**{self.WILDCARD: self.key}, labeled=labeled_name(labeled), seed=seed)


@dataclass(frozen=True)
class Decoder(PerDraw):
    """SAM's mask decoder fine-tuned on a labeled draw's ground truth, from the embeddings ({tune}: DECODER,
    FINETUNE_REPORT)."""

    WILDCARD: ClassVar = "tune"

    embeddings: Embeddings
    tuning: dict  # sam.finetune and the prompt-shape keys

    @classmethod
    def of(cls, sam: dict) -> "Decoder":
        return cls(Embeddings.of(sam), {"finetune": sam["finetune"], **{key: sam[key] for key in PROMPT_KEYS}})

    @property
    def settings(self) -> dict:
        """What sam_finetune receives: the embeddings' settings, the fine-tuning and prompt-shape settings."""
        return {**self.embeddings.settings, **self.tuning}

    @property
    def key(self) -> str:
        return settings_key(self.embeddings.settings, self.tuning)


@dataclass(frozen=True)
class SamRun:
    """SAM prompted from a model's Pseudo Label 1 ({samrun} = <prompt>-<hash of every SAM setting>, box+point
    spelled box_point): prompts and Pseudo Label 2."""

    decoder: Decoder  # its embeddings, and the decoder when fine_tuned
    fine_tuned: bool  # sam.finetune.enabled: false = SAM zero-shot
    prompt_settings: dict  # what sam_prompts receives: the prompt type, how a component becomes one, which get none
    predict_settings: dict  # what sam_predict receives: the embeddings' settings and SAM's mask threshold

    @classmethod
    def of(cls, sam: dict) -> "SamRun":
        decoder = Decoder.of(sam)
        # Left out at null (every component prompted), so that runs from before the key keep their names.
        rim = {} if sam["max_rim_share"] is None else {"max_rim_share": sam["max_rim_share"]}
        return cls(decoder, sam["finetune"]["enabled"],
                   {"prompt": sam["prompt"], **{key: sam[key] for key in PROMPT_KEYS}, **rim},
                   {**decoder.embeddings.settings, "threshold": sam["threshold"]})

    @property
    def name(self) -> str:
        settings = {**self.decoder.settings, **self.prompt_settings, **self.predict_settings}
        return f"{self.prompt_settings['prompt'].replace('+', '_')}-{settings_key(settings)}"

    def decoder_file(self, labeled, seed) -> dict[str, str]:
        """{"decoder": the fine-tuned decoder of the draw}, or {} for SAM zero-shot."""
        return {"decoder": self.decoder.file(DECODER, labeled, seed)} if self.fine_tuned else {}


def sam_run_name(sam: dict) -> str:
    """The {samrun} of config `sam`: "none" without SAM (sam.enabled false: PL1 is thresholded alone)."""
    return SamRun.of(sam).name if sam["enabled"] else NONE


# Synthetic pseudo-labels depend on the SAM run and the corruption settings; AN also on its training
# settings; PL3 on AN and the PL2 it refines; the selection also on `select`. So editing select.threshold
# redoes only the scoring and what follows, never SAM, AN or round 0 of Stage I.
@dataclass(frozen=True)
class Synthesis(PerDraw):
    """Synthetic pseudo-labels of a labeled draw: its ground truth corrupted, then through the SAM run ({synth}:
    SYNTHETIC, SYNTHETIC_SUMMARY)."""

    WILDCARD: ClassVar = "synth"

    sam: dict  # what adapt_synthesize receives of config `sam` (all of it: the SAM run it replays)
    corruptions: dict
    copies: int

    @classmethod
    def of(cls, sam: dict, adapt: dict) -> "Synthesis":
        return cls(sam, adapt["corruptions"], adapt["copies"])

    @property
    def sam_run(self) -> SamRun:
        return SamRun.of(self.sam)

    @property
    def key(self) -> str:
        return settings_key(self.sam_run.name, self.corruptions, self.copies)


@dataclass(frozen=True)
class AdaptModel(PerDraw):
    """AN trained on a labeled draw's synthetic pseudo-labels ({adapt}: ADAPT_MODEL, ADAPT_REPORT), used in every
    round."""

    WILDCARD: ClassVar = "adapt"

    # The `adapt` keys AN's training reads (the corruption settings name its synthetic data instead) and PL3's
    # threshold.
    KEYS: ClassVar = ("inputs", "iterations", "batch_size", "lr", "weight_decay", "features", "bf16",
                      "foreground_fraction", "val_every", "rotate_deg", "scale", "intensity", "threshold")
    synthesis: Synthesis
    training: dict  # what adapt_train receives: the `adapt` keys above

    @classmethod
    def of(cls, sam: dict, adapt: dict) -> "AdaptModel":
        return cls(Synthesis.of(sam, adapt), {key: adapt[key] for key in cls.KEYS})

    @property
    def key(self) -> str:
        return settings_key(self.synthesis.key, self.training)


@dataclass(frozen=True)
class AdaptRun:
    """AN applied to a round's PL2 ({adaptrun}): Pseudo Label 3, and with the fallback the round's judgement
    (PL3 is then PL2 in a round where AN loses on the val volumes)."""

    model: AdaptModel
    fallback: bool

    @classmethod
    def of(cls, sam: dict, adapt: dict) -> "AdaptRun":
        return cls(AdaptModel.of(sam, adapt), adapt["fallback"])

    @property
    def name(self) -> str:
        return settings_key(self.model.key, {"fallback": True}) if self.fallback else self.model.key


def adapt_run_name(sam: dict, adapt: dict) -> str:
    """The {adaptrun} of config `sam` and `adapt`: "none" without AN (adapt.enabled false, or no SAM: PL2, or
    PL1, is scored as it is)."""
    return AdaptRun.of(sam, adapt).name if adapt["enabled"] and sam["enabled"] else NONE


@dataclass(frozen=True)
class Selection:
    """Reliability scoring of a round's final pseudo labels and the next round's list ({select})."""

    settings: dict  # what score receives: selection_settings(select)

    @classmethod
    def of(cls, select: dict) -> "Selection":
        return cls(selection_settings(select))

    @property
    def key(self) -> str:
        return settings_key(self.settings)


@dataclass(frozen=True)
class Loop:
    """Rounds >= 1 of an ASLseg loop ({model} = loop/<name>/seed-S/round-R): named by the round-0 run, the SAM
    run, AN, the selection and how its rounds train -- not loop.rounds, so a one-round and a two-round
    experiment share round 1."""

    stage_one: StageOneRun
    sam_run: str
    adapt_run: str
    selection: Selection
    round_training: dict  # what ssl_train receives as `loop` in rounds >= 1: config `loop` without `rounds`

    @classmethod
    def of(cls, experiment: dict) -> "Loop":
        sam, adapt = experiment["sam"], experiment["adapt"]
        # an option switched off (false) does not enter the name, so adding one renames nothing
        training = {key: value for key, value in experiment["loop"].items() if key != "rounds" and value is not False}
        return cls(StageOneRun.of(experiment), sam_run_name(sam), adapt_run_name(sam, adapt),
                   Selection.of(experiment["select"]), training)

    @property
    def name(self) -> str:
        key = settings_key(self.stage_one.name, self.sam_run, self.adapt_run, self.selection.settings,
                           self.round_training)
        return f"{self.stage_one.settings['method']}-{key}"


@dataclass(frozen=True)
class LiverStage(PerDraw):
    """The liver model of a labeled draw ({liver}: LIVER_MODEL), which finds the liver of a scan without a
    liver mask (prediction on new scans, end-to-end test metrics)."""

    WILDCARD: ClassVar = "liver"
    settings: dict  # what liver_train receives as `liver`: config `liver`
    window: list  # and as `window`: data.window, which its input depends on

    @classmethod
    def of(cls, config: dict) -> "LiverStage":
        return cls(config["liver"], config["data"]["window"])

    @property
    def key(self) -> str:
        return settings_key(self.settings, {"window": self.window})


def labeled_name(labeled: float | str) -> str:
    """A labeled fraction as paths spell it (0.1, not 0.10); a wildcard string is already spelled so."""
    return labeled if isinstance(labeled, str) else f"{labeled:g}"


# ---- an experiment's rounds ------------------------------------------------------------------------------
def model_dir(experiment: dict, seed: int, round_index: int) -> str:
    """The {model} folder of an experiment's round."""
    if round_index == 0:
        return f"ssl/{StageOneRun.of(experiment).name}/seed-{seed}"
    return f"loop/{Loop.of(experiment).name}/seed-{seed}/round-{round_index}"


def final_model_dir(experiment: dict, seed: int) -> str:
    """The {model} an experiment ends with (its last round)."""
    return model_dir(experiment, seed, experiment["loop"]["rounds"])


def selection_wildcards(experiment: dict, seed: int, round_index: int) -> dict[str, str]:
    """The wildcards of round `round_index`'s selection, which scores its pseudo labels and writes round
    `round_index` + 1's list: fill SELECTION_DIR, SCORES, LABELED_LIST ... with them."""
    sam, adapt = experiment["sam"], experiment["adapt"]
    return {"model": model_dir(experiment, seed, round_index), "samrun": sam_run_name(sam),
            "adaptrun": adapt_run_name(sam, adapt), "select": Selection.of(experiment["select"]).key}


def selection_dir(experiment: dict, seed: int, round_index: int) -> str:
    return SELECTION_DIR.format(**selection_wildcards(experiment, seed, round_index))


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
    """What a {model} wildcard names: the Stage I run it trains like (a StageOneRun's name), its seed and round, and
    (round >= 1) the loop -- through `experiment`, one experiment of that loop, whose settings are the loop's."""

    ssl_run: str
    seed: int
    round: int
    experiment: str | None
    labeled: str  # the labeled fraction its split draws, as paths spell it


class Catalog:
    """The artifacts of a set of experiments (name -> effective config): from each name or key a job's
    wildcards carry, the artifact object whose settings that job receives."""

    def __init__(self, experiments: dict[str, dict]):
        self.experiments = experiments
        self.loop_experiments = [name for name, e in experiments.items() if e["loop"]["rounds"] >= 1]
        stage2 = [experiments[name] for name in self.loop_experiments if experiments[name]["sam"]["enabled"]]
        with_adapt = [e for e in stage2 if e["adapt"]["enabled"]]
        self.ssl_runs = {run.name: run for run in map(StageOneRun.of, experiments.values())}
        self.sam_runs = {run.name: run for run in (SamRun.of(e["sam"]) for e in stage2)}
        self.embeddings = {run.decoder.embeddings.key: run.decoder.embeddings for run in self.sam_runs.values()}
        self.tunes = {run.decoder.key: run.decoder for run in self.sam_runs.values()}
        self.synths = {s.key: s for s in (Synthesis.of(e["sam"], e["adapt"]) for e in with_adapt)}
        self.adapts = {a.key: a for a in (AdaptModel.of(e["sam"], e["adapt"]) for e in with_adapt)}
        self.adapt_runs = {a.name: a for a in (AdaptRun.of(e["sam"], e["adapt"]) for e in with_adapt)}
        self.selects = {s.key: s for s in (Selection.of(experiments[name]["select"]) for name in self.loop_experiments)}
        self.loops = {Loop.of(experiments[name]).name: name for name in self.loop_experiments}

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
            ssl_run = StageOneRun.of(self.experiments[experiment]).name
            round_index = int(parts[3].removeprefix("round-"))
        return Model(ssl_run, seed, round_index, experiment, labeled_name(self.ssl_runs[ssl_run].labeled))
