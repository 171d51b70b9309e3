"""`fruitlab [OVERRIDES]` / `python -m fruitlab [OVERRIDES]`: compose the config with Hydra and train it, or
sweep it with `-m`.

Only Hydra is imported at start-up so that `--help` and config errors answer at once; torch, Lightning and
MLflow are imported when a run starts.
"""

from __future__ import annotations

import argparse
import difflib
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hydra.errors import CompactHydraException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig
from omegaconf.errors import ConfigAttributeError, ConfigKeyError

from fruitlab.config import compose_config, config_dir, prepare_hydra, validate_config
from fruitlab.errors import ConfigError, FruitlabError, RunInterrupted, print_error
from fruitlab.schema import GROUPS

if TYPE_CHECKING:
    from fruitlab.sweeping.outcomes import TrialReport
    from fruitlab.tracking.store import Store
    from fruitlab.training.hooks import FitResult

# Lines of Hydra's config errors that describe Hydra's internals rather than the user's mistake.
HYDRA_NOISE = ("full_key:", "object_type=", "Config search path", "provider=", "Available options in")


def train(cfg: DictConfig, overrides: Sequence[str] = (), summarize: bool = False) -> FitResult | TrialReport:
    """One training run of `cfg` in the store it names (with `summarize`, its summary printed); a sweep trial's
    job (its identity in `cfg.trial`) runs as that trial. `overrides`: the command's, recorded with the run."""
    validate_config(cfg)  # before torch is imported: a bad value answers at once
    from fruitlab.console import tidy_console
    from fruitlab.models import check_image_size

    check_image_size(cfg.model.name, cfg.data.get("image_size"))
    from fruitlab.tracking.store import Store
    from fruitlab.training.run import run

    tidy_console(cfg.verbose)
    store = Store.open(cfg.tracking.uri)  # before the data is loaded, so that a wrong address fails at once
    if cfg.get("trial") is None:
        result = run(cfg, store, overrides=overrides)
        if summarize and result.run_id is not None:  # the other processes of a multi-process run record none
            print("\n".join(run_summary(cfg, store, result)), flush=True)
        return result
    from fruitlab.sweeping.identity import TrialIdentity
    from fruitlab.sweeping.trial import SweepTrial

    trial = SweepTrial(TrialIdentity.of(cfg))
    return trial.report(run(cfg, store, trial, overrides))


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


def run_summary(cfg: DictConfig, store: Store, result: FitResult) -> list[str]:
    """The lines that end a single run: which run it was, its scores, its model and where to see it."""
    from fruitlab.tracking.links import StoreUI
    from fruitlab.tracking.logged_models import logged_model_uris
    from fruitlab.tracking.query import find_run
    from fruitlab.training.loop import experiment_name

    run = find_run(store, result.run_id)
    tests = ", ".join(
        f"{name} {value:.4f}" for name, value in sorted(result.metrics.items()) if name.startswith("test_")
    )
    models = logged_model_uris(store, run.experiment_id, run.run_id)
    ui = StoreUI.of(store.uri)
    lines = [
        f"fruitlab: run {run.run_name} {run.status}, id {run.run_id}, experiment {experiment_name(cfg)} "
        f"(id {run.experiment_id})",
        f"  objective   best {cfg.objective.metric} {result.objective:.4f} ({cfg.objective.direction})",
        f"  test        {tests or 'none (cross-validation scores the folds)'}",
        f"  model       {' = '.join(models) if models else 'not logged (tracking.log_model=false)'}",
        f"  checkpoints {store.checkpoint_dir(run.run_id)}",
    ]
    if ui.command:
        lines.append(f"  see it      {ui.command}")
        lines.append(f"              then open {ui.run_page(run.experiment_id, run.run_id)}")
    else:
        lines.append(f"  see it      {ui.run_page(run.experiment_id, run.run_id)}")
    return lines


def hydra_job(cfg: DictConfig) -> FitResult | TrialReport:
    """Hydra's task function: the job's config and runtime (mode, overrides) are Hydra's to give here."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    in_sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    overrides = list(HydraConfig.get().overrides.task)
    try:
        return train(cfg, overrides, summarize=not in_sweep)
    except FruitlabError as error:
        if in_sweep:
            raise  # the sweeper records the failed trial and goes on
        print_error(error, cfg.verbose)
        sys.exit(2)
    except RunInterrupted as interruption:
        if in_sweep:
            raise
        print(resume_hint(interruption, overrides), file=sys.stderr)
        sys.exit(128 + interruption.signum)  # the shell's convention for "ended by this signal"


def did_you_mean(name: str, valid: list[str], shown: Callable[[str], list[str]] = lambda c: [c]) -> str:
    """'did you mean a or b? ' for the valid names closest to `name` (each written as `shown` says), or ''
    when none is close."""
    close = [full for c in difflib.get_close_matches(name, valid, n=3, cutoff=0.7) for full in shown(c)]
    return f"did you mean {' or '.join(close[:3])}? " if close else ""


def config_groups() -> list[str]:
    return sorted({d.name for d in Path(config_dir()).iterdir() if d.is_dir()} | set(GROUPS))


def key_paths(node: DictConfig, prefix: str = "") -> list[str]:
    """Every key of `node` and of its sections, dotted (trainer.max_epochs); Hydra's own section left out."""
    paths = []
    for key in node:
        if key == "hydra":
            continue
        path = f"{prefix}{key}"
        paths.append(path)
        if isinstance(child := node._get_node(key), DictConfig):
            paths += key_paths(child, f"{path}.")
    return paths


