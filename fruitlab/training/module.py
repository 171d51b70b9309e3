"""The one LightningModule that trains every registered architecture."""

from collections.abc import Mapping

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from fruitlab.models import ImageClassifier, to_unit_float
from fruitlab.training.optim import build_optimizer, build_scheduler


class ClassifierModule(pl.LightningModule):
    def __init__(
        self,
        classifier: ImageClassifier,
        num_classes: int,
        lr: float,
        optim: Mapping,
        scheduler: Mapping,
        monitor: str = "val_loss",
        augment: nn.Module | None = None,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        # channels_last: weights and batches in the NHWC layout, which oneDNN and cuDNN convolve faster
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.classifier = classifier.to(memory_format=self.memory_format)
        self.augment = augment  # uint8 batch -> uint8 batch, training steps only; not part of the deployable
        self.lr = lr
        self.optim_config = dict(optim)
        self.scheduler_config = dict(scheduler)
        self.monitor = monitor
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(to_unit_float(images).contiguous(memory_format=self.memory_format))

    def _step(self, batch, stage: str, accuracy: MulticlassAccuracy) -> torch.Tensor:
        images, labels = batch
        logits = self(images)
        loss = F.cross_entropy(logits, labels)
        accuracy(logits, labels)
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, sync_dist=True)
        self.log(f"{stage}_acc", accuracy, on_step=False, on_epoch=True)
        return loss

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        if self.augment is not None:
            images, labels = batch
            batch = (self.augment(images), labels)
        return self._step(batch, "train", self.train_acc)

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "val", self.val_acc)

    def test_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "test", self.test_acc)

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        return torch.softmax(self(batch[0]), dim=1)

    def configure_optimizers(self):
        trainable = [p for p in self.classifier.parameters() if p.requires_grad]  # frozen layers stay out
        optimizer = build_optimizer(trainable, self.lr, self.optim_config)
        scheduler = build_scheduler(optimizer, self.scheduler_config, self.trainer.max_epochs or 1, self.monitor)
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
