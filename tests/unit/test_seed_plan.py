"""The seed study's plan: epochs per model from --epochs, one sweep per group of models that train as long, and
the overrides every sweep gets."""

import pytest

from fruitlab.errors import ConfigError
from fruitlab.studies.seed import (
    COMMON,
    DEFAULT_EPOCHS,
    EPOCHS,
    EXPERIMENT,
    PCA_MODEL,
    parse_epochs,
    stages,
    study_overrides,
)


def test_epochs_default_per_model_and_any_other_model_gets_the_default() -> None:
    assert parse_epochs([], ["vgg1", "resnet34"]) == {
        PCA_MODEL: EPOCHS[PCA_MODEL],
        "vgg1": EPOCHS["vgg1"],
        "resnet34": DEFAULT_EPOCHS,
    }


def test_one_count_sets_every_model_and_model_counts_change_only_those() -> None:
    assert parse_epochs(["2"], ["vgg1", "lenet"]) == {PCA_MODEL: 2, "vgg1": 2, "lenet": 2}
    assert parse_epochs(["3", "lenet=7"], ["vgg1", "lenet"]) == {PCA_MODEL: 3, "vgg1": 3, "lenet": 7}
    assert parse_epochs(["ffnn=1"], ["vgg1"]) == {PCA_MODEL: 1, "vgg1": EPOCHS["vgg1"]}


@pytest.mark.parametrize("entry", ["0", "two", "vgg1=0", "mobilenet_v2=3", "lenet=", "=2x"])
def test_a_bad_epochs_entry_names_itself_and_what_is_allowed(entry: str) -> None:
    with pytest.raises(
        ConfigError, match=rf"--epochs {entry}: give N or MODEL=N with N >= 1 and MODEL one of ffnn, vgg1"
    ):
        parse_epochs([entry], ["vgg1"])


def test_the_pca_sweep_comes_first_and_fits_one_pca_for_every_count() -> None:
    pca, *_ = stages(["lenet"], [30, 10, 50], parse_epochs(["ffnn=5"], ["lenet"]), ["data.root=DIR"])
    assert pca.overrides == (
        "sweep=pca_components",
        "data.n_components=30,10,50",
        "data.fit_components=50",
        "trainer.max_epochs=5",
        *COMMON,
        "data.root=DIR",
    )
    assert pca.command()[-len(pca.overrides) - 1 :] == ["-m", *pca.overrides]


def test_models_training_as_long_share_one_sweep_shortest_first() -> None:
    epochs = {PCA_MODEL: 40, "vgg1": 4, "lenet": 20, "vgg2": 4}
    planned = stages(["vgg1", "lenet", "vgg2"], [], epochs, [])
    assert [stage.overrides for stage in planned] == [
        ("model=vgg1,vgg2", "trainer.max_epochs=4", *COMMON),
        ("model=lenet", "trainer.max_epochs=20", *COMMON),
    ]
    assert [stage.label for stage in planned] == ["vgg1, vgg2, 4 epochs", "lenet, 20 epochs"]
    assert stages([], [], epochs, []) == []


def test_the_study_names_its_experiment_unless_the_user_does() -> None:
    assert study_overrides(["data.root=DIR"]) == [f"tracking.experiment={EXPERIMENT}", "data.root=DIR"]
    assert study_overrides(["tracking.experiment=mine"]) == ["tracking.experiment=mine"]


@pytest.mark.parametrize(
    ("override", "option"),
    [
        ("model=vgg1", "--models"),
        ("+data.n_components=5", "--components"),
        ("trainer.max_epochs=2", "--epochs"),
        ("~sweep", "--models and --components"),
    ],
)
def test_a_setting_the_study_makes_is_refused_with_the_option_to_use(override: str, option: str) -> None:
    with pytest.raises(ConfigError, match=f"is set by the study for each of its sweeps: use {option} instead"):
        study_overrides([override])
