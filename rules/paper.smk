# The paper's tables and figures: `snakemake paper` trains every experiment of paper.methods and paper.ablation
# for every seed of paper.seeds -- the baselines as much as ASLseg -- and writes results/paper/. Nothing is
# copied: the tables are built from the runs' test summaries, the figures from their models and pseudo labels.
# The paper's experiments and rows are in aslseg/plan.py, the figure's input function in aslseg/job_inputs.py.
from aslseg.paper.tables import describe


rule paper:
    """The paper's tables and figures (the target of `snakemake paper`)."""
    input:
        lambda wildcards: PLAN.paper_targets(),


rule paper_runs:
    """One row per paper experiment x round x seed with its test means (results/summary.csv's columns)."""
    input:
        summaries=[row["summary"] for row in PAPER_RUNS],
        end_to_end=[row["end_to_end"] for row in PAPER_RUNS],
    output:
        report(result(artifacts.PAPER_RUNS), caption="../docs/report/summary.rst", category="Paper"),
    params:
        rows=[{key: row[key] for key in SUMMARY_KEYS} for row in PAPER_RUNS],
    log:
        f"{LOGS}/paper/runs.log",
    localrule: True
    conda:
        ENV
    script:
        "../workflow_scripts/summary.py"


rule paper_pseudo_labels:
    """One row per paper loop experiment x seed x round: its pseudo labels' quality and its selection."""
    input:
        PLAN.loop_row_files(PAPER_LOOP_ROWS),
    output:
        report(result(artifacts.PAPER_PSEUDO_LABELS), caption="../docs/report/pseudo_label_summary.rst", category="Paper"),
    params:
        rows=PAPER_LOOP_ROWS,
    log:
        f"{LOGS}/paper/pseudo_labels.log",
    localrule: True
    conda:
        ENV
    script:
        "../workflow_scripts/pseudo_label_summary.py"


rule paper_tables:
    """Table 1 (methods) and Table 2 (ablation): each experiment's final round, mean and sd over the seeds, and
    its Dice paired with paper.reference's per seed and test volume, as CSV and as Markdown."""
    input:
        runs=result(artifacts.PAPER_RUNS),
        splits=[PLAN.experiment_split(name, PLAN.first_seed) for name in PLAN.paper_experiments],
        cases=[path for _, _, path in PAPER_CASES],
        code=script_code("paper_tables.py"),
    output:
        methods_csv=result(artifacts.PAPER_METHODS_CSV),
        methods=report(result(artifacts.PAPER_METHODS), caption="../docs/report/table1_methods.rst", category="Paper"),
        ablation_csv=result(artifacts.PAPER_ABLATION_CSV),
        ablation=report(result(artifacts.PAPER_ABLATION), caption="../docs/report/table2_ablation.rst", category="Paper"),
    params:
        experiments=PLAN.paper_experiments,  # in the order of input.splits
        descriptions={name: describe(EXPERIMENTS[name]) for name in PLAN.paper_experiments},
        methods=PLAN.paper_methods,
        ablation=PLAN.paper_ablation,
        reference=PAPER["reference"],
        cases=[(experiment, seed) for experiment, seed, _ in PAPER_CASES],  # in the order of input.cases
    log:
        f"{LOGS}/paper/tables.log",
    localrule: True
    conda:
        ENV
    script:
        "../workflow_scripts/paper_tables.py"


rule paper_figure_comparison:
    """(Evaluation only: reads the test volumes' tumor labels.) The methods side by side on test slices that
    span small to large lesions, as in the paper's Figure 3."""
    input:
        unpack(INPUTS.comparison),
        code=script_code("paper_figure_comparison.py"),
    output:
        report(result(artifacts.PAPER_FIGURE_COMPARISON), caption="../docs/report/figure_comparison.rst", category="Paper"),
    params:
        methods=PLAN.paper_methods,  # in the order of input.models
        thresholds=[EXPERIMENTS[name]["ssl"]["threshold"] for name in PLAN.paper_methods],
        slices=PAPER["figure_slices"],
    log:
        f"{LOGS}/paper/figure_comparison.log",
    threads: job_threads("infer")
    resources:
        **job_resources("infer"),
    conda:
        ENV
    script:
        "../workflow_scripts/paper_figure_comparison.py"


rule paper_figure_rounds:
    """The loop round by round: test Dice, pseudo-label Dice and selection precision per paper loop experiment."""
    input:
        runs=result(artifacts.PAPER_RUNS),
        pseudo_labels=result(artifacts.PAPER_PSEUDO_LABELS),
        code=script_code("paper_figure_rounds.py"),
    output:
        report(result(artifacts.PAPER_FIGURE_ROUNDS), caption="../docs/report/figure_rounds.rst", category="Paper"),
    params:
        experiments=PLAN.paper_loops,
    log:
        f"{LOGS}/paper/figure_rounds.log",
    localrule: True
    conda:
        ENV
    script:
        "../workflow_scripts/paper_figure_rounds.py"
