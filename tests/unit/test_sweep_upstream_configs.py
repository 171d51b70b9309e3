"""Configs written for the upstream Optuna sweeper (hydra-optuna-sweeper): its sampler group and options, its
sampler names and `_target_`s read into fruitlab's sampler, seed and options (pure), the same through Hydra's
composition, and a launcher that runs jobs in process running n_jobs > 1 one at a time."""

import logging
from typing import Any

import pytest
from hydra._internal.core_plugins.basic_launcher import BasicLauncher

from fruitlab.errors import ConfigError
from fruitlab.sweeping.plan import SweepPlan
from fruitlab.sweeping.sampler_spec import RENAMED_OPTIONS, SamplerSpec
from fruitlab.sweeping.settings import SAMPLER_GROUP, SweepSettings
from fruitlab.sweeping.study import SAMPLERS, keywords
from hydra_plugins.fruitlab_optuna_sweeper.sweeper import runnable

from .sweep_config import plan_of, sweeper_of

SAMPLED = ("x=interval(-3,3)",)


@pytest.mark.parametrize(
    ("sampler", "options", "spec"),
    [
        (None, None, SamplerSpec(None, None, {})),
        ("tpe", {"n_startup_trials": 4}, SamplerSpec("tpe", None, {"n_startup_trials": 4})),
        ("nsgaii", None, SamplerSpec("nsga2", None, {})),
        # the group's entry: null options are the sampler's defaults; sampler_options add to it and win
        (
            {"name": "tpe", "seed": 1, "n_startup_trials": 5, "multivariate": None, "group": None},
            {"n_startup_trials": 6},
            SamplerSpec("tpe", 1, {"n_startup_trials": 6}),
        ),
        # no name: fruitlab picks the sampler (upstream's default group entry is tpe's, whose options it keeps)
        ({"name": None, "seed": 123, "n_startup_trials": 5}, None, SamplerSpec(None, 123, {"n_startup_trials": 5})),
        # upstream's MOTPE is Optuna 5's TPE, its n_ehvi_candidates TPE's n_ei_candidates
        ({"name": "motpe", "seed": 2, "n_ehvi_candidates": 12}, None, SamplerSpec("tpe", 2, {"n_ei_candidates": 12})),
        # upstream's own configs: a _target_ (Hydra's _partial_ of its grid left out)
        (
            {"_target_": "optuna.samplers.TPESampler", "seed": 3, "consider_endpoints": True},
            None,
            SamplerSpec("tpe", 3, {"consider_endpoints": True}),
        ),
        ({"_target_": "optuna.samplers.GridSampler", "_partial_": True}, None, SamplerSpec("grid", None, {})),
        ({"name": "nsgaii", "_target_": "optuna.samplers.NSGAIISampler"}, None, SamplerSpec("nsga2", None, {})),
    ],
)
def test_an_upstream_sampler_config_reads_as_fruitlabs_sampler_seed_and_options(
    sampler: Any, options: dict | None, spec: SamplerSpec
):
    assert SamplerSpec.of(sampler, options) == spec


@pytest.mark.parametrize(
    ("sampler", "message"),
    [
        (
            {"_target_": "optuna.samplers.NSGAIIISampler"},
            "hydra.sweeper.sampler._target_=optuna.samplers.NSGAIIISampler: fruitlab builds "
            "optuna.samplers.TPESampler, optuna.samplers.MOTPESampler, optuna.samplers.RandomSampler, ",
        ),
        (
            {"name": "random", "_target_": "optuna.samplers.TPESampler"},
            "hydra.sweeper.sampler names two samplers, random and _target_=optuna.samplers.TPESampler: give one",
        ),
        (
            {"name": "cmaes", "independent_sampler": {"_target_": "optuna.samplers.RandomSampler"}},
            "hydra.sweeper.sampler.independent_sampler={'_target_': 'optuna.samplers.RandomSampler'}: this option "
            "takes a Python object, which fruitlab does not build from a config; leave it null",
        ),
        (["tpe"], "hydra.sweeper.sampler=['tpe']: give a sampler's name or a mapping {name: tpe}"),
    ],
)
def test_a_sampler_config_fruitlab_cannot_read_is_refused_in_one_line(sampler: Any, message: str):
    with pytest.raises(ConfigError) as error:
        plan_of(*SAMPLED, sampler=sampler)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def plan_composed(*overrides: str) -> SweepPlan:
    """The plan of fruitlab's config composed with `overrides`, sampling x."""
    return plan_of(*SAMPLED, **vars(sweeper_of(list(overrides)).settings))


