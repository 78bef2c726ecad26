"""What a config asks the workflow to build: its experiments (validated), their rounds and model folders, the
rows of the run's and the paper's tables, and what `snakemake predict` segments with. A pure function of the
config, so it is read and tested without Snakemake; rules/runs.smk makes one `Plan` and the rule files read it.

Paths are full (under `results`, as rules name files); which settings each artifact depends on and how it is
named is aslseg/artifacts.py's business.
"""

from __future__ import annotations

from aslseg import artifacts
from aslseg.artifacts import NONE, Catalog, Model, adapt_run_name, labeled_name, sam_run_name
from aslseg.config import ConfigError
from aslseg.experiments import experiment_config

SUMMARY_KEYS = ("experiment", "round", "seed", "run", "model")  # the columns that say which model a row is
LOOP_ROW_FILES = ("quality", "calibration", "finetune_report", "adapt_report", "labeled_list")


class Plan:
    """The experiments of `targets` (rule all) and of the paper's tables (rule paper), each one's effective
    config validated before any job runs. A paper experiment that `experiments` does not define is an error of
    the paper target only (`paper_targets`), so a config with experiments of its own still runs its targets."""

    def __init__(self, config: dict):
        self.config = config
        self.results = config["results_dir"]
        defined = config["experiments"]
        self.paper = config["paper"]
        self.paper_methods = [name for name in self.paper["methods"] if name in defined]
        self.paper_ablation = [name for name in self.paper["ablation"] if name in defined]
        self.paper_reference = [self.paper["reference"]] if self.paper["reference"] in defined else []
        self.paper_experiments = list(dict.fromkeys(self.paper_methods + self.paper_ablation + self.paper_reference))
        self.paper_undefined = [name for name in self.paper["methods"] + self.paper["ablation"] + [self.paper["reference"]]
                                if name not in defined]
        self.experiments = {name: experiment_config(config, name)
                            for name in dict.fromkeys(config["targets"] + self.paper_experiments)}
        for name, settings in self.experiments.items():
            if settings["sam"]["enabled"]:
                continue
            if settings["select"]["agreement_weight"] > 0:
                raise ConfigError(f"experiments.{name}: without SAM the final label is PL1 itself, so agreement is 1 "
                                  "on every slice; set select.agreement_weight to 0 and select.confidence_weight > 0")
            if settings["select"]["sam_iou_weight"] > 0:
                raise ConfigError(f"experiments.{name}: without SAM there is no SAM IoU to score; set "
                                  "select.sam_iou_weight to 0")
        self.catalog = Catalog(self.experiments)
        self.loop_experiments = self.catalog.loop_experiments
        self.paper_loops = [name for name in self.paper_experiments if name in self.loop_experiments]
        self.first_seed = self.paper["seeds"][0]  # the comparison figure's models, the split the tables count in
        # Inference runs over the cases in resources.infer.shards jobs (shard k takes every k-th case), so many
        # jobs of one step can run at once on a cluster.
        self.shards = list(range(config["resources"]["infer"]["shards"]))
        self.liver = artifacts.LiverStage.of(config)

    def under(self, relative: str) -> str:
        """A path of aslseg/artifacts.py's (relative to the results folder) as rules name files."""
        return f"{self.results}/{relative}"

    def path(self, pattern: str, **values) -> str:
        """A file of the results folder: an artifacts pattern with every placeholder filled."""
        return self.under(pattern.format(**values))

    # ---- experiments, rounds and models ---------------------------------------------------------------------
    def rounds_of(self, experiment: str) -> range:
        """Round indices whose SS model the experiment trains and evaluates: 0 .. loop.rounds."""
        return range(self.experiments[experiment]["loop"]["rounds"] + 1)

    def model_dir(self, experiment: str, seed: int, round_index: int) -> str:
        """The {model} of an experiment's round (relative to the results folder)."""
        return self.catalog.model_dir(experiment, seed, round_index)

    def final_model(self, pattern: str, experiment: str, seed: int) -> str:
        """A file (MODEL, TEST_CASES, ...) of the model an experiment ends with (its last round)."""
        return self.path(pattern, model=artifacts.final_model_dir(self.experiments[experiment], seed))

    def round_training(self, experiment: str) -> dict:
        """How the experiment's rounds >= 1 train beyond the ssl settings (config `loop` without `rounds`)."""
        return artifacts.Loop.of(self.experiments[experiment]).round_training

    def parse_model(self, model: str) -> Model:
        return self.catalog.parse_model(model)

    def selection_file(self, pattern: str, experiment: str, seed: int, round_index: int) -> str:
        """A file (SCORES, LABELED_LIST, ...) of round `round_index`'s selection, which scores its pseudo labels
        and writes round `round_index` + 1's list."""
        return self.path(pattern, **artifacts.selection_wildcards(self.experiments[experiment], seed, round_index))

    def labeled_list(self, experiment: str, seed: int, round_index: int) -> str:
        """Round `round_index`'s labeled list (round >= 1): written by round `round_index` - 1's selection."""
        return self.selection_file(artifacts.LABELED_LIST, experiment, seed, round_index - 1)

    def final_pseudo_labels(self, experiment: str, seed: int, round_index: int) -> list[str]:
        """Every shard's final pseudo label of a round (PL3; PL2 without AN; PL1 without SAM)."""
        settings = self.experiments[experiment]
        samrun, adaptrun = sam_run_name(settings["sam"]), adapt_run_name(settings["sam"], settings["adapt"])
        model = self.model_dir(experiment, seed, round_index)
        return [self.under(artifacts.pseudo_label_3(model, samrun, adaptrun, k)) for k in self.shards]

    def split_file(self, labeled, seed) -> str:
        """The split of a labeled fraction (number or wildcard string) and run seed."""
        return self.path(artifacts.SPLIT, labeled=labeled_name(labeled), seed=seed)

    def labeled(self, experiment: str) -> float:
        """The labeled fraction an experiment's splits draw."""
        return self.experiments[experiment]["data"]["split"]["labeled"]

    def experiment_split(self, experiment: str, seed: int) -> str:
        return self.split_file(self.labeled(experiment), seed)

    def liver_model(self, labeled, seed) -> str:
        """The liver model of a labeled fraction (number or wildcard string) and run seed."""
        return self.under(self.liver.file(artifacts.LIVER_MODEL, labeled, seed))

    # ---- reports of Stage II and III ------------------------------------------------------------------------
    def finetune_report(self, experiment: str, seed: int) -> str | None:
        settings = self.experiments[experiment]
        sam = settings["sam"]
        if not sam["enabled"] or not sam["finetune"]["enabled"]:
            return None
        return self.under(artifacts.Decoder.of(sam).file(artifacts.FINETUNE_REPORT, self.labeled(experiment), seed))

    def adapt_report(self, experiment: str, seed: int) -> str | None:
        settings = self.experiments[experiment]
        if adapt_run_name(settings["sam"], settings["adapt"]) == NONE:
            return None
        report = artifacts.AdaptModel.of(settings["sam"], settings["adapt"]).file(
            artifacts.ADAPT_REPORT, self.labeled(experiment), seed)
        return self.under(report)

    # ---- the rows of the tables -----------------------------------------------------------------------------
    def summary_rows(self, experiments: list[str], seeds: list[int]) -> list[dict]:
        """One row per experiment x seed x round, with its model folder and test summaries, with the ground-truth
        liver and end to end (results/summary.csv: the targets' rows)."""
        rows = []
        for e in experiments:
            for s in seeds:
                for r in self.rounds_of(e):
                    model = self.model_dir(e, s, r)
                    rows.append({"experiment": e, "round": r, "seed": s, "run": model.split("/")[1], "model": model,
                                 "summary": self.path(artifacts.TEST_SUMMARY, model=model),
                                 "end_to_end": self.path(artifacts.END_TO_END_SUMMARY, model=model)})
        return rows

    def loop_rows(self, experiments: list[str], seeds: list[int]) -> list[dict]:
        """One row per loop experiment x seed x pseudo-labeling round, with the files that describe its pseudo
        labels and selection (results/pseudo_label_summary.csv: the targets' rows)."""
        rows = []
        for e in experiments:
            if e not in self.loop_experiments:
                continue
            sam = self.experiments[e]["sam"]
            for s in seeds:
                for r in range(self.experiments[e]["loop"]["rounds"]):
                    rows.append({
                        "experiment": e, "seed": s, "round": r, "run": self.model_dir(e, s, r).split("/")[1],
                        "prompt": sam["prompt"] if sam["enabled"] else NONE,
                        "quality": self.selection_file(artifacts.PSEUDO_LABEL_QUALITY, e, s, r),
                        "finetune_report": self.finetune_report(e, s),
                        "calibration": self.selection_file(artifacts.CALIBRATION, e, s, r),
                        "adapt_report": self.adapt_report(e, s),
                        "labeled_list": self.selection_file(artifacts.LABELED_LIST, e, s, r),
                    })
        return rows

    @staticmethod
    def loop_row_files(rows: list[dict]) -> list[str]:
        """Every file the rows of loop_rows name (the inputs of a pseudo-label summary)."""
        return [row[key] for row in rows for key in LOOP_ROW_FILES if row[key]]

    # ---- the paper --------------------------------------------------------------------------------------------
    def paper_targets(self) -> list[str]:
        if self.paper_undefined:
            raise ConfigError(f"paper: {self.paper_undefined} are not defined under experiments (defined: "
                              f"{sorted(self.config['experiments'])}); define them or name others in paper.methods, "
                              "paper.ablation, paper.reference")
        figures = [artifacts.PAPER_FIGURE_COMPARISON] + ([artifacts.PAPER_FIGURE_ROUNDS] if self.paper_loops else [])
        return [self.path(pattern) for pattern in [artifacts.PAPER_METHODS, artifacts.PAPER_ABLATION, *figures]]

    def paper_cases(self) -> list[tuple[str, int, str]]:
        """(experiment, seed, its final model's per-volume test rows): what the tables' paired comparison reads."""
        return [(e, s, self.final_model(artifacts.TEST_CASES, e, s))
                for e in self.paper_experiments for s in self.paper["seeds"]]

    # ---- segmenting new scans ---------------------------------------------------------------------------------
    def predict_request(self) -> tuple[str, dict]:
        """The model folder and the request that `snakemake predict` segments with (config `predict`)."""
        predict = self.config["predict"]
        experiment = predict["experiment"] or self.config["targets"][-1]
        if experiment not in self.experiments:
            raise ConfigError(f"predict.experiment: {experiment!r} is not a target or paper experiment")
        rounds = self.rounds_of(experiment)
        round_index = rounds[-1] if predict["round"] is None else predict["round"]
        if round_index not in rounds:
            raise ConfigError(f"predict.round: experiment {experiment!r} has rounds {list(rounds)}, not {round_index}")
        seed = self.config["seeds"][0] if predict["seed"] is None else predict["seed"]
        return self.model_dir(experiment, seed, round_index), {"experiment": experiment, "round": round_index,
                                                               "seed": seed}

    def predict_scans(self) -> dict[str, str]:
        """Scan name -> file of every scan in predict.input (listed when the DAG is planned)."""
        from aslseg.data.scans import ScanError, scan_files, scan_name

        folder = self.config["predict"]["input"]
        if folder is None:
            raise ConfigError("predict.input: the folder of scans to segment is not set "
                              "(snakemake predict --config predict='{input: DIR}')")
        try:
            return {scan_name(path): str(path) for path in scan_files(folder)}
        except ScanError as error:
            raise ConfigError(f"predict.input: {error}") from error

    @property
    def predict_dir(self) -> str:
        return self.config["predict"]["output"] or self.under("predictions")

    def predict_outputs(self) -> dict[str, str]:
        """The files `snakemake predict` writes per scan ({scan}: its name)."""
        folder = self.predict_dir
        return {
            "seg": f"{folder}/{{scan}}_seg.nii.gz",
            "sidecar": f"{folder}/{{scan}}_seg.json",
            **({"probability": f"{folder}/{{scan}}_tumor_probability.nii.gz"}
               if self.config["predict"]["probabilities"] else {}),
        }

    def predict_targets(self) -> list[str]:
        """The segmentation of every scan of predict.input (the target of `snakemake predict`)."""
        return [self.predict_outputs()["seg"].format(scan=name) for name in self.predict_scans()]

    def predict_liver_model(self) -> str:
        """The liver model of the split whose model `snakemake predict` segments with."""
        model = self.parse_model(self.predict_request()[0])
        return self.liver_model(model.labeled, model.seed)

    # ---- checks before any job runs ---------------------------------------------------------------------------
    def check_sam_weights(self) -> None:
        """A missing or mismatching checkpoint stops the workflow before any job runs (torch is imported only when
        a target uses Stage II with a user-given checkpoint)."""
        checked = set()
        for sam_run in self.catalog.sam_runs.values():
            sam = sam_run.decoder.embeddings.settings
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
