"""The hard study's plan: which sweeps it runs with which overrides, the time a search has left, the final
training's budget and starting point, and a winner's settings rebuilt from its recorded config."""

from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from fruitlab.errors import ConfigError
from fruitlab.studies.hard_plan import (
    HARD,
    NO_CHAMPION,
    PAPER,
    PAPER_POINT,
    SELECTION,
    STRATEGY_NAMES,
    Part,
    Plan,
    baseline_parts,
    check_overrides,
    check_strategies,
    common_overrides,
    final_part,
    max_time,
    recorded_overrides,
    run_overrides,
    study_name,
    study_runs,
)

COMMON = [*SELECTION, "tracking.experiment=hard", "tracking.uri=sqlite:///s.db", "data.root=DIR"]
SWEEP = Path(__file__).parents[2] / "sweeps" / "hard_search.yaml"


def plan(**changes: object) -> Plan:
    settings = {
        "models": ["lenet", "vgg1"],
        "seeds": [1, 2],
        "components": 170,
        "baseline_epochs": 1,
        "budget_s": 300.0,
        "max_trials": 50,
    }
    return Plan(**{**settings, **changes})


def keys(overrides: tuple[str, ...] | list[str]) -> list[str]:
    return [override.split("=", 1)[0] for override in overrides]


def test_baselines_train_every_model_and_the_pca_ffnn_with_the_papers_settings_at_the_searchs_checks() -> None:
    models, pca = baseline_parts(plan(), "hard", COMMON)
    assert (models.label, models.study_name, models.budget_s) == ("baselines", "hard-baselines", None)
    assert {HARD, "model=lenet,vgg1", "seed=1,2", "trainer.max_epochs=1", *PAPER, *COMMON} <= set(models.overrides)
    assert "objective.checks_per_epoch=4" in models.overrides  # a warm start reads their curves step for step
    assert {"data=fruits360_hard_pca", "model=ffnn", "data.n_components=170", "trainer.max_epochs=10"} <= set(
        pca.overrides
    )
    assert NO_CHAMPION in models.overrides and NO_CHAMPION in pca.overrides
    assert len(set(keys(models.overrides))) == len(models.overrides)  # no key set twice


def test_a_baseline_left_out_has_no_part() -> None:
    assert [part.label for part in baseline_parts(plan(components=None), "hard", COMMON)] == ["baselines"]
    assert [part.label for part in baseline_parts(plan(models=[]), "hard", COMMON)] == ["PCA baseline"]


def test_every_strategy_runs_with_every_seed_seed_by_seed_and_only_train_longer_has_no_search() -> None:
    runs = study_runs(plan(), "hard", COMMON)
    assert [(run.strategy, run.seed) for run in runs] == [(name, seed) for seed in (1, 2) for name in STRATEGY_NAMES]
    assert [run.strategy for run in runs if run.search is None] == ["train_longer", "train_longer"]
    names = [run.final_study for run in runs] + [run.search.study_name for run in runs if run.search]
    assert len(set(names)) == len(names) == 18
    assert all(name.startswith("hard-") and " " not in name for name in names)


def test_a_search_has_its_share_of_the_budget_two_one_thread_workers_and_one_epoch_trials_at_4_checks() -> None:
    run = next(run for run in study_runs(plan(), "hard", COMMON) if run.strategy == "tpe")
    part = run.search
    assert part.budget_s == pytest.approx(300 * 0.4)
    assert {HARD, "sweep=hard_search", "trainer.max_epochs=1", "objective.checks_per_epoch=4", "seed=1"} <= set(
        part.overrides
    )
    assert {"hydra/launcher=joblib", "hydra.sweeper.n_jobs=2", "threads=1", "hydra.sweeper.n_trials=50"} <= set(
        part.overrides
    )
    assert set(COMMON) <= set(part.overrides) and NO_CHAMPION in part.overrides
    alone = next(run for run in study_runs(plan(workers=1), "hard", COMMON) if run.strategy == "tpe").search
    assert not any("joblib" in override or "n_jobs" in override for override in alone.overrides)


def test_the_warm_search_starts_from_the_baselines_and_tries_the_papers_point_first() -> None:
    warm = next(run for run in study_runs(plan(), "hard", COMMON) if run.strategy == "tpe_warm").search
    assert "hydra.sweeper.warm_start=[hard-baselines]" in warm.overrides
    enqueue = next(o for o in warm.overrides if o.startswith("hydra.sweeper.enqueue="))
    assert enqueue == "hydra.sweeper.enqueue=[{model: vgg3_bn, optim: adam, lr: 0.001, batch_size: 64, augment: none}]"
    cold = next(run for run in study_runs(plan(), "hard", COMMON) if run.strategy == "tpe").search
    assert not any(o.startswith(("hydra.sweeper.warm_start", "hydra.sweeper.enqueue")) for o in cold.overrides)


def test_the_papers_point_is_a_point_of_the_search_space() -> None:
    params = yaml.safe_load(SWEEP.read_text())["hydra"]["sweeper"]["params"]
    assert set(PAPER_POINT) == set(params)  # an enqueued point names every swept key
    assert PAPER_POINT["model"] in params["model"] and PAPER_POINT["optim"] in params["optim"]


def test_grid_and_random_search_without_pruning() -> None:
    searches = {run.strategy: run.search for run in study_runs(plan(), "hard", COMMON) if run.search}
    assert {"optim=sgd,adam,adadelta", "lr=0.1,0.01", "model=vgg3_bn", "hydra.sweeper.pruner=none"} <= set(
        searches["grid"].overrides
    )
    random = {"hydra.sweeper.sampler=random", "hydra.sweeper.sampler_options=null", "hydra.sweeper.pruner=none"}
    assert {*random, "hydra.sweeper.pruner_options=null"} <= set(searches["random"].overrides)


