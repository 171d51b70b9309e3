"""What every command shares: its parser's store and verbosity options, and one way to turn a user's mistake
into one line and exit code 2."""

import argparse
import sys
from collections.abc import Callable
from typing import TypeVar

from fruitlab.errors import FruitlabError, print_error

T = TypeVar("T")

MODEL_HELP = "run id, runs:/<run_id>/model or models:/<name>@<alias> (or /<version>)"


def command_parser(verb: str, description: str, epilog: str | None = None) -> argparse.ArgumentParser:
    """A parser for `fruitlab VERB` with the options every command has: --tracking-uri and --verbose."""
    parser = argparse.ArgumentParser(
        prog=f"fruitlab {verb}",
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db)"
    )
    parser.add_argument("--verbose", action="store_true", help="full tracebacks")
    return parser


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    """The recorded model a command reads, and the opt-in to load one stored as a Python pickle."""
    parser.add_argument("model", help=MODEL_HELP)
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        help="load a model stored as a Python pickle, which runs any code its author put in it (default: refuse, "
        "unless FRUITLAB_ALLOW_PICKLE=1)",
    )


def run_or_exit(work: Callable[[], T], verbose: bool) -> T:
    """`work()`, or one line on stderr and exit code 2 when it fails on a user's mistake (a bad value, a
    missing run, a bad override)."""
    from hydra.errors import HydraException

    try:
        return work()
    except (FruitlabError, HydraException) as error:
        print_error(error, verbose)
        sys.exit(2)
