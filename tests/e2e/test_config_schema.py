"""Every config value is checked against the schema (fruitlab/schema/) before work starts: one line naming the
key, the value and what is allowed, exit code 2, no traceback, and no run recorded. The schema's own logic is
tested in tests/unit/test_config_schema.py."""

from pathlib import Path

import pytest
import torch
from conftest import compose_config, one_line_error, run_cli

from fruitlab.commands.train import train
from fruitlab.errors import ConfigError
from fruitlab.models import get_model, list_models, min_image_side

# The values an adversarial pass found accepted (or failing with a traceback), and what the line must say.
BAD_VALUES = [
    (["batch_size=0"], "batch_size=0 is not allowed: give a whole number >= 1"),
    (["batch_size=-3"], "batch_size=-3 is not allowed: give a whole number >= 1"),
    (["trainer.max_epochs=0"], "trainer.max_epochs=0 is not allowed: give a whole number >= 1 or -1"),
    (["trainer.max_epochs=-1"], "trainer.max_epochs=-1 (no epoch limit) is allowed only with early_stopping"),
    (["data.image_size=0"], "data.image_size=0 is not allowed: give a whole number >= 1"),
    (["data.image_size=7"], "data.image_size=7 is too small for model=vgg3_bn: it accepts images of at least 8"),
    (["model=lenet", "data.image_size=15"], "data.image_size=15 is too small for model=lenet"),
    (["data.val_fraction=1.5"], "data.val_fraction=1.5 is not allowed: give a number in (0, 1)"),
    (["data.val_fraction=0"], "data.val_fraction=0 is not allowed: give a number in (0, 1)"),
    (["optim=sgd", "optim.momentum=5"], "optim.momentum=5 is not allowed: give a number in [0, 1)"),
    (["optim.betas=[0.9,1.5]"], "optim.betas=[0.9, 1.5] is not allowed: give a list of 2 values, each a number in"),
    (["optim.weight_decay=-0.1"], "optim.weight_decay=-0.1 is not allowed: give a number >= 0"),
    (["+optim.eps=0"], "optim.eps=0 is not allowed: give a number > 0"),
    (["lr=-1"], "lr=-1 is not allowed: give a number > 0"),
    (["lr=nan"], "lr=nan is not allowed: give a number > 0"),
    (["scheduler=plateau", "scheduler.factor=2"], "scheduler.factor=2 is not allowed: give a number in (0, 1)"),
    (["early_stopping.patience=-1"], "early_stopping.patience=-1 is not allowed"),
    (["cv.folds=1"], "cv.folds=1 is not allowed: give a whole number >= 2 or 0"),
    (["latency.batch_sizes=[0]"], "latency.batch_sizes=[0] is not allowed: give a list of one or more values"),
    (["report.gradcam=maybe"], "report.gradcam='maybe' is not allowed: give true or false"),
]


@pytest.mark.parametrize(("overrides", "expected"), BAD_VALUES, ids=[" ".join(o) for o, _ in BAD_VALUES])
def test_a_bad_value_is_refused_before_any_work_naming_key_value_and_range(
    overrides: list[str], expected: str, tmp_path: Path
) -> None:
    store = tmp_path / "mlruns" / "mlflow.db"
    with pytest.raises(ConfigError) as refused:
        train(compose_config(*overrides, f"tracking.uri=sqlite:///{store}"))
    assert expected in str(refused.value) and "\n" not in str(refused.value)
    assert not store.exists()  # refused before the store was opened: no run, let alone a RUNNING one


@pytest.mark.parametrize("name", list_models())
def test_each_models_smallest_image_side_is_what_the_model_accepts(name: str) -> None:
    """The declared minimum is checked against the network: it runs at that side and fails one pixel below."""
    smallest = min_image_side(name)
    with torch.inference_mode():
        assert get_model(name, 10, (3, smallest, smallest)).eval()(torch.zeros(2, 3, smallest, smallest)).shape == (
            2,
            10,
        )
        if smallest > 1:
            with pytest.raises((RuntimeError, ValueError)):
                below = smallest - 1
                get_model(name, 10, (3, below, below)).eval()(torch.zeros(2, 3, below, below))


def test_a_bad_value_on_the_command_line_is_one_line_and_exit_2(tmp_path: Path) -> None:
    store = tmp_path / "mlruns" / "mlflow.db"
    line = one_line_error(run_cli("optim=sgd", "optim.momentum=5", f"tracking.uri=sqlite:///{store}"))
    assert line == "fruitlab: error: optim.momentum=5 is not allowed: give a number in [0, 1), e.g. optim.momentum=0.9."
    assert not store.exists()
