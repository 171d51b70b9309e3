"""Samplers and pruners by name with their options: the Optuna classes they build, the rule of `sampler=auto`,
one-line refusals of bad options before anything opens, and successive halving pruning a bad trial in a real
in-memory study."""

from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from fruitlab.config import compose_config
from fruitlab.errors import ConfigError
from fruitlab.sweeping.identity import TrialIdentity
from fruitlab.sweeping.plan import SweepPlan
from fruitlab.sweeping.study import make_pruner, make_sampler

from .sweep_config import TRAINING, plan_of, sweeper_of, task_config

REPO = Path(__file__).resolve().parents[2]
NUMERIC = ("lr=tag(log, interval(1e-4, 1e-1))", "width=int(interval(8, 64))")
MIXED = ("optim=choice(sgd,adam)", "lr=tag(log, interval(1e-4, 1e-1))")
HALVING = {"min_resource": 1, "reduction_factor": 2, "min_early_stopping_rate": 0, "bootstrap_count": 0}
TPE = {"n_startup_trials": 5, "multivariate": True, "group": True, "constant_liar": False}
FRUITLAB_TPE = {"multivariate": True, "group": True, "constant_liar": True, "n_startup_trials": 3}  # for 20 trials


def test_successive_halving_is_optunas_asynchronous_pruner_with_the_given_options():
    pruner = make_pruner("successive_halving", HALVING)
    assert type(pruner) is optuna.pruners.SuccessiveHalvingPruner
    assert (pruner._min_resource, pruner._reduction_factor) == (1, 2)
    assert type(make_pruner("successive_halving", {})) is optuna.pruners.SuccessiveHalvingPruner
    assert type(make_pruner("hyperband", {"min_resource": 1, "max_resource": 4})) is optuna.pruners.HyperbandPruner


def test_tpe_takes_multivariate_group_constant_liar_and_its_start_up_trials():
    sampler = make_sampler("tpe", 1, TPE)
    assert type(sampler) is optuna.samplers.TPESampler
    assert (sampler._n_startup_trials, sampler._multivariate, sampler._group, sampler._constant_liar) == (
        5,
        True,
        True,
        False,
    )
    plan = plan_of(*MIXED, sampler="tpe", sampler_options=TPE)
    assert (plan.sampler, plan.sampler_options) == ("tpe", TPE)


