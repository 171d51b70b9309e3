"""`python -m fruitlab` / `fruitlab`: compose the config with Hydra and run it.

Only Hydra is imported at start-up so that `--help` and config errors answer at once; torch, Lightning and
MLflow are imported when a run starts.
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from fruitlab.errors import FruitlabError

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")


def report_error(error: BaseException, verbose: bool) -> None:
    """One line for the user; the traceback only when asked for."""
    if verbose:
        import traceback

        traceback.print_exception(error)
    print(f"fruitlab: error: {error}", file=sys.stderr)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def run(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    try:
        from fruitlab.training.fit import fit

        return fit(cfg)
    except FruitlabError as error:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # the sweeper records the failed trial and goes on
        report_error(error, cfg.verbose)
        sys.exit(2)


def main() -> None:
    run()
