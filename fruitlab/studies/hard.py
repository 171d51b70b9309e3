"""`fruitlab hard-study [OVERRIDES] --budget MINUTES`: the command line of the Fruits-360 hard study (53 similar
classes). Its plan is `hard_plan`, running it `hard_run`."""

import argparse
from collections.abc import Callable
from pathlib import Path

from fruitlab.commands.common import command_parser, run_or_exit
from fruitlab.studies import hard_plan
from fruitlab.studies.hard_plan import (
    BASELINE_EPOCHS,
    BUDGET_MINUTES,
    MAX_TRIALS,
    MODELS,
    PCA_COMPONENTS,
    SEARCH_SHARE,
    SEEDS,
    STRATEGY_NAMES,
    Plan,
)
from fruitlab.studies.seed import integer_list, names


def positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if value <= 0:
            raise argparse.ArgumentTypeError(f"'{text}': give a number above 0")
        return value

    return parse


seed_list = integer_list("seeds", "1,2,3")


def parser() -> argparse.ArgumentParser:
    p = command_parser(
        "hard-study",
        "The Fruits-360 hard study (53 classes): the seed paper's baselines, then five strategies at equal "
        "wall-clock budget (train the paper's configuration longer, or search for part of the budget and train "
        "the winner for the rest), each with every seed, and the report.\n\n" + hard_plan.__doc__.split("\n\n", 1)[1],
        "examples:\n"
        "  fruitlab hard-study data.root=PATH                          # the whole study at --budget 5\n"
        "  fruitlab hard-study data.root=PATH --budget 10 tracking.experiment=fruits360-hard-10\n"
        "  fruitlab hard-study --models lenet --seeds 1 --strategies train_longer,tpe --budget 2 data.root=PATH",
    )
    p.add_argument("overrides", nargs="*", help="Hydra overrides for every run (data.root=PATH, tracking.uri=...)")
    p.add_argument(
        "--budget", type=positive(float), default=BUDGET_MINUTES, help="minutes of each strategy, per seed (5)"
    )
    p.add_argument("--search-share", type=share, default=SEARCH_SHARE, help="of the budget, for a search (0.4)")
    p.add_argument(
        "--strategies", type=names, default=list(STRATEGY_NAMES), help=f"strategies ({','.join(STRATEGY_NAMES)})"
    )
    p.add_argument("--models", type=names, default=list(MODELS), help=f"baseline models ({','.join(MODELS)})")
    p.add_argument("--seeds", type=seed_list, default=list(SEEDS), help="seeds of each baseline and strategy")
    p.add_argument("--components", type=int, default=PCA_COMPONENTS, help="PCA baseline components, 0 for none")
    p.add_argument("--baseline-epochs", type=positive(int), default=BASELINE_EPOCHS)
    p.add_argument("--max-trials", type=positive(int), default=MAX_TRIALS, help="trials per search at most")
    p.add_argument("--out", type=Path, help="report folder (default: reports/<experiment>)")
    return p


def share(text: str) -> float:
    value = positive(float)(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"'{text}': give a fraction between 0 and 1")
    return value


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    if args.tracking_uri:
        args.overrides.append(f"tracking.uri={args.tracking_uri}")
    plan = Plan(
        args.models,
        args.seeds,
        args.components or None,
        args.baseline_epochs,
        args.budget * 60,
        args.max_trials,
        tuple(args.strategies),
        args.search_share,
    )
    from fruitlab.studies.hard_run import hard_study  # torch, Lightning and MLflow: only once the arguments parse

    result = run_or_exit(lambda: hard_study(args.overrides, plan, args.out), args.verbose)
    for label, seconds in result.ran.items():
        print(f"{label}: {seconds:.0f} s")
    if result.skipped:
        print(f"finished before, not run again: {', '.join(result.skipped)}")
    print(f"report: {result.report_folder}/summary.md")
    print(f"study wall time: {result.wall_time_s:.0f} s")