def test_the_final_training_gets_what_is_left_of_the_budget_from_the_winners_checkpoint() -> None:
    run = next(run for run in study_runs(plan(), "hard", COMMON) if run.strategy == "grid")
    part = final_part(plan(), COMMON, run, ["lr=0.01", "optim=adam"], "/c/epoch=0-step=80.ckpt", 130.0)
    assert part.study_name == run.final_study and part.budget_s is None
    assert "+trainer.max_time='00:00:02:25'" in part.overrides  # 300 - 130 - 25 s for the start and the test
    assert "model.init_from='/c/epoch=0-step=80.ckpt'" in part.overrides
    assert {"model=vgg3_bn", "lr=0.01", "optim=adam", "seed=1", "early_stopping.enabled=true"} <= set(part.overrides)
    assert {"early_stopping.monitor=val_acc", "early_stopping.mode=max", "objective.checks_per_epoch=4"} <= set(
        part.overrides
    )
    assert not any(o.startswith(("sweep=", "hydra.sweeper.")) and o != NO_CHAMPION for o in part.overrides)
    assert not any("," in o for o in part.overrides if not o.startswith("hydra.sweeper.enqueue"))


def test_train_longer_trains_the_papers_configuration_from_scratch_for_the_whole_budget() -> None:
    run = next(run for run in study_runs(plan(), "hard", COMMON) if run.strategy == "train_longer")
    part = final_part(plan(), COMMON, run, [], None, 0.0)
    assert {"model=vgg3_bn", *PAPER, "+trainer.max_time='00:00:04:35'"} <= set(part.overrides)
    assert not any(o.startswith("model.init_from") for o in part.overrides)


def test_a_searched_setting_replaces_the_strategys_fixed_one() -> None:
    run = next(run for run in study_runs(plan(), "hard", COMMON) if run.strategy == "grid")
    part = final_part(plan(), COMMON, run, ["model=vgg1"], None, 100.0)
    assert "model=vgg1" in part.overrides and "model=vgg3_bn" not in part.overrides
    assert keys(part.overrides).count("data") == 1


def test_max_time_is_lightnings_duration_and_never_zero() -> None:
    assert max_time(3725.9) == "'00:01:02:05'"
    assert max_time(-40) == "'00:00:00:01'"


def test_study_names_are_distinct_and_follow_the_experiment() -> None:
    labels = ["baselines", "pca", "tpe search seed 1", "tpe final seed 1"]
    names = [study_name("fruits360-hard", label) for label in labels]
    assert len(set(names)) == len(labels)
    assert all(name.startswith("fruits360-hard-") and " " not in name for name in names)


def test_a_search_runs_again_with_the_time_it_has_left_and_a_final_training_without_a_limit() -> None:
    search = Part("random search", "hard-random", ("sweep=hard_search",), budget_s=120.0)
    assert run_overrides(search, 50.4)[-2:] == ("hydra.sweeper.study_name=hard-random", "hydra.sweeper.timeout_s=70")
    assert run_overrides(search, 900.0)[-1] == "hydra.sweeper.timeout_s=0"
    final = Part("final", "hard-final", ("model=lenet",))
    assert run_overrides(final, 900.0) == ("model=lenet", "hydra.sweeper.study_name=hard-final")


@pytest.mark.parametrize(
    "override",
    ["model=lenet", "+seed=3", "data=fruits360", "~sweep", "trainer.max_epochs=2", "objective.checks_per_epoch=2"],
)
def test_overrides_the_study_sets_are_refused(override: str) -> None:
    with pytest.raises(ConfigError, match="is set by the study"):
        check_overrides(["data.root=DIR", override])


def test_an_unknown_strategy_is_refused_with_the_known_ones() -> None:
    check_strategies(["tpe", "grid"])
    with pytest.raises(ConfigError, match="--strategies hyperband: choose among train_longer,grid,random,tpe,tpe_warm"):
        check_strategies(["tpe", "hyperband"])


def test_every_part_gets_the_resolved_store_not_the_users_spelling_of_it() -> None:
    given = ["tracking.uri=relative.db", "tracking.experiment=mine", "data.root=DIR", "batch_size=32"]
    common = common_overrides(given, "mine", "sqlite:////abs/relative.db")
    assert common == [
        *SELECTION,
        "tracking.experiment=mine",
        "tracking.uri=sqlite:////abs/relative.db",
        "data.root=DIR",
        "batch_size=32",
    ]
    check_overrides(given)  # none of these is the study's


def test_searched_settings_come_from_the_recorded_config_groups_by_their_option() -> None:
    recorded = OmegaConf.create(
        {
            "model": {"name": "vgg3_bn", "dropout": None},
            "optim": {"name": "adamw", "weight_decay": 1.2345678e-05},
            "lr": 0.0031622776601683794,
            "batch_size": 64,
            "data": {"image_size": 48},
            "channels_last": False,
        }
    )
    searched = ["model", "model.dropout", "optim", "optim.weight_decay", "lr", "batch_size", "data.image_size"]
    assert recorded_overrides(recorded, [*searched, "channels_last"]) == [
        "model=vgg3_bn",
        "model.dropout=null",
        "optim=adamw",
        "optim.weight_decay=1.2345678e-05",
        "lr=0.0031622776601683794",  # every digit the trial trained with
        "batch_size=64",
        "data.image_size=48",
        "channels_last=false",
    ]
    with pytest.raises(ConfigError, match="augment"):
        recorded_overrides(recorded, ["augment"])
    with pytest.raises(ConfigError, match="data"):
        recorded_overrides(recorded, ["data"])  # a node that is not a config group's option
