"""fruitlab's TPE: multivariate, group and constant liar on, random start-up trials from the budget, whichever way
TPE was chosen (by default, by name, by the group, by `auto`, by a named sweep); options given always win. Built
from the plan into a real Optuna sampler and read back from it."""

import warnings
from pathlib import Path

import optuna
import pytest

from fruitlab.sweeping.plan import SweepPlan
from fruitlab.sweeping.study import make_sampler, tpe_startup_trials

from .sweep_config import TRAINING, plan_of, sweeper_of, task_config

REPO = Path(__file__).resolve().parents[2]
SAMPLED = ("x=interval(-3,3)",)
MIXED = ("optim=choice(sgd,adam)", "lr=tag(log, interval(1e-4, 1e-1))")


def tpe_of(plan: SweepPlan) -> tuple[int, bool | None, bool, bool]:
    """(n_startup_trials, multivariate, group, constant_liar) of the TPE sampler the plan builds."""
    sampler = make_sampler(plan.sampler, plan.seed, plan.sampler_options)
    assert type(sampler) is optuna.samplers.TPESampler
    return sampler._n_startup_trials, sampler._multivariate, sampler._group, sampler._constant_liar


@pytest.mark.parametrize(
    ("budget", "startup"), [(1, 3), (10, 3), (20, 3), (39, 3), (40, 4), (50, 5), (99, 9), (100, 10), (1000, 10)]
)
def test_start_up_trials_are_a_tenth_of_the_budget_between_3_and_10(budget: int, startup: int):
    assert tpe_startup_trials(budget) == startup


def test_the_default_sampler_is_tpe_with_every_option_on_and_start_up_trials_for_its_budget():
    assert tpe_of(plan_of(*SAMPLED)) == (3, True, True, True)  # n_trials: 20 by default
    assert tpe_of(plan_of(*SAMPLED, n_trials=60)) == (6, True, True, True)
    assert tpe_of(plan_of(*SAMPLED, sampler="tpe", n_trials=200)) == (10, True, True, True)
    # A time budget stops the sweep sooner but leaves its trial budget, which the rule reads (n_trials or 20).
    assert tpe_of(plan_of(*SAMPLED, timeout_s=600)) == tpe_of(plan_of(*SAMPLED))


def test_options_given_win_and_group_follows_multivariate_off():
    given = {"n_startup_trials": 12, "constant_liar": False}
    assert tpe_of(plan_of(*SAMPLED, sampler="tpe", sampler_options=given)) == (12, True, True, False)
    assert tpe_of(plan_of(*SAMPLED, sampler_options={"multivariate": False})) == (3, False, False, True)
    assert tpe_of(plan_of(*SAMPLED, sampler_options={"group": False})) == (3, True, False, True)
    group = {"name": "tpe", "seed": 4, "n_startup_trials": 7, "multivariate": None}  # null: fruitlab's default
    assert tpe_of(plan_of(*SAMPLED, sampler=group)) == (7, True, True, True)


def test_autos_tpe_is_the_same_tpe():
    auto = plan_of(*MIXED, sampler="auto", n_trials=50)
    assert auto.sampler == "tpe"
    assert auto.sampler_options == plan_of(*MIXED, sampler="tpe", n_trials=50).sampler_options
    assert tpe_of(auto) == (5, True, True, True)


def test_several_objectives_get_the_same_tpe_when_it_is_chosen():
    plan = plan_of(*SAMPLED, sampler="tpe", direction=["minimize", "maximize"])
    assert tpe_of(plan) == (3, True, True, True)


def test_building_it_warns_of_nothing_but_a_deprecated_option_given_still_warns():
    plan = plan_of(*MIXED)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Optuna's ExperimentalWarning for group is silenced where it is built
        sampler = make_sampler(plan.sampler, plan.seed, plan.sampler_options)
        study = optuna.create_study(sampler=sampler)
        study.optimize(lambda t: t.suggest_float("lr", 1e-4, 1e-1, log=True), n_trials=5)
    options = {**plan.sampler_options, "consider_endpoints": True}  # the user's choice: Optuna's warning stays
    with pytest.warns(FutureWarning, match="consider_endpoints"):
        make_sampler("tpe", 0, options)


def test_the_named_sweeps_that_sample_with_tpe_get_its_options_and_keep_their_own():
    names = sorted(path.stem for path in (REPO / "sweeps").glob("*.yaml"))
    plans = {name: SweepPlan.of(sweeper_of([f"sweep={name}"]).settings, task_config(TRAINING), []) for name in names}
    tpe = {name: plan for name, plan in plans.items() if plan.sampler == "tpe"}
    assert {"hard_search", "tpe_lr"} <= tpe.keys()
    for plan in tpe.values():
        startup, multivariate, group, liar = tpe_of(plan)
        assert (multivariate, group, liar) == (True, True, True)
        assert startup == (plan.settings.sampler_options or {}).get("n_startup_trials", tpe_startup_trials(plan.budget))


def test_a_seeded_study_samples_the_same_points_twice_past_its_start_up_trials():
    plan = plan_of(*MIXED, n_trials=20)  # 3 start-up trials, then TPE's own

    def sampled() -> list[dict]:
        study = optuna.create_study(sampler=make_sampler(plan.sampler, 7, plan.sampler_options))
        study.optimize(lambda t: (t.suggest_float("lr", 1e-4, 1e-1, log=True) - 0.01) ** 2, n_trials=8)
        return [t.params for t in study.trials]

    assert sampled() == sampled()
