"""What a training run records before it trains: its config, data, model size and augmentation."""

from collections.abc import Sequence

import torch
from omegaconf import DictConfig

from fruitlab.data.augment import BatchAugmentation
from fruitlab.data.base import TensorImageDataModule
from fruitlab.models import count_parameters
from fruitlab.plotting import image_grid, spread_sample
from fruitlab.tracking.runs import InputData, RunRecorder, git_commit
from fruitlab.training.module import ClassifierModule

# Overrides that identify a sweep trial to its job: bookkeeping, not part of the experiment's command.
TRIAL_OVERRIDE_PREFIXES = ("trial.", "+trial.", "++trial.")


def command_overrides(overrides: Sequence[str]) -> str:
    """The command's overrides as one line, without a sweep trial's identity."""
    return " ".join(o for o in overrides if not o.startswith(TRIAL_OVERRIDE_PREFIXES))


def record_config(
    recorder: RunRecorder, cfg: DictConfig, datamodule: TensorImageDataModule, overrides: Sequence[str] = ()
) -> None:
    """The config, the data's own params, the commit and the command's `overrides`, and the class names."""
    recorder.log_config(cfg)
    recorder.log_params(datamodule.data_params())
    recorder.set_tags({"git_commit": git_commit(), "overrides": command_overrides(overrides)})
    recorder.log_dict({"classes": datamodule.classes}, "classes.json")


def record_datasets(recorder: RunRecorder, cfg: DictConfig, datamodule: TensorImageDataModule) -> None:
    """The train, validation and test splits as the run's MLflow datasets, named `<data.name>-<split>`."""
    recorder.log_inputs(
        InputData(f"{cfg.data.name}-{s.split}", s.digest, s.source, s.split, s.size) for s in datamodule.split_sources()
    )


def record_setup(
    recorder: RunRecorder,
    cfg: DictConfig,
    datamodule: TensorImageDataModule,
    module: ClassifierModule,
    overrides: Sequence[str] = (),
) -> None:
    """`record_config`, the splits as datasets, then the sizes of the model and the splits, and the augmentation."""
    record_config(recorder, cfg, datamodule, overrides)
    record_datasets(recorder, cfg, datamodule)
    recorder.log_metrics(
        {
            "num_parameters": count_parameters(module.classifier.backbone),
            "num_classes": datamodule.num_classes,
            "train_size": len(datamodule.train.labels),
            "val_size": len(datamodule.val.labels),
            "test_size": len(datamodule.test.labels),
            **datamodule.summary_metrics(),
        }
    )
    if module.augment is not None:
        sample = datamodule.train.images[spread_sample(6, len(datamodule.train.labels))]
        log_augmentation(recorder, module.augment, sample)


def log_augmentation(recorder: RunRecorder, augment: BatchAugmentation, images: torch.Tensor, copies: int = 3) -> None:
    """Log the composed transforms as text and a grid: each image once as it is, then `copies` augmented."""
    recorder.log_text(repr(augment.transform), "augment/transforms.txt")
    rows = [images]
    rows += [augment(images) for _ in range(copies)]
    grid = torch.stack(rows, dim=1).flatten(0, 1)  # image 0, its copies, image 1, ...
    titles = [("original" if i % (copies + 1) == 0 else "augmented") for i in range(len(grid))]
    recorder.log_figure(image_grid(grid, titles, columns=copies + 1), "plots/augmented_samples.png")
