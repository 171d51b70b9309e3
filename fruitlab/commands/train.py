"""`fruitlab [OVERRIDES]` / `python -m fruitlab [OVERRIDES]`: compose the config with Hydra and train it, or
sweep it with `-m`.

Only Hydra is imported at start-up so that `--help` and config errors answer at once; torch, Lightning and
MLflow are imported when a run starts.
"""

from __future__ import annotations

import os
import shlex
import sys
from typing import TYPE_CHECKING

import hydra
from hydra.errors import CompactHydraException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig

from fruitlab.config import config_dir, register_resolvers, validate_config
from fruitlab.errors import FruitlabError, RunInterrupted, print_error

if TYPE_CHECKING:
    from fruitlab.sweeping.trial import TrialReport
    from fruitlab.training.hooks import FitResult

# Lines of Hydra's config errors that describe Hydra's internals rather than the user's mistake.
HYDRA_NOISE = ("full_key:", "object_type=", "Config search path", "provider=", "Available options in")

register_resolvers()


def train(cfg: DictConfig) -> FitResult | TrialReport:
    """One training run of `cfg`; a sweep trial's job (its identity in `cfg.trial`) runs as that trial."""
    validate_config(cfg)  # before torch is imported: a bad value answers at once
    from fruitlab.models import check_image_size

    check_image_size(cfg.model.name, cfg.data.get("image_size"))
    from fruitlab.training.fit import fit

    if cfg.get("trial") is None:
        return fit(cfg)
    from fruitlab.sweeping.trial import SweepTrial, TrialIdentity

    trial = SweepTrial(TrialIdentity.of(cfg))
    return trial.report(fit(cfg, trial))


def resume_hint(interruption: RunInterrupted, overrides: list[str]) -> str:
    """The one line printed when a run is interrupted: what happened and the command that continues it."""
    if interruption.run_id is None:
        return f"fruitlab: {interruption} before a run was recorded; nothing to resume."
    command = [sys.executable.rsplit("/", 1)[-1], "-m", "fruitlab"]
    command += [o for o in overrides if not o.startswith("resume=")] + [f"resume={interruption.run_id}"]
    return (
        f"fruitlab: {interruption}; run {interruption.run_id} is KILLED, its last completed epoch is "
        f"checkpointed. Resume it with: {shlex.join(command)}"
    )


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def hydra_job(cfg: DictConfig) -> FitResult | TrialReport:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    in_sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        return train(cfg)
    except FruitlabError as error:
        if in_sweep:
            raise  # the sweeper records the failed trial and goes on
        print_error(error, cfg.verbose)
        sys.exit(2)
    except RunInterrupted as interruption:
        if in_sweep:
            raise
        print(resume_hint(interruption, list(HydraConfig.get().overrides.task)), file=sys.stderr)
        sys.exit(128 + interruption.signum)  # the shell's convention for "ended by this signal"


def hydra_error_line(error: CompactHydraException) -> str:
    """Hydra's multi-line report of a bad override or config group, as one line."""
    if isinstance(error, MissingConfigException) and error.options and error.missing_cfg_file:
        group, _, value = error.missing_cfg_file.rpartition("/")
        return f"{group}={value} is not a config option; valid {group} options: {', '.join(error.options)}"
    text = f"{error}\n{error.__cause__ or ''}"
    if isinstance(error, OverrideParseException):
        text = f"cannot parse the override '{error.override}': {error.message}"
    lines = (line.strip() for line in text.splitlines())
    return " ".join(line for line in lines if line and not line.startswith(HYDRA_NOISE))


def wants_traceback(argv: list[str]) -> bool:
    verbose = any(a.split("=", 1)[1].lower() in ("true", "yes", "on", "1") for a in argv if a.startswith("verbose="))
    return verbose or os.environ.get("HYDRA_FULL_ERROR") == "1"


def main(argv: list[str]) -> None:
    """Hydra reads the command line itself: `argv` (the overrides) becomes it."""
    sys.argv = [sys.argv[0], *argv]
    traceback_wanted = wants_traceback(argv)
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises its config errors here instead of printing them
    try:
        hydra_job()
    except CompactHydraException as error:
        if traceback_wanted:
            raise
        print(f"fruitlab: error: {hydra_error_line(error)}", file=sys.stderr)
        sys.exit(2)
    except RunInterrupted as interruption:  # only a sweep lets it through hydra_job()
        print(
            f"fruitlab: sweep {interruption}; the trial it was running is FAIL, the sweep's MLflow runs KILLED. "
            "Run the same command again to continue the study.",
            file=sys.stderr,
        )
        sys.exit(128 + interruption.signum)
