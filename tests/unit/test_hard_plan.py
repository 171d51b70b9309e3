"""The hard study's plan: which sweeps it runs with which overrides, the time a strategy has left, the best
strategy and the retrained configuration, rebuilt from the best trial's recorded config."""

import pytest
from omegaconf import OmegaConf

from fruitlab.errors import ConfigError
from fruitlab.studies.hard_plan import (
    HARD,
    NO_CHAMPION,
    PAPER,
    SELECTION,
    STRATEGIES,
    Part,
    Plan,
    baseline_parts,
    best_strategy,
    check_overrides,
    common_overrides,
    recorded_overrides,
    retrained_part,
    run_overrides,
    strategy_parts,
    strategy_seconds,
    study_name,
)

COMMON = [*SELECTION, "tracking.experiment=hard", "tracking.uri=sqlite:///s.db", "data.root=DIR"]


def plan(**changes: object) -> Plan:
    settings = {
        "models": ["lenet", "vgg1"],
        "seeds": [1, 2],
        "components": 170,
        "baseline_epochs": 1,
        "search_epochs": 4,
        "strategy_s": 600.0,
        "max_trials": 50,
    }
    return Plan(**{**settings, **changes})


def keys(overrides: tuple[str, ...] | list[str]) -> list[str]:
    return [override.split("=", 1)[0] for override in overrides]


def test_baselines_train_every_model_and_the_pca_ffnn_with_the_papers_settings_and_each_seed() -> None:
    models, pca = baseline_parts(plan(), "hard", COMMON)
    assert (models.label, models.study_name, models.budget_s) == ("baselines", "hard-baselines", None)
    assert {HARD, "model=lenet,vgg1", "seed=1,2", "trainer.max_epochs=1", *PAPER, *COMMON} <= set(models.overrides)
    assert {"data=fruits360_hard_pca", "model=ffnn", "data.n_components=170", "trainer.max_epochs=10"} <= set(
        pca.overrides
    )
    assert NO_CHAMPION in models.overrides and NO_CHAMPION in pca.overrides
    assert len(set(keys(models.overrides))) == len(models.overrides)  # no key set twice


def test_a_baseline_left_out_has_no_part() -> None:
    assert [part.label for part in baseline_parts(plan(components=None), "hard", COMMON)] == ["baselines"]
    assert [part.label for part in baseline_parts(plan(models=[]), "hard", COMMON)] == ["PCA baseline"]


def test_each_strategy_searches_for_its_share_of_the_budget_in_quarter_epochs() -> None:
    parts = strategy_parts(plan(), "hard", COMMON)
    assert [part.label for part in parts] == list(STRATEGIES)
    assert [part.study_name for part in parts] == [
        "hard-tpe-hyperband",
        "hard-random-search",
        "hard-optimizer-x-lr-grid",
    ]
    for part, strategy in zip(parts, STRATEGIES.values(), strict=True):
        assert part.budget_s == 600.0
        assert {*strategy.space, *strategy.fixed, "hydra.sweeper.n_trials=50", NO_CHAMPION, *COMMON} <= set(
            part.overrides
        )
        assert {"trainer.max_epochs=4", "+trainer.limit_train_batches=0.25"} <= set(part.overrides)
    whole_epochs = strategy_parts(plan(search_epoch_fraction=1.0), "hard", COMMON)
    assert not any("limit_train_batches" in override for part in whole_epochs for override in part.overrides)
    assert strategy_seconds(90) == pytest.approx(90 * 60 * 0.12)


def test_study_names_are_distinct_and_follow_the_experiment() -> None:
    labels = ["baselines", "pca", *STRATEGIES, "best retrained"]
    names = [study_name("fruits360-hard", label) for label in labels]
    assert len(set(names)) == len(labels)
    assert all(name.startswith("fruits360-hard-") and " " not in name and "+" not in name for name in names)


def test_a_strategy_runs_again_with_the_time_it_has_left_and_a_baseline_without_a_limit() -> None:
    strategy = Part("random search", "hard-random-search", ("sweep=hard_search",), budget_s=600.0)
    assert run_overrides(strategy, 250.4)[-2:] == (
        "hydra.sweeper.study_name=hard-random-search",
        "hydra.sweeper.timeout_s=350",
    )
    assert run_overrides(strategy, 900.0)[-1] == "hydra.sweeper.timeout_s=0"
    baseline = Part("baselines", "hard-baselines", ("model=lenet",))
    assert run_overrides(baseline, 900.0) == ("model=lenet", "hydra.sweeper.study_name=hard-baselines")


@pytest.mark.parametrize("override", ["model=lenet", "+seed=3", "data=fruits360", "~sweep", "trainer.max_epochs=2"])
def test_overrides_the_study_sets_are_refused(override: str) -> None:
    with pytest.raises(ConfigError, match="is set by the study"):
        check_overrides(["data.root=DIR", override])


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


def test_the_best_strategy_has_the_highest_validation_accuracy_and_the_first_of_a_tie() -> None:
    assert best_strategy({"a": 0.80, "b": None, "c": 0.91, "d": 0.91}) == "c"
    with pytest.raises(ConfigError, match="no search strategy finished a trial"):
        best_strategy({"a": None, "b": None})


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
    searched = [
        "model",
        "model.dropout",
        "optim",
        "optim.weight_decay",
        "lr",
        "batch_size",
        "data.image_size",
        "channels_last",
    ]
    assert recorded_overrides(recorded, searched) == [
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


def test_the_grid_winner_is_retrained_with_its_fixed_settings_and_each_seed_without_its_search_space() -> None:
    grid = STRATEGIES["optimizer x lr grid"]
    part = retrained_part(plan(), "hard", COMMON, grid, ["optim=adam", "lr=0.01"])
    assert part.study_name == "hard-best-retrained" and part.budget_s is None
    assert part.overrides[0] == HARD and keys(part.overrides).count("data") == 1
    assert {"model=vgg3_bn", "data.image_size=32", "trainer.max_epochs=4", "+trainer.limit_train_batches=0.25"} <= set(
        part.overrides
    )
    assert set(COMMON) <= set(part.overrides)
    assert part.overrides[-3:] == ("optim=adam", "lr=0.01", "seed=1,2")
    assert not any("," in o for o in part.overrides[:-1]) and NO_CHAMPION not in part.overrides


def test_a_searched_setting_replaces_the_strategys_fixed_one_and_no_sweep_settings_remain() -> None:
    grid = STRATEGIES["optimizer x lr grid"]
    part = retrained_part(plan(), "hard", COMMON, grid, ["data.image_size=48"])
    assert "data.image_size=48" in part.overrides and "data.image_size=32" not in part.overrides
    tpe = retrained_part(plan(), "hard", COMMON, STRATEGIES["TPE + Hyperband"], ["model=vgg1", "lr=0.002"])
    assert not any(o.startswith(("sweep=", "hydra.sweeper.")) for o in tpe.overrides)
    assert tpe.overrides[0] == HARD