def test_auto_picks_gp_for_a_small_numeric_space_and_tpe_otherwise():
    plan = plan_of(*NUMERIC, sampler="auto", n_trials=30)
    assert (plan.sampler, plan.sampler_options) == ("gp", {})
    assert type(make_sampler(plan.sampler, 0, plan.sampler_options)) is optuna.samplers.GPSampler

    categorical = plan_of(*MIXED, sampler="auto", sampler_options={"n_startup_trials": 4})
    assert categorical.sampler == "tpe"
    assert categorical.sampler_options == {**FRUITLAB_TPE, "n_startup_trials": 4}
    assert type(make_sampler(categorical.sampler, 0, categorical.sampler_options)) is optuna.samplers.TPESampler

    assert plan_of("x=0,1", "y=2,3", sampler="auto").sampler == "tpe"  # comma lists are categorical
    assert plan_of(*NUMERIC, sampler="auto", n_trials=251).sampler == "tpe"  # past GP's budget
    extended = plan_of(*NUMERIC, sampler="auto", custom_search_space="toy.more")  # may add conditional params
    assert extended.sampler == "tpe"
    two = ["minimize", "minimize"]
    assert plan_of(*NUMERIC, sampler="auto", direction=two).sampler == "gp"
    assert plan_of(*MIXED, sampler="auto", direction=two).sampler == "tpe"
    assert plan_of(*MIXED, sampler="auto", direction=two, n_trials=1001).sampler == "nsga2"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"pruner": "successive_halving", "pruner_options": {"reduction_factor": 1}},
            "hydra.sweeper.pruner_options.reduction_factor=1: pruner successive_halving needs an integer >= 2",
        ),
        (
            {"pruner": "successive_halving", "pruner_options": {"min_resource": 0}},
            "hydra.sweeper.pruner_options.min_resource=0: pruner successive_halving needs an integer >= 1 or auto",
        ),
        (
            {"pruner": "successive_halving", "pruner_options": {"min_early_stopping_rate": 1.5}},
            "hydra.sweeper.pruner_options.min_early_stopping_rate=1.5: pruner successive_halving needs an integer >= 0",
        ),
        (
            {"pruner": "successive_halving", "pruner_options": {"bootstrap_count": 2}},
            "hydra.sweeper.pruner_options.bootstrap_count=2: successive_halving needs an integer min_resource",
        ),
        (
            {"pruner": "successive_halving", "pruner_options": {"max_resource": 4}},
            "hydra.sweeper.pruner_options.max_resource: pruner successive_halving takes bootstrap_count, "
            "min_early_stopping_rate, min_resource, reduction_factor",
        ),
        (
            {"pruner": "median", "pruner_options": {"n_warmup_steps": -1}},
            "hydra.sweeper.pruner_options of pruner median: Number of warmup steps cannot be negative",
        ),
        (
            {"sampler": "tpe", "sampler_options": {"n_startup_trials": -1}},
            "hydra.sweeper.sampler_options.n_startup_trials=-1: sampler tpe needs an integer >= 0",
        ),
        (
            {"sampler": "tpe", "sampler_options": {"constant_liar": "yes"}},
            "hydra.sweeper.sampler_options.constant_liar=yes: sampler tpe needs true or false",
        ),
        (
            {"sampler": "tpe", "sampler_options": {"group": True, "multivariate": False}},
            "hydra.sweeper.sampler_options.group=true: tpe needs multivariate=true with it",
        ),
        (
            {"sampler": "auto", "sampler_options": {"group": True}},
            "hydra.sweeper.sampler_options.group: sampler gp takes ",
        ),
    ],
)
def test_a_bad_option_is_refused_in_one_line_before_anything_opens(settings: dict[str, Any], message: str):
    with pytest.raises(ConfigError) as error:
        plan_of(*NUMERIC, **settings)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_successive_halving_prunes_a_clearly_bad_trial_at_its_first_rung():
    study = optuna.create_study(pruner=make_pruner("successive_halving", HALVING))

    def run(values: list[float]) -> tuple[TrialState, int]:
        """Report `values` at steps 0, 1, ... until the pruner stops the trial; its state and last step."""
        trial = study.ask()
        for step, value in enumerate(values):
            trial.report(value, step)
            if trial.should_prune():
                study.tell(trial, state=TrialState.PRUNED)
                return TrialState.PRUNED, step
        study.tell(trial, values[-1])
        return TrialState.COMPLETE, len(values) - 1

    assert run([0.5, 0.2, 0.1, 0.1]) == (TrialState.COMPLETE, 3)
    assert run([0.6, 0.15, 0.1, 0.1]) == (TrialState.COMPLETE, 3)
    # The first rung is step min_resource * reduction_factor ** min_early_stopping_rate = 1: before it, no verdict.
    assert run([9.0, 9.0, 9.0, 9.0]) == (TrialState.PRUNED, 1)
    assert run([0.4, 0.1, 0.05, 0.01]) == (TrialState.COMPLETE, 3)


def test_a_trial_rebuilds_the_successive_halving_pruner_from_its_identity():
    plan = plan_of(*NUMERIC, config=task_config(TRAINING), pruner="successive_halving", pruner_options=HALVING)
    sent = plan.trial_identity("sqlite:///optuna.db", 3)
    received = TrialIdentity.of(compose_config(["model=lenet", *sent.overrides()]))
    assert (received.pruner, received.pruner_options) == ("successive_halving", HALVING)
    assert type(make_pruner(received.pruner, received.pruner_options)) is optuna.pruners.SuccessiveHalvingPruner


def test_the_upstream_sampler_group_takes_tpes_options_and_auto():
    options = ["n_startup_trials=5", "multivariate=true", "group=true", "constant_liar=false", "seed=1"]
    sweeper = sweeper_of(["hydra/sweeper/sampler=tpe", *(f"hydra.sweeper.sampler.{o}" for o in options)])
    plan = SweepPlan.of(sweeper.settings, task_config(), [])
    assert (plan.sampler, plan.seed) == ("tpe", 1)
    assert {k: plan.sampler_options[k] for k in TPE} == TPE
    sampler = make_sampler(plan.sampler, plan.seed, plan.sampler_options)
    assert (sampler._n_startup_trials, sampler._group, sampler._constant_liar) == (5, True, False)

    auto = sweeper_of(["hydra/sweeper/sampler=auto"]).settings.sampler
    assert (auto["name"], auto["seed"]) == ("auto", None)


@pytest.mark.parametrize("name", sorted(path.stem for path in (REPO / "sweeps").glob("*.yaml")))
def test_every_named_sweeps_sampler_and_pruner_options_pass_the_plan(name: str):
    SweepPlan.of(sweeper_of([f"sweep={name}"]).settings, task_config(TRAINING), [])
