"""What a study's trials add up to: how many completed, were pruned or failed, the best configuration (or the
Pareto front of several objectives), and the `optimization_results.yaml` content the upstream Optuna sweeper
writes. Pure: reads the study, writes nothing."""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

from fruitlab.sweeping.claims import unresolved_failures
from fruitlab.sweeping.identity import RUN_ID_ATTR
from fruitlab.sweeping.warm_start import SEEDED_ATTR


@dataclass(frozen=True)
class TrialCounts:
    complete: int
    pruned: int
    failed: int  # failed trials whose point no later trial completed or pruned
    redone: int  # failed trials whose point a later trial completed or pruned

    @classmethod
    def of(cls, trials: Sequence[FrozenTrial]) -> "TrialCounts":
        states = Counter(t.state for t in trials)
        failed = len(unresolved_failures(trials))
        return cls(states[TrialState.COMPLETE], states[TrialState.PRUNED], failed, states[TrialState.FAIL] - failed)

    def metrics(self) -> dict[str, int]:
        return {
            "trials_complete": self.complete,
            "trials_pruned": self.pruned,
            "trials_fail": self.failed,
            "trials_failed_then_redone": self.redone,
        }


@dataclass(frozen=True)
class Best:
    """The best trial of a single-objective study."""

    number: int
    value: float
    params: dict[str, object]
    run_id: str | None  # its MLflow run; None for a task other than fruitlab's training
    seeded_from: str | None = None  # the finished run a warm-started trial was made from

    def tags(self) -> dict[str, object]:
        """The parent run's tags that name the best configuration (`+key` overrides named as keys) and its run."""
        tags = {"best_trial": self.number, **{f"best.{k.lstrip('+')}": v for k, v in self.params.items()}}
        if run_id := self.run_id or self.seeded_from:
            tags["best_run_id"] = run_id
        return tags


def has_complete_trial(study: optuna.Study) -> bool:
    return bool(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def best_of(study: optuna.Study) -> Best | None:
    """The best complete trial of a single-objective study, as Optuna chooses it; None before one completes."""
    if not has_complete_trial(study):
        return None
    best = study.best_trial
    attrs = best.user_attrs
    return Best(best.number, best.value, dict(best.params), attrs.get(RUN_ID_ATTR), attrs.get(SEEDED_ATTR))


def pareto_front(study: optuna.Study) -> list[int]:
    """The numbers of the trials no other complete trial beats in every objective, in order."""
    return sorted(t.number for t in study.best_trials)


def optimization_results(study: optuna.Study) -> dict | None:
    """optimization_results.yaml as the upstream Optuna sweeper writes it: the best params and value, or with
    several objectives the Pareto front's params and values; None before a trial completes."""
    if not has_complete_trial(study):
        return None
    if len(study.directions) == 1:
        best = study.best_trial
        return {"name": "optuna", "best_params": best.params, "best_value": best.value}
    return {"name": "optuna", "solutions": [{"params": t.params, "values": t.values} for t in study.best_trials]}
