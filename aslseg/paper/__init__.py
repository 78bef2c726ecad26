"""The paper's tables and figures (`snakemake paper`): built from the runs' files, never from copied numbers."""
