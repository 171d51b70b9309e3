"""Where a run executes: the cluster environment Lightning uses and the scheduler's job id for the run's tags.

fruitlab chooses the environment itself rather than letting Lightning probe for SLURM on every Trainer: the
probe prints "The `srun` command is available on your system but is not used" on any machine with SLURM's
client tools, though a run there is a plain local run."""

import os

from lightning.fabric.plugins.environments import (
    ClusterEnvironment,
    LightningEnvironment,
    SLURMEnvironment,
    TorchElasticEnvironment,
)

SLURM_JOB_TAG = "slurm_job_id"


def in_slurm_job() -> bool:
    """A task started by `srun` inside a job (as submitit starts every trial); an interactive allocation
    (job name `bash` or `interactive`) is a plain local run, as Lightning treats it."""
    return "SLURM_NTASKS" in os.environ and os.environ.get("SLURM_JOB_NAME") not in ("bash", "interactive")


def cluster_environment() -> ClusterEnvironment:
    """torchrun's environment where it launched us, SLURM's inside a SLURM task, else the local one.

    SLURM's auto-requeue is off: a trial's retries belong to the sweeper, which knows the study (a requeued job
    would run a trial the study has already failed and handed out again), and a single run resumes from its
    own last checkpoint (`tracking.resume`)."""
    if TorchElasticEnvironment.detect():
        return TorchElasticEnvironment()
    if in_slurm_job():
        return SLURMEnvironment(auto_requeue=False)
    return LightningEnvironment()


def scheduler_tags() -> dict[str, str]:
    """The SLURM job id (`<array job>_<task>` for an array task) of the job running this process, if any."""
    array_job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    job = f"{array_job}_{task}" if array_job and task else os.environ.get("SLURM_JOB_ID")
    return {SLURM_JOB_TAG: job} if job else {}