def test_the_sampler_options_work_without_choosing_the_group_as_upstreams_default_tpe():
    plan = plan_composed("hydra.sweeper.sampler.seed=1", "hydra.sweeper.sampler.n_startup_trials=5")
    assert (plan.sampler, plan.seed, plan.sampler_options["n_startup_trials"]) == ("tpe", 1, 5)
    grid = plan_of("x=0,1", **vars(sweeper_of(["hydra.sweeper.sampler.seed=1"]).settings))
    assert (grid.sampler, grid.seed) == ("grid", 1)  # comma lists stay a grid, the seed read


def test_every_upstream_group_entry_and_its_options_compose_into_a_plan():
    nsga2 = plan_composed("hydra/sweeper/sampler=nsgaii", "hydra.sweeper.sampler.population_size=10")
    assert (nsga2.sampler, nsga2.sampler_options) == ("nsga2", {"population_size": 10})
    motpe = plan_composed("hydra/sweeper/sampler=motpe", "hydra.sweeper.sampler.n_ehvi_candidates=12")
    assert (motpe.sampler, motpe.sampler_options["n_ei_candidates"]) == ("tpe", 12)
    tpe = plan_composed("hydra/sweeper/sampler=tpe", "hydra.sweeper.sampler.consider_endpoints=true")
    assert tpe.sampler_options["consider_endpoints"] is True
    qmc = plan_composed("hydra/sweeper/sampler=qmc", "hydra.sweeper.sampler.qmc_type=halton")
    assert (qmc.sampler, qmc.sampler_options) == ("qmc", {"qmc_type": "halton"})
    for name in ("random", "grid", "cmaes", "gp", "bruteforce"):
        settings = sweeper_of([f"hydra/sweeper/sampler={name}"]).settings
        assert SamplerSpec.of(settings.sampler, None) == SamplerSpec(name, None, {})
    assert plan_composed("+hydra.sweeper.sampler._target_=optuna.samplers.RandomSampler").sampler == "random"


def test_n_jobs_on_a_launcher_that_runs_jobs_in_process_runs_one_at_a_time_with_one_warning(caplog):
    settings = SweepSettings(n_jobs=3)
    with caplog.at_level(logging.WARNING):
        assert runnable(settings, BasicLauncher()).n_jobs == 1
    (record,) = caplog.records
    assert record.getMessage() == (
        "hydra.sweeper.n_jobs=3: Hydra's BasicLauncher runs every job in the sweeper's process, so trials run one "
        "at a time (for 3 at once: hydra/launcher=joblib or hydra/launcher=submitit_local, pip install "
        "fruitlab[launchers])"
    )
    assert runnable(SweepSettings(n_jobs=1), BasicLauncher()).n_jobs == 1


def test_every_group_entrys_options_are_ones_its_sampler_takes():
    for name, options in SAMPLER_GROUP.items():
        sampler = SamplerSpec.of({"name": name}, None).name
        if sampler in ("grid", "auto"):  # a grid is enumerated by fruitlab; auto picks a sampler
            assert options == ()
            continue
        renamed = RENAMED_OPTIONS.get(name, {})
        assert {renamed.get(o, o) for o in options} <= set(keywords(SAMPLERS[sampler])), name
