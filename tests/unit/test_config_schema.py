"""The config schema (fruitlab/schema/) on its own: every shipped option composes with its defaults, Hydra refuses
a value of the wrong type and validate_config one out of range, each in one line naming the key, the value and
what is allowed. Composes in-process: no processes, no training."""

import pytest
from omegaconf import OmegaConf

from fruitlab.config import compose_config, validate_config
from fruitlab.errors import ConfigError
from fruitlab.schema import GROUPS, Adam, FruitlabConfig, Latency, Sgd
from fruitlab.schema.rules import rule, shown

# Values refused, and the start of the line that says so (Hydra refuses the wrong types, the schema the rest).
REFUSED = [
    (["batch_size=0"], "batch_size=0 is not allowed: give a whole number >= 1, e.g. batch_size=64."),
    (["lr=abc"], "lr='abc' is not allowed: give a number > 0, e.g. lr=0.001."),
    (["lr=nan"], "lr=nan is not allowed: give a number > 0"),
    (["trainer.max_epochs=0"], "trainer.max_epochs=0 is not allowed: give a whole number >= 1 or -1"),
    (["trainer.max_epochs=ten"], "trainer.max_epochs='ten' is not allowed: give a whole number >= 1 or -1"),
    (
        ["optim=sgd", "optim.momentum=5"],
        "optim.momentum=5 is not allowed: give a number in [0, 1), e.g. optim.momentum=0.9",
    ),
    (["optim=sgd", "optim.momentum=abc"], "optim.momentum='abc' is not allowed: give a number in [0, 1)"),
    (["optim.betas=[0.9,1.5]"], "optim.betas=[0.9, 1.5] is not allowed: give a list of 2 values, each a number"),
    (["+optim.eps=0"], "optim.eps=0 is not allowed: give a number > 0"),
    (["data.val_fraction=0"], "data.val_fraction=0 is not allowed: give a number in (0, 1)"),
    (["data=cifar10", "data.download=maybe"], "data.download='maybe' is not allowed: give true or false"),
    (["scheduler=plateau", "scheduler.mode=up"], "scheduler.mode='up' is not allowed: give min or max"),
    (["cv.folds=1"], "cv.folds=1 is not allowed: give a whole number >= 2 or 0, e.g. cv.folds=5."),
    (["latency.batch_sizes=[0]"], "latency.batch_sizes=[0] is not allowed: give a list of one or more values, each"),
    (["channels_last=sometimes"], "channels_last='sometimes' is not allowed: give auto or true or false"),
    (["trainer.max_epochs=-1"], "trainer.max_epochs=-1 (no epoch limit) is allowed only with early_stopping"),
]


@pytest.mark.parametrize(("overrides", "expected"), REFUSED, ids=[" ".join(o) for o, _ in REFUSED])
def test_a_bad_value_is_refused_in_one_line_naming_key_value_and_what_is_allowed(
    overrides: list[str], expected: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        validate_config(compose_config(overrides))
    assert str(refused.value).startswith(expected) and "\n" not in str(refused.value)


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_every_option_composes_with_the_defaults_of_its_schema(group: str) -> None:
    for option, schema in GROUPS[group].items():
        cfg = compose_config([f"{group}={option}"])
        validate_config(cfg)
        node = OmegaConf.to_container(cfg[group], resolve=False)
        defaults = OmegaConf.to_container(OmegaConf.structured(schema(name=option) if group == "model" else schema))
        assert node == defaults, option


def test_the_top_level_defaults_come_from_the_schema() -> None:
    cfg = compose_config([])
    assert (cfg.lr, cfg.seed, cfg.batch_size) == (0.001, 42, 64)
    assert OmegaConf.to_container(cfg.latency) == OmegaConf.to_container(OmegaConf.structured(Latency))
    assert OmegaConf.get_type(cfg) is FruitlabConfig and OmegaConf.get_type(cfg.optim) is Adam


def test_optimizer_options_left_to_torch_are_null_and_can_be_added() -> None:
    cfg = compose_config(["optim=sgd", "+optim.dampening=0.5"])
    assert cfg.optim.dampening == 0.5 and Sgd().dampening is None


def test_endless_training_needs_something_that_stops_it() -> None:
    for stopper in ("early_stopping.enabled=true", "+trainer.max_time=00:00:10:00"):
        cfg = compose_config(["trainer.max_epochs=-1", stopper])
        validate_config(cfg)
        assert cfg.trainer.max_epochs == -1
    with pytest.raises(ConfigError, match="no epoch limit"):
        validate_config(compose_config(["trainer.max_epochs=-1"]))


def test_a_sweep_trial_adds_its_identity_under_trial() -> None:
    cfg = compose_config(["+trial.number=3", "+trial.study=s", "+trial.storage=sqlite:///x.db"])
    validate_config(cfg)
    assert OmegaConf.to_container(cfg.trial) == {"number": 3, "study": "s", "storage": "sqlite:///x.db"}


def test_the_trainer_takes_other_lightning_options() -> None:
    cfg = compose_config(["debug=fast", "+trainer.gradient_clip_val=0.5"])
    assert (cfg.trainer.limit_train_batches, cfg.trainer.gradient_clip_val) == (2, 0.5)


def test_multirun_composition_leaves_sweeps_to_the_trials() -> None:
    assert compose_config(["lr=0.1,0.01", "model=lenet"], multirun=True).model.name == "lenet"


def test_rules_come_from_the_field_types_and_metadata() -> None:
    threads = rule(FruitlabConfig, "threads")
    assert threads.allowed_text() == "a whole number >= 1 or null" and threads.allows(None)
    assert not threads.allows(0) and not threads.allows(True)
    assert rule(FruitlabConfig, "trial") is None  # open: the sweeper's keys
    assert rule(Adam, "betas").allows([0.9, 0.99]) and not rule(Adam, "betas").allows([0.9])


@pytest.mark.parametrize(("value", "text"), [(5.0, "5"), (1e-8, "1e-08"), (True, "true"), ("abc", "'abc'")])
def test_values_are_shown_as_the_user_writes_them(value: object, text: str) -> None:
    assert shown(value) == text
