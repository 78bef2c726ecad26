# The paper's tables and figures: `snakemake paper` trains every experiment of paper.methods and paper.ablation
# for every seed of paper.seeds -- the baselines as much as ASLseg -- and writes results/paper/. Nothing is
# copied: the tables are built from the runs' test summaries, the figures from their models and pseudo labels.
# The paper's names and input functions are in rules/runs.smk.
from aslseg.paper.tables import describe


rule paper:
    """The paper's tables and figures (the target of `snakemake paper`)."""
    input:
        paper_targets,


rule paper_runs:
    """One row per paper experiment x round x seed with its test means (results/summary.csv's columns)."""
    input:
        summaries=[row["summary"] for row in PAPER_RUNS],
        end_to_end=[row["end_to_end"] for row in PAPER_RUNS],
    output:
        report(f"{PAPER_DIR}/runs.csv", caption="../docs/report/summary.rst", category="Paper"),
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
        loop_row_files(PAPER_LOOP_ROWS),
    output:
        report(f"{PAPER_DIR}/pseudo_labels.csv", caption="../docs/report/pseudo_label_summary.rst", category="Paper"),
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
        runs=f"{PAPER_DIR}/runs.csv",
        splits=[paper_split(name, FIRST_SEED) for name in PAPER_EXPERIMENTS],
        cases=[path for _, _, path in PAPER_CASES],
        code=script_code("paper_tables.py"),
    output:
        methods_csv=f"{PAPER_DIR}/table1_methods.csv",
        methods=report(f"{PAPER_DIR}/table1_methods.md", caption="../docs/report/table1_methods.rst", category="Paper"),
        ablation_csv=f"{PAPER_DIR}/table2_ablation.csv",
        ablation=report(f"{PAPER_DIR}/table2_ablation.md", caption="../docs/report/table2_ablation.rst", category="Paper"),
    params:
        experiments=PAPER_EXPERIMENTS,  # in the order of input.splits
        descriptions={name: describe(EXPERIMENTS[name]) for name in PAPER_EXPERIMENTS},
        methods=PAPER_METHODS,
        ablation=PAPER_ABLATION,
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
        unpack(comparison_inputs),
        code=script_code("paper_figure_comparison.py"),
    output:
        report(f"{PAPER_DIR}/figure_comparison.png", caption="../docs/report/figure_comparison.rst", category="Paper"),
    params:
        methods=PAPER_METHODS,  # in the order of input.models
        thresholds=[EXPERIMENTS[name]["ssl"]["threshold"] for name in PAPER_METHODS],
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
        runs=f"{PAPER_DIR}/runs.csv",
        pseudo_labels=f"{PAPER_DIR}/pseudo_labels.csv",
        code=script_code("paper_figure_rounds.py"),
    output:
        report(f"{PAPER_DIR}/figure_rounds.png", caption="../docs/report/figure_rounds.rst", category="Paper"),
    params:
        experiments=PAPER_LOOPS,
    log:
        f"{LOGS}/paper/figure_rounds.log",
    localrule: True
    conda:
        ENV
    script:
        "../workflow_scripts/paper_figure_rounds.py"
