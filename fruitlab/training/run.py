"""`run(cfg, store, hooks)`: what a training command runs, one fit or a cross-validation (`cv.folds`), chosen
above both so that neither imports the other."""

from collections.abc import Sequence

from omegaconf import DictConfig

from fruitlab.signals import interrupts_raise
from fruitlab.tracking.store import Store
from fruitlab.training.cv import cross_validate
from fruitlab.training.fit import fit
from fruitlab.training.hooks import FitResult, TrainingHooks
from fruitlab.training.speed import set_threads


@interrupts_raise()
def run(cfg: DictConfig, store: Store, hooks: TrainingHooks | None = None, overrides: Sequence[str] = ()) -> FitResult:
    """Train, test and record `cfg` in `store`: one run, or with `cv.folds` set one parent run with a child run
    per fold. `hooks` (a sweep trial's) add callbacks and may cut training short; `overrides` (the command's)
    are recorded with the run."""
    set_threads(cfg.get("threads"))
    if cfg.cv.folds:
        return cross_validate(cfg, store, hooks, overrides)
    return fit(cfg, store, hooks, overrides)
