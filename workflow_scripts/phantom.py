"""Rule phantom: write one synthetic CT case as volume-N.nii.gz / segmentation-N.nii.gz."""

from aslseg.data.phantom import PhantomParams, generate_case
from aslseg.io import write_nifti
from aslseg.workflow import job_logging

with job_logging(snakemake) as log:
    case_id = int(snakemake.wildcards.case)
    case = generate_case(case_id, PhantomParams.from_config(snakemake.params.phantom))
    write_nifti(snakemake.output.volume, case.hu, case.affine)
    write_nifti(snakemake.output.segmentation, case.segmentation, case.affine)
    log.info("case %d: shape %s, %d tumors", case_id, case.hu.shape, case.n_tumors)
