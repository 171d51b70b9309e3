"""`fruitlab hard-study [OVERRIDES] --budget MINUTES`: the command line of the Fruits-360 hard study (53 similar
classes). Its plan is `hard_plan`, running it `hard_run`."""

import argparse
from collections.abc import Callable
from pathlib import Path

from fruitlab.commands.common import command_parser, run_or_exit
from fruitlab.studies import hard_plan
from fruitlab.studies.hard_plan import (
    BASELINE_EPOCHS,
    MAX_TRIALS,
    MODELS,
    PCA_COMPONENTS,
    SEARCH_EPOCHS,
    SEEDS,
    Plan,
    strategy_seconds,
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
        "The Fruits-360 hard study (53 classes): the seed paper's baselines, TPE + Hyperband against random "
        "search and the optimizer x lr grid at equal wall-clock budget, the best configuration retrained, and "
        "the report.\n\n" + hard_plan.__doc__.split("\n\n", 1)[1],
        "examples:\n"
        "  fruitlab hard-study data.root=PATH                          # the whole study at --budget 90\n"
        "  fruitlab hard-study data.root=PATH --budget 240             # longer searches\n"
        "  fruitlab hard-study --models lenet --seeds 1 --max-trials 2 --budget 10 data.root=PATH",
    )
    p.add_argument("overrides", nargs="*", help="Hydra overrides for every run (data.root=PATH, tracking.uri=...)")
    p.add_argument("--budget", type=positive(float), default=90.0, help="minutes the study is sized for (90)")
    p.add_argument("--models", type=names, default=list(MODELS), help=f"baseline models ({','.join(MODELS)})")
    p.add_argument("--seeds", type=seed_list, default=list(SEEDS), help="seeds of each baseline and the retrain")
    p.add_argument("--components", type=int, default=PCA_COMPONENTS, help="PCA baseline components, 0 for none")
    p.add_argument("--baseline-epochs", type=positive(int), default=BASELINE_EPOCHS)
    p.add_argument("--search-epochs", type=positive(int), default=SEARCH_EPOCHS, help="quarter epochs per trial")
    p.add_argument("--max-trials", type=positive(int), default=MAX_TRIALS, help="trials per strategy at most")
    p.add_argument("--out", type=Path, help="report folder (default: reports/<experiment>)")
    return p


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    if args.tracking_uri:
        args.overrides.append(f"tracking.uri={args.tracking_uri}")
    plan = Plan(
        args.models,
        args.seeds,
        args.components or None,
        args.baseline_epochs,
        args.search_epochs,
        strategy_seconds(args.budget),
        args.max_trials,
    )
    from fruitlab.studies.hard_run import hard_study  # torch, Lightning and MLflow: only once the arguments parse

    result = run_or_exit(lambda: hard_study(args.overrides, plan, args.out), args.verbose)
    for label, seconds in result.ran.items():
        print(f"{label}: {seconds:.0f} s")
    if result.skipped:
        print(f"finished before, not run again: {', '.join(result.skipped)}")
    print(f"report: {result.report_folder}/summary.md")
    print(f"study wall time: {result.wall_time_s:.0f} s")
