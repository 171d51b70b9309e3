"""A sweep's plan from its settings, the task's config and the command line: no storage, store or process."""

import pytest
from omegaconf import OmegaConf

from fruitlab.errors import ConfigError
from fruitlab.sweeping.objectives import Objective, objectives_of, redirected
from fruitlab.sweeping.settings import SweepSettings

from .sweep_config import TRAINING, plan_of, task_config

TRAINING_CONFIG = task_config(TRAINING)


def test_comma_lists_plan_a_grid_of_every_point_with_the_fixed_overrides_apart():
    plan = plan_of("optim=sgd,adam", "lr=0.1,0.01", "batch_size=64", config=TRAINING_CONFIG)
    assert plan.sampler == "grid" and plan.budget == 4 and len(plan.grid) == 4
    assert plan.fixed == ("batch_size=64",)
    assert plan.objectives == (Objective("val_loss", "minimize"),)
    assert plan.seed == 42  # the run's seed, when the sweep names none
    assert plan.is_training and plan.trained_metric == "val_loss"
    assert plan.study_name.startswith("fruits360-lr+optim-")


def test_a_distribution_plans_a_sampler_with_the_default_budget():
    plan = plan_of("x=interval(-3,3)")
    assert (plan.sampler, plan.grid, plan.budget) == ("tpe", None, 20)
    assert plan.objectives == (Objective("value", "minimize"),)
    assert not plan.is_training
    assert plan_of("x=interval(-3,3)", direction=["minimize", "maximize"]).sampler == "nsga2"


def test_the_same_command_names_the_same_study_and_another_command_another():
    name = plan_of("x=0,1", "n=8").study_name
    assert name == plan_of("n=8", "x=0,1").study_name  # the order of the overrides does not matter
    assert name.startswith("toy-x-")
    assert name != plan_of("x=0,1", "n=9").study_name
    assert name != plan_of("x=0,1", "n=8", direction="maximize").study_name
    assert plan_of("x=0,1", config=task_config(sweep="pca_components")).study_name.startswith("toy-pca_components-")
    assert plan_of("x=0,1", study_name="mine").study_name == "mine"


def test_the_sampler_group_gives_name_seed_and_options_and_its_seed_comes_first():
    group = {"name": "random", "seed": 1, "n_startup_trials": None}
    plan = plan_of("x=interval(0,1)", sampler=group, seed=2)
    assert (plan.sampler, plan.seed, plan.sampler_options) == ("random", 1, {})
    assert plan_of("x=interval(0,1)", sampler="random", seed=2, config=TRAINING_CONFIG).seed == 2
    assert plan_of("x=interval(0,1)").seed is None


@pytest.mark.parametrize(
    ("command", "settings", "message"),
    [
        (["x=0,1"], {"n_jobs": 0}, "hydra.sweeper.n_jobs=0: give how many trials run at once (>= 1)"),
        (["x=0,1"], {"max_failure_rate": 1.5}, "hydra.sweeper.max_failure_rate=1.5: give a fraction in [0, 1]"),
        (["x=0,1"], {"sampler": "bogus"}, "unknown sampler 'bogus'; valid samplers: auto, bruteforce, cmaes, "),
        (["x=0,1"], {"pruner": "mean"}, "unknown pruner 'mean'; valid pruners: hyperband, median, none, sha"),
        (["x=0,1"], {"direction": ["minimize", "minimize"], "pruner": "median"}, "Optuna cannot prune a study with"),
        (["x=interval(0,1)"], {"sampler": "grid"}, "x=interval(0,1) is continuous and cannot be a grid axis"),
        (["x=0,1"], {"study_name": "it's"}, 'study name "it\'s": leave out the quote'),
        (["x=0,1"], {"storage": "optuna.db"}, "hydra.sweeper.storage 'optuna.db' is not a database URL"),
    ],
)
def test_a_bad_setting_is_refused_before_anything_opens(command, settings, message):
    with pytest.raises(ConfigError) as error:
        plan_of(*command, **settings)
    assert str(error.value).startswith(message)


def test_the_sweepers_direction_wins_over_the_tasks_and_every_trial_gets_it():
    settings = SweepSettings(direction="maximize")
    assert objectives_of(settings, TRAINING_CONFIG) == [Objective("val_loss", "maximize")]
    assert redirected(settings, TRAINING_CONFIG) == "maximize"
    plan = plan_of("lr=0.1,0.01", config=TRAINING_CONFIG, direction="maximize")
    assert plan.objectives == (Objective("val_loss", "maximize"),)
    assert plan.task_overrides == ["objective.direction=maximize"]
    assert plan.study_name != plan_of("lr=0.1,0.01", config=TRAINING_CONFIG).study_name  # another study
    assert plan_of("lr=0.1,0.01", config=TRAINING_CONFIG, direction="minimize").task_overrides == []
    assert plan_of("x=0,1", direction="maximize").task_overrides == []  # a task without objective.direction


def test_objectives_name_a_metric_per_direction():
    several = SweepSettings(objectives={"val_acc": "maximize", "latency_b1_p50_ms": "minimize"})
    assert objectives_of(several, TRAINING_CONFIG) == [
        Objective("val_acc", "maximize"),
        Objective("latency_b1_p50_ms", "minimize"),
    ]
    with pytest.raises(ConfigError, match="direction 'up' of val_acc"):
        objectives_of(SweepSettings(objectives={"val_acc": "up"}), TRAINING_CONFIG)


def test_direction_as_upstream_writes_it():
    training = OmegaConf.create({"objective": {"metric": "val_acc", "direction": "maximize"}})
    assert objectives_of(SweepSettings(direction="maximize"), training) == [Objective("val_acc", "maximize")]
    assert redirected(SweepSettings(direction="maximize"), training) is None
    with pytest.raises(ConfigError, match=r"disagrees with hydra\.sweeper\.objectives"):
        objectives_of(SweepSettings(direction="minimize", objectives={"val_acc": "maximize"}), training)
    with pytest.raises(ConfigError, match="name the metric of each direction"):
        objectives_of(SweepSettings(direction=["minimize", "maximize"]), training)
    other_task = OmegaConf.create({"x": 1})
    assert objectives_of(SweepSettings(direction=["minimize", "maximize"]), other_task) == [
        Objective("value_0", "minimize"),
        Objective("value_1", "maximize"),
    ]
    with pytest.raises(ConfigError, match="direction 'up' of value"):
        objectives_of(SweepSettings(direction="up"), other_task)


def test_each_trial_is_told_the_metric_to_report_its_direction_and_the_pruner():
    options = {"n_startup_trials": 2}
    plan = plan_of("lr=interval(0.001,0.1)", config=TRAINING_CONFIG, pruner="median", pruner_options=options)
    identity = plan.trial_identity("sqlite:///optuna.db", 3, threads=2)
    assert (identity.study, identity.number, identity.threads) == (plan.study_name, 3, 2)
    assert (identity.metric, identity.direction) == ("val_loss", "minimize")
    assert (identity.pruner, identity.pruner_options) == ("median", {"n_startup_trials": 2})
    several = plan_of("lr=0.1,0.01", direction=["minimize", "maximize"]).trial_identity("sqlite:///o.db", 0)
    assert (several.metric, several.direction, several.prunes) == (None, None, False)  # Optuna reports one value
