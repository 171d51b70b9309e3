"""What a study's trials add up to: counts, the best configuration, the Pareto front and the results file's
content, read from real in-memory studies."""

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from fruitlab.sweeping.results import Best, TrialCounts, best_of, optimization_results, pareto_front

LR = {"lr": FloatDistribution(1e-4, 1.0), "+momentum": FloatDistribution(0.0, 1.0)}


def trial(
    lr: float, value: float | list[float] | None, state: TrialState = TrialState.COMPLETE, **attrs
) -> FrozenTrial:
    values = None if value is None else value if isinstance(value, list) else [value]
    params = {"lr": lr, "+momentum": 0.9}
    return create_trial(state=state, values=values, params=params, distributions=LR, user_attrs=attrs)


def study_of(*trials: FrozenTrial, directions: tuple[str, ...] = ("minimize",)) -> optuna.Study:
    study = optuna.create_study(directions=list(directions))
    study.add_trials(trials)
    return study


def test_counts_tell_a_failure_whose_point_later_completed_from_one_still_failed():
    study = study_of(
        trial(0.1, None, TrialState.FAIL),  # its point completed later: redone
        trial(0.5, None, TrialState.FAIL),
        trial(0.1, 0.3),
        trial(0.01, 0.2),
        trial(0.2, None, TrialState.PRUNED),
    )
    counts = TrialCounts.of(study.trials)
    assert counts == TrialCounts(complete=2, pruned=1, failed=1, redone=1)
    assert counts.metrics() == {
        "trials_complete": 2,
        "trials_pruned": 1,
        "trials_fail": 1,
        "trials_failed_then_redone": 1,
    }


def test_the_best_configuration_is_the_complete_trial_with_the_best_value_in_the_studys_direction():
    trials = (
        trial(0.1, 0.5, mlflow_run_id="a"),
        trial(0.01, 0.2, mlflow_run_id="b"),
        trial(0.3, None, TrialState.FAIL),
    )
    best = best_of(study_of(*trials))
    assert best == Best(1, 0.2, {"lr": 0.01, "+momentum": 0.9}, "b")
    assert best.tags() == {"best_trial": 1, "best.lr": 0.01, "best.momentum": 0.9, "best_run_id": "b"}
    assert best_of(study_of(*trials, directions=("maximize",))).run_id == "a"


def test_a_warm_started_best_names_the_run_it_was_made_from():
    seeded = trial(0.001, 0.1, warm_start_run_id="w")
    best = best_of(study_of(trial(0.1, 0.5, mlflow_run_id="a"), seeded))
    assert (best.run_id, best.seeded_from) == (None, "w")  # no model of this sweep to register
    assert best.tags()["best_run_id"] == "w"


def test_a_study_without_a_complete_trial_has_no_best_and_no_results():
    study = study_of(trial(0.1, None, TrialState.FAIL), trial(0.2, None, TrialState.PRUNED))
    assert best_of(study) is None
    assert optimization_results(study) is None


def test_the_results_file_holds_the_best_params_and_value_as_upstream_writes_it():
    study = study_of(trial(0.1, 0.5), trial(0.01, 0.2))
    assert optimization_results(study) == {
        "name": "optuna",
        "best_params": {"lr": 0.01, "+momentum": 0.9},
        "best_value": 0.2,
    }


def test_several_objectives_give_the_pareto_front_and_its_solutions():
    accuracy_and_latency = ("maximize", "minimize")
    study = study_of(
        trial(0.1, [0.9, 5.0]),
        trial(0.2, [0.8, 2.0]),
        trial(0.3, [0.7, 6.0]),  # beaten by trial 0 in both
        directions=accuracy_and_latency,
    )
    assert pareto_front(study) == [0, 1]
    solutions = optimization_results(study)["solutions"]
    assert sorted(s["values"] for s in solutions) == [[0.8, 2.0], [0.9, 5.0]]