def unknown_key_line(error: CompactHydraException) -> str | None:
    """The line for an override of a key the config lacks (a typo, mostly): the closest keys beside it, else the
    closest keys elsewhere in the config (epochs -> trainer.max_epochs), else the keys beside it."""
    cause = error.__cause__
    if not isinstance(cause, (ConfigAttributeError, ConfigKeyError)) or cause.parent_node is None:
        return None
    parent, _, key = str(cause.full_key).rpartition(".")
    prefix = f"{parent}." if parent else ""
    valid = sorted({str(k) for k in cause.parent_node if k != "hydra"} | set(config_groups() if not parent else []))
    elsewhere: dict[str, list[str]] = {}
    for path in key_paths(cause.parent_node._get_root()):
        elsewhere.setdefault(path.rpartition(".")[2], []).append(path)
    hint = (
        did_you_mean(key, valid, lambda c: [prefix + c])
        or did_you_mean(key, list(elsewhere), elsewhere.__getitem__)
        or f"valid keys here: {', '.join(prefix + k for k in valid)}. "
    )
    return f"there is no key {cause.full_key} in the config; {hint}(+{cause.full_key}=VALUE adds a new key)"


def hydra_error_line(error: CompactHydraException) -> str:
    """Hydra's multi-line report of a bad override or config group, as one line."""
    if isinstance(error, MissingConfigException) and error.options and error.missing_cfg_file:
        group, _, value = error.missing_cfg_file.rpartition("/")
        return (
            f"{group}={value} is not a config option; {did_you_mean(value, error.options)}"
            f"valid {group} options: {', '.join(error.options)}"
        )
    if line := unknown_key_line(error):
        return line
    text = f"{error}\n{error.__cause__ or ''}"
    if isinstance(error, OverrideParseException):
        text = f"cannot parse the override '{error.override}': {error.message}"
    lines = (line.strip() for line in text.splitlines())
    return " ".join(line for line in lines if line and not line.startswith(HYDRA_NOISE))


def wants_traceback(argv: list[str]) -> bool:
    verbose = any(a.split("=", 1)[1].lower() in ("true", "yes", "on", "1") for a in argv if a.startswith("verbose="))
    return verbose or os.environ.get("HYDRA_FULL_ERROR") == "1"


def check_composes(args: argparse.Namespace) -> None:
    """Compose the config the command asks for, so that a bad override raises here: inside Hydra's runner it would
    be printed in Hydra's words with exit code 1."""
    if not (args.help or args.hydra_help or args.info or args.shell_completion):
        compose_config(args.overrides, multirun=args.multirun)


def run_hydra(argv: list[str]) -> None:
    """Hydra's command line (`-m`, `--cfg`, `--help`, overrides) given as `argv`: what `hydra.main` does with
    `sys.argv`, which no public Hydra API takes as an argument."""
    from hydra import version
    from hydra._internal.utils import _run_hydra, get_args_parser

    version.setbase("1.3")
    parser = get_args_parser()
    args = parser.parse_args(argv)
    check_composes(args)
    _run_hydra(args=args, args_parser=parser, task_function=hydra_job, config_path=config_dir(), config_name="config")


def main(argv: list[str]) -> None:
    prepare_hydra()
    try:
        run_hydra(argv)
    except (CompactHydraException, ConfigError) as error:
        if wants_traceback(argv):
            raise
        line = hydra_error_line(error) if isinstance(error, CompactHydraException) else str(error)
        print(f"fruitlab: error: {line}", file=sys.stderr)
        sys.exit(2)
    except RunInterrupted as interruption:  # only a sweep lets it through hydra_job()
        print(
            f"fruitlab: sweep {interruption}; the trial it was running is FAIL, the sweep's MLflow runs KILLED. "
            "Run the same command again to continue the study.",
            file=sys.stderr,
        )
        sys.exit(128 + interruption.signum)
