"""What each job reads: the rules' input functions, from a job's wildcards to the files it needs.

Which volumes' tumor labels a job may read is decided here, from the splits, so the honest data flow (the
labels of unlabeled and test volumes reach evaluation rules only) is checked by unit tests on this class.
Snakemake's part is injected: `split_file(labeled, seed)` and `holdout_file()` return a split's path once its
checkpoint has run (rules/runs.smk passes `checkpoints.split.get(...)`), `raw_files(case)` a raw case's
files, `rule_outputs(rule)` a rule's output patterns and `ancient` marks an input whose timestamp must not
rerun anything. Tests pass plain functions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from aslseg import artifacts
from aslseg.artifacts import NONE, VAL_SHARD, Model, labeled_name
from aslseg.plan import Plan


def _unchanged(path):
    return path


class JobInputs:
    def __init__(self, plan: Plan, split_file: Callable, holdout_file: Callable, raw_files: Callable,
                 rule_outputs: Callable = lambda rule: [], ancient: Callable = _unchanged):
        self.plan = plan
        self.catalog = plan.catalog
        self._split_file = split_file
        self._holdout_file = holdout_file
        self.raw_files = raw_files
        self._rule_outputs = rule_outputs
        self._ancient = ancient

    # ---- files of the data stage ------------------------------------------------------------------------------
    def image(self, case) -> str:
        return self.plan.path(artifacts.PREPARED_IMAGE, case=case)

    def label(self, case) -> str:
        return self.plan.path(artifacts.PREPARED_LABEL, case=case)

    def images(self, cases) -> list[str]:
        return [self.image(case) for case in cases]

    def labels(self, cases) -> list[str]:
        return [self.label(case) for case in cases]

    def shard_cases(self, shard, case_ids) -> list:
        """The cases of inference shard `shard` (an int or wildcard string) among `case_ids`."""
        count = len(self.plan.shards)
        return [case for index, case in enumerate(sorted(case_ids)) if index % count == int(shard)]

    # ---- splits -----------------------------------------------------------------------------------------------
    def model(self, wildcards) -> Model:
        return self.catalog.parse_model(wildcards.model)

    def split_file(self, labeled, seed) -> str:
        return self._split_file(labeled_name(labeled), seed)

    def split(self, labeled, seed) -> dict:
        return json.loads(Path(self.split_file(labeled, seed)).read_text())

    def run_split_file(self, wildcards) -> str:
        """The split a {model} trains on; a checkpoint, since which volumes' labels a job reads depends on it."""
        model = self.model(wildcards)
        return self.split_file(model.labeled, model.seed)

    def run_split(self, wildcards) -> dict:
        model = self.model(wildcards)
        return self.split(model.labeled, model.seed)

    def draw_split(self, wildcards) -> dict:
        """The split of a {labeled}/{seed} draw (what SAM's fine-tuning, AN and the liver model train on)."""
        return self.split(wildcards.labeled, wildcards.seed)

    def holdout(self) -> dict:
        return json.loads(Path(self._holdout_file()).read_text())

    # ---- Stage I ----------------------------------------------------------------------------------------------
    def previous_round(self, rule: str) -> Callable:
        """Input function of a job derived from a round's model (ssl_predict ... evaluate_end_to_end): from round
        1 on, the round's model, the previous round's model and this job's outputs in the previous round. A round
        whose model is the previous round's (ssl_train reuses it when the list is unchanged) would only repeat
        the previous round's jobs, so each copies those outputs (aslseg.workflow.reuse_previous_round_outputs)."""

        def inputs(wildcards):
            model = self.model(wildcards)
            if model.round == 0:
                return {}
            previous = {**dict(wildcards.items()),
                        "model": self.plan.model_dir(model.experiment, model.seed, model.round - 1)}
            return {
                "round_model": self.plan.path(artifacts.MODEL, model=wildcards.model),
                "previous_model": self.plan.path(artifacts.MODEL, model=previous["model"]),
                "previous_outputs": [pattern.format(**previous) for pattern in self._rule_outputs(rule)],
            }

        return inputs

    def ssl_train(self, wildcards) -> dict:
        """Images of the training and val volumes; tumor labels of the labeled and val volumes only; from round 1
        on, the round's labeled list, the pseudo-label files it can name (the final pseudo labels of every
        earlier round) and the previous round's model, never an unlabeled volume's label."""
        model, split = self.model(wildcards), self.run_split(wildcards)
        inputs = {
            "split": self.run_split_file(wildcards),
            "images": self.images(sorted(split["labeled"] + split["unlabeled"] + split["val"])),
            "labels": self.labels(sorted(split["labeled"] + split["val"])),
        }
        if model.round >= 1:
            inputs["labeled_list"] = self.plan.labeled_list(model.experiment, model.seed, model.round)
            # reused as it is when the previous round accepted nothing (its training would only be repeated)
            previous = self.plan.model_dir(model.experiment, model.seed, model.round - 1)
            inputs["previous_model"] = self.plan.path(artifacts.MODEL, model=previous)
            inputs["pseudo_labels"] = [path for r in range(model.round)
                                       for path in self.plan.final_pseudo_labels(model.experiment, model.seed, r)]
        return inputs

    def shard_images(self, wildcards) -> list[str]:
        """The images of one prediction shard: a share of the unlabeled volumes, or every val volume."""
        split = self.run_split(wildcards)
        cases = split["val"] if wildcards.shard == VAL_SHARD else self.shard_cases(wildcards.shard, split["unlabeled"])
        return self.images(cases)

    def test_images(self, wildcards) -> list[str]:
        return self.images(self.run_split(wildcards)["test"])

    def test_labels(self, wildcards) -> list[str]:
        """(Evaluation only.) The test volumes' tumor labels."""
        return self.labels(self.run_split(wildcards)["test"])

    # ---- Stage II -------------------------------------------------------------------------------------------------
    def embedding_files(self, embeddings: artifacts.Embeddings) -> dict[str, list[str]]:
        return {name: [self.plan.under(path) for path in paths] for name, paths in embeddings.files().items()}

    def decoder(self, sam_run: artifacts.SamRun, labeled, seed) -> dict[str, str]:
        """{"decoder": the fine-tuned decoder a SAM run uses}, or {} when sam.finetune.enabled is false."""
        return {name: self.plan.under(path) for name, path in sam_run.decoder_file(labeled, seed).items()}

    def sam_weights(self, wildcards) -> dict:
        """The base weights file as an input when the config names one (ancient: a copied file with a new
        timestamp must not re-embed every slice); the shipped LiteMedSAM weights belong to the installed package."""
        weights = self.catalog.embeddings[wildcards.embed].settings["checkpoint"]
        return {"weights": self._ancient(weights)} if weights else {}

    def embed_shard_images(self, wildcards) -> list[str]:
        """Train and val volumes (the slices Stage II ever prompts or fine-tunes on) of one embedding shard; test
        volumes are never embedded."""
        holdout = self.holdout()
        cases = sorted(holdout["train"] + holdout["val"])
        return self.images(cases[int(wildcards.shard) :: self.catalog.embeddings[wildcards.embed].settings["shards"]])

    def _labeled_and_val(self, wildcards) -> list:
        split = self.draw_split(wildcards)
        return sorted(split["labeled"] + split["val"])

    def sam_finetune(self, wildcards) -> dict:
        """Embeddings, and the tumor labels of the labeled volumes (to fine-tune on) and val volumes (to report
        zero-shot vs fine-tuned Dice): the labels a Stage I run of the same split may read, nothing more."""
        return {
            **self.embedding_files(self.catalog.tunes[wildcards.tune].embeddings),
            "split": self.split_file(wildcards.labeled, wildcards.seed),
            "labels": self.labels(self._labeled_and_val(wildcards)),
        }

    def sam_decoder(self, wildcards) -> dict:
        model = self.model(wildcards)
        return self.decoder(self.catalog.sam_runs[wildcards.samrun], model.labeled, model.seed)

    def sam_run_embeddings(self, wildcards) -> dict:
        return self.embedding_files(self.catalog.sam_runs[wildcards.samrun].decoder.embeddings)

    # ---- Stage III and the selection ------------------------------------------------------------------------------
    def synthesis(self, wildcards) -> dict:
        """SAM (embeddings, decoder) and the images and tumor labels of the labeled volumes (training examples)
        and val volumes (AN's validation): the labels a Stage I run of the same split may read."""
        sam_run = self.catalog.synths[wildcards.synth].sam_run
        cases = self._labeled_and_val(wildcards)
        return {
            **self.embedding_files(sam_run.decoder.embeddings),
            **self.decoder(sam_run, wildcards.labeled, wildcards.seed),
            "split": self.split_file(wildcards.labeled, wildcards.seed),
            "images": self.images(cases),
            "labels": self.labels(cases),
        }

    def adapt_train(self, wildcards) -> dict:
        cases = self._labeled_and_val(wildcards)
        synthesis = self.catalog.adapts[wildcards.adapt].synthesis
        synthetic = synthesis.file(artifacts.SYNTHETIC, wildcards.labeled, wildcards.seed)
        return {
            "synthetic": self.plan.under(synthetic),
            "split": self.split_file(wildcards.labeled, wildcards.seed),
            "images": self.images(cases),
            "labels": self.labels(cases),
        }

    def adapt_model(self, wildcards) -> str:
        model, adapt_run = self.model(wildcards), self.catalog.adapt_runs[wildcards.adaptrun]
        return self.plan.under(adapt_run.model.file(artifacts.ADAPT_MODEL, model.labeled, model.seed))

    def pseudo_label(self, level: int, wildcards, shard) -> str:
        """PL1, PL2 or PL3 (the final label: PL2 without AN, PL1 without SAM) of a shard of the {model}."""
        if level == 1:
            path = artifacts.pseudo_label_1(wildcards.model, shard)
        elif level == 2:
            path = artifacts.pseudo_label_2(wildcards.model, wildcards.samrun, shard)
        else:
            path = artifacts.pseudo_label_3(wildcards.model, wildcards.samrun, wildcards.adaptrun, shard)
        return self.plan.under(path)

    def adapt_refine(self, wildcards) -> dict:
        """AN, the shard's PL1, PL2 and images, and with adapt.fallback the round's judgement of AN."""
        inputs = {
            "model": self.adapt_model(wildcards),
            "pl2": self.pseudo_label(2, wildcards, wildcards.shard),
            "pl1": self.pseudo_label(1, wildcards, wildcards.shard),
            "images": self.shard_images(wildcards),
        }
        if self.catalog.adapt_runs[wildcards.adaptrun].fallback:
            inputs["judgement"] = self.plan.path(artifacts.JUDGEMENT, **dict(wildcards.items()))
        return inputs

    def adapt_judge(self, wildcards) -> dict:
        """AN, the val volumes' PL1, PL2, images and tumor labels (which training reads already)."""
        val = self.run_split(wildcards)["val"]
        return {
            "model": self.adapt_model(wildcards),
            "pl2": self.pseudo_label(2, wildcards, VAL_SHARD),
            "pl1": self.pseudo_label(1, wildcards, VAL_SHARD),
            "images": self.images(val),
            "labels": self.labels(val),
        }

    def sam_components(self, wildcards, shard) -> str:
        """SAM's per-component table of a shard (predicted IoU, area) beside its PL2."""
        return self.plan.path(artifacts.SAM_COMPONENTS, model=wildcards.model, samrun=wildcards.samrun, shard=shard)

    def selection(self, wildcards) -> dict:
        """PL1, the final pseudo label (PL3; PL2 without AN; PL1 without SAM) and SAM's per-component table of
        every shard of one round's selection; from round 1 on, the round's labeled list (its slices are no
        longer unlabeled, so they are not scored again); for a calibrated selection the same of the val volumes,
        with their labels, and from round 1 on the previous round's calibration."""
        model, shards = self.model(wildcards), self.plan.shards
        inputs = {
            "pl1": [self.pseudo_label(1, wildcards, k) for k in shards],
            "pl3": [self.pseudo_label(3, wildcards, k) for k in shards],
        }
        if wildcards.samrun != NONE:
            inputs["components"] = [self.sam_components(wildcards, k) for k in shards]
        if model.round >= 1:
            inputs["labeled_list"] = self.plan.labeled_list(model.experiment, model.seed, model.round)
        if self.catalog.selects[wildcards.select].settings["rule"] == "calibrated":
            inputs["val_pl1"] = self.pseudo_label(1, wildcards, VAL_SHARD)
            inputs["val_pl3"] = self.pseudo_label(3, wildcards, VAL_SHARD)
            if wildcards.samrun != NONE:
                inputs["val_components"] = self.sam_components(wildcards, VAL_SHARD)
            inputs["val_labels"] = self.labels(self.run_split(wildcards)["val"])
            if model.round >= 1:  # which val slices earlier rounds' thresholds took (reliability.calibrate_round)
                inputs["previous_calibration"] = self.plan.selection_file(
                    artifacts.CALIBRATION, model.experiment, model.seed, model.round - 1)
        return inputs

    def labeled_images(self, wildcards) -> list[str]:
        return self.images(self.run_split(wildcards)["labeled"])

    def labeled_label_files(self, wildcards) -> dict:
        """Case -> where the ground truth of each labeled volume lives (a list records it; no job reads it here)."""
        return {case: self.label(case) for case in self.run_split(wildcards)["labeled"]}

    def shard_pseudo_labels_2(self, wildcards) -> list[str]:
        return [self.pseudo_label(2, wildcards, k) for k in self.plan.shards]

    def unlabeled_images(self, wildcards) -> list[str]:
        return self.images(self.run_split(wildcards)["unlabeled"])

    def unlabeled_labels(self, wildcards) -> list[str]:
        """(Evaluation only.) The unlabeled volumes' hidden tumor labels."""
        return self.labels(self.run_split(wildcards)["unlabeled"])

    # ---- the liver stage ------------------------------------------------------------------------------------------
    def liver_train(self, wildcards) -> dict:
        """The labeled volumes (training) and val volumes (checkpoint selection), whole: the volumes whose labels
        training may read."""
        split = self.draw_split(wildcards)
        files = {group: [self.raw_files(case) for case in sorted(split[group])] for group in ("labeled", "val")}
        return {
            "split": self.split_file(wildcards.labeled, wildcards.seed),
            **{f"{group}_{kind}": [f[kind] for f in files[group]] for group in files
               for kind in ("volume", "segmentation")},
        }

    def model_liver(self, wildcards) -> str:
        """The liver model of the {model} wildcard's split."""
        model = self.model(wildcards)
        return self.plan.liver_model(model.labeled, model.seed)

    def test_raw(self, kind: str) -> Callable:
        """Input function: the test volumes' volume or segmentation files of the {model} wildcard's split."""
        return lambda wildcards: [self.raw_files(case)[kind] for case in sorted(self.run_split(wildcards)["test"])]

    # ---- the paper ---------------------------------------------------------------------------------------------
    def comparison(self, wildcards) -> dict:
        """(Evaluation only.) The final model of each method at the first seed, and the test volumes with their
        tumor labels (the test set is the same for every seed and labeled fraction)."""
        plan = self.plan
        test = self.split(plan.labeled(plan.paper_methods[0]), plan.first_seed)["test"]
        return {
            "models": [plan.final_model(artifacts.MODEL, name, plan.first_seed) for name in plan.paper_methods],
            "images": self.images(test),
            "labels": self.labels(test),
        }
