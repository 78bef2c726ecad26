"""aslseg: ASLseg (semi-supervised liver tumor segmentation with a medical SAM in the loop) as a library.

The Snakemake workflow (Snakefile, rules/, workflow_scripts/) is a thin shell around this package: every
piece of logic lives here so that it can be imported and tested without Snakemake.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
