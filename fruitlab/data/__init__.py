"""Datasets as LightningDataModules over cached uint8 tensors, and their train/validation splits. May import
only config, errors, signals, console."""

from omegaconf import DictConfig

from fruitlab.data.base import TensorImageDataModule
from fruitlab.data.cifar import CIFAR10DataModule, CIFAR100DataModule
from fruitlab.data.imagefolder import ImageFolderDataModule
from fruitlab.data.pca import PCADataModule
from fruitlab.errors import unknown

LOADERS: dict[str, type[TensorImageDataModule]] = {
    "imagefolder": ImageFolderDataModule,
    "pca": PCADataModule,
    "cifar10": CIFAR10DataModule,
    "cifar100": CIFAR100DataModule,
}


def build_datamodule(cfg: DictConfig) -> TensorImageDataModule:
    """The data module for `cfg.data`: `loader` picks the class; the other keys but `name` are its options."""
    options = {k: v for k, v in cfg.data.items() if k not in ("name", "loader")}
    if cfg.data.loader not in LOADERS:
        raise unknown("data loader", cfg.data.loader, list(LOADERS))
    return LOADERS[cfg.data.loader](batch_size=cfg.batch_size, seed=cfg.seed, **options)
