"""Dropout overrides keep the paper's parameter counts; early stopping ends a plateau before max_epochs."""

from pathlib import Path

import mlflow
import pytest
import torch
from conftest import train_config
from hydra.errors import ConfigCompositionException
from torch import nn

from fruitlab.data.imagefolder import ImageFolderDataModule
from fruitlab.errors import ConfigError
from fruitlab.models import count_parameters, get_model

SHAPE = (3, 32, 32)


def dropout_rates(model: nn.Module) -> list[float]:
    return [m.p for m in model.modules() if isinstance(m, nn.Dropout)]


def test_dropout_override_keeps_ratios_and_parameter_counts() -> None:
    paper = get_model("vgg3_bn", 10, SHAPE)
    assert dropout_rates(paper) == [0.2, 0.3, 0.4, 0.5]
    halved = get_model("vgg3_bn", 10, SHAPE, dropout=0.25)
    assert dropout_rates(halved) == pytest.approx([0.1, 0.15, 0.2, 0.25])
    assert dropout_rates(get_model("vgg3_bn", 10, SHAPE, dropout=0.0)) == []
    # a network without dropout gets the rate everywhere: vgg3 with 0.2 is vgg3_dropout
    assert dropout_rates(get_model("vgg3", 10, SHAPE, dropout=0.2)) == dropout_rates(
        get_model("vgg3_dropout", 10, SHAPE)
    )
    for rate in (None, 0.0, 0.25, 0.6):
        assert count_parameters(get_model("vgg3_bn", 10, SHAPE, dropout=rate)) == 552_298
    assert dropout_rates(get_model("mobilenet_v2", 10, SHAPE, dropout=0.4)) == [0.4]


def test_dropout_is_configured_only_where_the_architecture_has_it(make_config) -> None:
    assert make_config("model=vgg1", "model.dropout=0.3").model.dropout == 0.3
    with pytest.raises(ConfigCompositionException):
        make_config("model=lenet", "model.dropout=0.3")
    with pytest.raises(ConfigError, match=r"model.dropout=1.5 is not a dropout rate"):
        get_model("vgg1", 10, SHAPE, dropout=1.5)


def test_dropout_makes_training_outputs_random_on_real_images() -> None:
    datamodule = ImageFolderDataModule()  # the embedded sample of real images
    datamodule.setup()
    images = datamodule.train.images[:16].float() / 255

    def training_outputs_differ(rate: float) -> bool:
        torch.manual_seed(0)
        model = get_model("vgg1", 10, SHAPE, dropout=rate).train()
        return not torch.equal(model(images), model(images))

    assert training_outputs_differ(0.5)
    assert not training_outputs_differ(0.0)


def test_early_stopping_ends_a_plateau_before_max_epochs(make_config, store: str, real_data: Path) -> None:
    # lr=0: the weights never change, so val_loss is flat from the first epoch on
    cfg = make_config(
        "model=lenet", "lr=0", f"data.root={real_data}", f"tracking.uri={store}", "trainer.max_epochs=6",
        "+trainer.limit_train_batches=4", "trainer.enable_progress_bar=false", "tracking.log_model=false",
        "report.gradcam=false", "latency.repeats=1", "latency.warmup=0",
        "early_stopping.enabled=true", "early_stopping.patience=2",
    )  # fmt: skip
    train_config(cfg)
    client = mlflow.MlflowClient(store)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    metrics = run.data.metrics
    # epoch 0 sets the best; epochs 1 and 2 do not improve on it: patience 2 is spent at epoch 2
    assert metrics["early_stopped"] == 1 and metrics["stopped_epoch"] == 2
    assert metrics["epochs"] == 3 < cfg.trainer.max_epochs
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")] == [0, 1, 2]
    assert "did not improve" in run.data.tags["early_stopping_reason"]
