"""A Hydra app that is not fruitlab's training, swept by fruitlab's sweeper as a user of the upstream Optuna
sweeper would: it returns one number, or two for two objectives (`two=true`), after `sleep` seconds.

    python tests/e2e/apps/toy_task.py -m 'x=interval(-3,3)' hydra.sweeper.n_trials=5
"""

import time
from dataclasses import dataclass, field
from typing import Any

import hydra
import optuna
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig


@dataclass
class ToyConfig:
    defaults: list[Any] = field(default_factory=lambda: ["_self_", {"override hydra/sweeper": "fruitlab_optuna"}])
    x: float = 0.0
    n: int = 8  # must arrive as an int
    opt: str = "adam"
    two: bool = False
    sleep: float = 0.0


ConfigStore.instance().store(name="toy", node=ToyConfig)


def momentum_with_sgd(cfg: DictConfig, trial: optuna.Trial) -> None:
    """A conditional search space (hydra.sweeper.custom_search_space): a momentum only for sgd."""
    if trial.params["opt"] == "sgd":
        trial.suggest_float("+momentum", 0.0, 0.99)


@hydra.main(version_base="1.3", config_path=None, config_name="toy")
def task(cfg: DictConfig) -> float | tuple[float, float]:
    if not isinstance(cfg.n, int):
        raise TypeError(f"n must be an int, got {cfg.n!r}")
    if "momentum" in cfg and cfg.opt != "sgd":
        raise ValueError("momentum is for sgd only")
    time.sleep(cfg.sleep)
    if cfg.two:
        return (cfg.x - 1) ** 2, (cfg.x + 1) ** 2
    return (cfg.x - 1) ** 2 + cfg.n / 100


if __name__ == "__main__":
    task()
