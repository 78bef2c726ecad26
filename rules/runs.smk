# Wiring: the config's plan (aslseg/plan.py: experiments, rounds, table rows, paper and predict targets) and the
# rules' input functions (aslseg/job_inputs.py), with Snakemake's checkpoints, rules and ancient() plugged in.
# What an artifact is called and which settings it depends on lives in aslseg/artifacts.py.
from aslseg import artifacts
from aslseg.artifacts import NONE, VAL_SHARD
from aslseg.job_inputs import JobInputs
from aslseg.plan import SUMMARY_KEYS, Plan

PLAN = Plan(config)
CATALOG = PLAN.catalog
EXPERIMENTS = PLAN.experiments
SSL_RUNS, SAM_RUNS, EMBEDDINGS, TUNES = CATALOG.ssl_runs, CATALOG.sam_runs, CATALOG.embeddings, CATALOG.tunes
SYNTHS, ADAPTS, ADAPT_RUNS, SELECTS = CATALOG.synths, CATALOG.adapts, CATALOG.adapt_runs, CATALOG.selects
INPUTS = JobInputs(
    PLAN,
    split_file=lambda labeled, seed: checkpoints.split.get(labeled=labeled, seed=seed).output[0],
    holdout_file=lambda: checkpoints.holdout.get().output[0],
    raw_files=raw_files,
    rule_outputs=lambda rule: getattr(rules, rule).output,
    ancient=ancient,
)


def model_of(wildcards):
    return CATALOG.parse_model(wildcards.model)


SUMMARY_ROWS = PLAN.summary_rows(config["targets"], config["seeds"])
LOOP_ROWS = PLAN.loop_rows(config["targets"], config["seeds"])
PAPER = config["paper"]
PAPER_RUNS = PLAN.summary_rows(PLAN.paper_experiments, PAPER["seeds"])
PAPER_LOOP_ROWS = PLAN.loop_rows(PLAN.paper_loops, PAPER["seeds"])
PAPER_CASES = PLAN.paper_cases()
PREDICT = config["predict"]
