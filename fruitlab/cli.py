"""`python -m fruitlab` / `fruitlab`: compose the config with Hydra and run it.

Only Hydra is imported at start-up so that `--help` and config errors answer at once; torch, Lightning and
MLflow are imported when a run starts.
"""

import os
import shlex
import sys
from pathlib import Path

import hydra
from hydra.errors import CompactHydraException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig

from fruitlab.config import check_types, register_resolvers
from fruitlab.errors import FruitlabError, RunInterrupted

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")
# Lines of Hydra's config errors that describe Hydra's internals rather than the user's mistake.
HYDRA_NOISE = ("full_key:", "object_type=", "Config search path", "provider=", "Available options in")

register_resolvers()


def report_error(error: BaseException, verbose: bool) -> None:
    """One line for the user; the traceback only when asked for."""
    if verbose:
        import traceback

        traceback.print_exception(error)
    print(f"fruitlab: error: {error}", file=sys.stderr)


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


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def run(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    try:
        check_types(cfg)  # before torch is imported: a mistyped value answers at once
        from fruitlab.training.fit import fit

        return fit(cfg)
    except FruitlabError as error:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # the sweeper records the failed trial and goes on
        report_error(error, cfg.verbose)
        sys.exit(2)
    except RunInterrupted as interruption:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
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


def main() -> None:
    traceback_wanted = wants_traceback(sys.argv[1:])
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises its config errors here instead of printing them
    try:
        run()
    except CompactHydraException as error:
        if traceback_wanted:
            raise
        print(f"fruitlab: error: {hydra_error_line(error)}", file=sys.stderr)
        sys.exit(2)
    except RunInterrupted as interruption:  # only a sweep lets it through run()
        print(
            f"fruitlab: sweep {interruption}; the trial it was running is FAIL, the sweep's MLflow runs KILLED. "
            "Run the same command again to continue the study.",
            file=sys.stderr,
        )
        sys.exit(128 + interruption.signum)
