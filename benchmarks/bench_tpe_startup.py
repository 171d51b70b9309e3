"""How many random start-up trials TPE should draw for a given budget of trials, measured on cheap synthetic
objectives (no training): fruitlab's TPE (multivariate, group, constant liar) with n_startup_trials = S, for
several S, and random search as the baseline.

TPE's choices never depend on the total budget, so one run of `--trials` trials per (objective, S, seed) gives the
best value found within every smaller budget too. For each budget and S the table shows the median over seeds of
the regret (best value found - the objective's minimum), and S's mean rank among the candidates (1 = best).

Objectives: branin (2 floats), hartmann6 (6 floats) and hpo (a made-up tuning landscape: an optimizer choice,
a log-uniform learning rate whose best value depends on the optimizer, a log-uniform integer width and a dropout).

Usage: python benchmarks/bench_tpe_startup.py [--seeds 20] [--trials 100] [--budgets 10,20,30,50,100]
       [--startup 2,3,5,8,10,15]
"""

import argparse
import math
import os
import platform
import time
import warnings
from collections.abc import Callable

import numpy as np
import optuna

from fruitlab.sweeping.study import make_sampler

Objective = Callable[[optuna.Trial], float]

HARTMANN_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
HARTMANN_A = np.array(
    [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
)
HARTMANN_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)
BEST_LR = {"sgd": 1e-1, "adam": 1e-3, "rmsprop": 3e-4}
OPTIMIZER_FLOOR = {"sgd": 0.1, "adam": 0.0, "rmsprop": 0.05}


def branin(trial: optuna.Trial) -> float:
    x1, x2 = trial.suggest_float("x1", -5, 10), trial.suggest_float("x2", 0, 15)
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def hartmann6(trial: optuna.Trial) -> float:
    x = np.array([trial.suggest_float(f"x{i}", 0, 1) for i in range(6)])
    return float(-(HARTMANN_ALPHA * np.exp(-(HARTMANN_A * (x - HARTMANN_P) ** 2).sum(axis=1))).sum())


def hpo(trial: optuna.Trial) -> float:
    optimizer = trial.suggest_categorical("optim", list(BEST_LR))
    lr = trial.suggest_float("lr", 1e-5, 1.0, log=True)
    width = trial.suggest_int("width", 8, 256, log=True)
    dropout = trial.suggest_float("dropout", 0.0, 0.5)
    lr_miss = math.log10(lr) - math.log10(BEST_LR[optimizer])
    width_miss = math.log2(width) - math.log2(64)
    return OPTIMIZER_FLOOR[optimizer] + 0.3 * lr_miss**2 + 0.05 * width_miss**2 + (dropout - 0.2) ** 2


OBJECTIVES: dict[str, tuple[Objective, float]] = {  # the objective and its minimum
    "branin": (branin, 0.397887),
    "hartmann6": (hartmann6, -3.32237),
    "hpo": (hpo, 0.0),
}


def best_so_far(objective: Objective, sampler: optuna.samplers.BaseSampler, trials: int) -> np.ndarray:
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=trials)
    return np.minimum.accumulate([t.value for t in study.trials])


def tpe(startup: int, seed: int) -> optuna.samplers.BaseSampler:
    options = {"multivariate": True, "group": True, "constant_liar": True, "n_startup_trials": startup}
    return make_sampler("tpe", seed, options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--budgets", default="10,20,30,50,100")
    parser.add_argument("--startup", default="2,3,5,8,10,15")
    args = parser.parse_args()
    budgets = [int(b) for b in args.budgets.split(",")]
    startups = [int(s) for s in args.startup.split(",")]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, optuna {optuna.__version__}")
    started = time.perf_counter()
    candidates: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
        **{f"S={s}": (lambda seed, s=s: tpe(s, seed)) for s in startups},
        "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    }
    for name, (objective, minimum) in OBJECTIVES.items():
        # regret[candidate][seed] = the regret after each trial
        regret = {
            label: np.array([best_so_far(objective, make(seed), args.trials) - minimum for seed in range(args.seeds)])
            for label, make in candidates.items()
        }
        print(f"\n{name}: median regret over {args.seeds} seeds (mean rank among the TPE start-ups)")
        print("budget | " + " | ".join(candidates))
        for budget in budgets:
            at = {label: runs[:, budget - 1] for label, runs in regret.items()}
            tpe_labels = [label for label in candidates if label != "random"]
            ranks = np.argsort(np.argsort(np.array([at[label] for label in tpe_labels]), axis=0), axis=0) + 1
            mean_rank = dict(zip(tpe_labels, ranks.mean(axis=1), strict=True))
            cells = [
                f"{np.median(at[label]):.4g}" + (f" ({mean_rank[label]:.1f})" if label in mean_rank else "")
                for label in candidates
            ]
            print(f"{budget} | " + " | ".join(cells))
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
