"""Augmentation: real images change, each with its own draw, and only training batches are augmented."""

from pathlib import Path

import lightning.pytorch as pl
import mlflow
import pytest
import torch
from conftest import train_config
from torch import nn

from fruitlab.data.augment import BatchAugmentation, build_augmentation
from fruitlab.data.imagefolder import ImageFolderDataModule
from fruitlab.errors import ConfigError
from fruitlab.training.loop import build_module


@pytest.fixture(scope="module")
def real_batch(real_data: Path) -> torch.Tensor:
    datamodule = ImageFolderDataModule(root=real_data)
    datamodule.setup()
    return datamodule.train.images[:64]


@pytest.mark.parametrize("preset", ["light", "strong"])
def test_augmented_batches_differ_from_the_originals(make_config, real_batch: torch.Tensor, preset: str) -> None:
    augment = build_augmentation(make_config(f"augment={preset}").augment)
    torch.manual_seed(0)
    augmented = augment(real_batch)
    assert augmented.shape == real_batch.shape and augmented.dtype == torch.uint8
    changed = (augmented != real_batch).flatten(1).any(dim=1)
    assert changed.float().mean() >= 0.9
    # one draw per image: copies of one image come out different
    copies = augment(real_batch[:1].expand(16, -1, -1, -1))
    assert len({tuple(image.flatten().tolist()) for image in copies}) > 8


def test_none_builds_no_augmentation_and_unknown_transforms_are_named(make_config) -> None:
    assert build_augmentation(make_config().augment) is None
    with pytest.raises(ConfigError, match=r"unknown augment transform 'Sharpen'.*RandomRotation"):
        build_augmentation(make_config("augment.transforms=[{name: Sharpen}]").augment)


class CountingAugmentation(nn.Module):
    """The real augmentation, counting the batches it sees."""

    def __init__(self, inner: BatchAugmentation) -> None:
        super().__init__()
        self.inner = inner
        self.batches = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.batches += 1
        return self.inner(images)


def test_only_training_batches_are_augmented(make_config, real_data: Path) -> None:
    cfg = make_config("model=lenet", "augment=light", f"data.root={real_data}")
    datamodule = ImageFolderDataModule(root=real_data, batch_size=64)
    datamodule.setup()
    module = build_module(cfg, datamodule)
    counter = CountingAugmentation(module.augment)
    module.augment = counter
    trainer = pl.Trainer(
        max_epochs=1, limit_train_batches=3, limit_val_batches=2, limit_test_batches=2, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip
    trainer.fit(module, datamodule=datamodule)
    trainer.test(module, datamodule=datamodule, verbose=False)
    assert counter.batches == 3


def test_a_run_logs_its_transforms_and_a_sample_grid(make_config, store: str) -> None:
    cfg = make_config(  # the embedded sample of real images
        "model=lenet", "augment=strong", f"tracking.uri={store}", "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false", "tracking.log_model=false", "report.gradcam=false",
        "latency.repeats=1", "latency.warmup=0",
    )  # fmt: skip
    train_config(cfg)
    client = mlflow.MlflowClient(store)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.data.params["augment.name"] == "strong"
    assert "RandomResizedCrop" in run.data.params["augment.transforms"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert "plots/augmented_samples.png" in artifacts
    text = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/augment/transforms.txt")
    assert "RandomRotation" in text and "ColorJitter" in text
