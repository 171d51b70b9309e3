"""A LightningDataModule over in-memory uint8 image tensors: the shared path of every dataset.

Subclasses only say how to load the train and test tensors; this class makes the seeded, stratified
train/validation split (random, or held-out blocks of video frames: see splits.py), computes normalisation
statistics on the training split and serves the loaders.
Batches stay uint8 until the model (which owns the normalisation) so that what is logged is deployable.
"""

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler, TensorDataset

from fruitlab.data.splits import split_indices

STATISTICS_CHUNK = 512  # images per step of the normalisation statistics: never a copy of the whole set


@dataclass
class ImageTensors:
    images: torch.Tensor  # (N, C, H, W) uint8
    labels: torch.Tensor  # (N,) int64
    file_names: list[str] | None = None  # each image's file name, where the dataset has files (frame numbers)


@dataclass(frozen=True)
class SplitSource:
    """Where one split's examples come from and a digest that changes when they do: what a run records as the
    split's dataset."""

    split: str  # "train", "validation" or "test"
    digest: str  # the decode cache key of the files (train and validation: with how they were split)
    source: str  # the folder the examples are read from
    size: int


class Normalize(nn.Module):
    """Scale uint8-range or [0, 1] float images to zero mean and unit variance per channel."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.reshape(1, -1, 1, 1).float())
        self.register_buffer("std", std.reshape(1, -1, 1, 1).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class PartSampler(Sampler[int]):
    """A split's examples in order or, once `part` is set, a fixed part of them: the first `part` of a seeded
    permutation, in order. Lightning keeps one validation loader for a whole fit: this is how a validation
    check inside an epoch sees a part of the split and the check at the epoch's end all of it."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.drawn = torch.randperm(size, generator=torch.Generator().manual_seed(seed))
        self.part: int | None = None  # how many examples; None: all of them

    def __iter__(self) -> Iterator[int]:
        if self.part is None:
            return iter(range(self.size))
        return iter(sorted(self.drawn[: self.part].tolist()))

    def __len__(self) -> int:
        return self.size if self.part is None else self.part


class TensorImageDataModule(pl.LightningDataModule):
    def __init__(
        self,
        batch_size: int = 64,
        val_fraction: float = 0.2,
        seed: int = 0,
        eval_batch_size: int = 256,
        val_split: str = "random",
        val_blocks: int = 4,
        val_gap: int = 2,
    ) -> None:
        super().__init__()
        self.val_split = val_split
        self.val_blocks = val_blocks
        self.val_gap = val_gap
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.val_fraction = val_fraction
        self.seed = seed
        # How the training set is divided into the train and validation splits; part of their digests.
        self.split_rule: tuple[object, ...] = ("holdout", val_fraction, seed)
        self.classes: list[str] = []
        self.train: ImageTensors | None = None
        self.val: ImageTensors | None = None
        self.test: ImageTensors | None = None
        self.val_sampler: PartSampler | None = None

    # -- what a dataset provides -------------------------------------------------------------------
    def load(self) -> tuple[ImageTensors, ImageTensors, list[str]]:
        """Return (training set, test set, class names)."""
        raise NotImplementedError

    def data_params(self) -> dict[str, object]:
        """Dataset parameters worth logging beside the config."""
        return {}

    def summary_metrics(self) -> dict[str, float]:
        """Numbers about the prepared data worth logging as metrics."""
        return {}

    def origins(self) -> dict[str, tuple[str, str]]:
        """(digest, source) of the training and the test set as loaded, keyed "train" and "test"."""
        raise NotImplementedError

    def split_sources(self) -> list[SplitSource]:
        """The train, validation and test splits: digest, source and size of each. The validation split is
        drawn from the training set, so both digests include `split_rule`."""
        assert self.train is not None, "call setup() first"
        (train_key, train_source), (test_key, test_source) = self.origins()["train"], self.origins()["test"]

        def drawn(split: str) -> str:
            return hashlib.sha256(repr((train_key, split, self.split_rule)).encode()).hexdigest()[:20]

        return [
            SplitSource("train", drawn("train"), train_source, len(self.train.labels)),
            SplitSource("validation", drawn("validation"), train_source, len(self.val.labels)),
            SplitSource("test", test_key, test_source, len(self.test.labels)),
        ]

    # -- shared machinery --------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.train is not None:
            return
        training, self.test, self.classes = self.load()
        train_idx, val_idx = split_indices(
            self.val_split,
            training.labels.numpy(),
            training.file_names,
            self.val_fraction,
            self.seed,
            self.val_blocks,
            self.val_gap,
        )
        self.train = _subset(training, train_idx)
        self.val = _subset(training, val_idx)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        assert self.train is not None, "call setup() first"
        return tuple(self.train.images.shape[1:])

    def input_transform(self) -> nn.Module:
        """The fitted preprocessing the model applies to [0, 1] images (normalisation by default)."""
        assert self.train is not None, "call setup() first"
        return Normalize(*channel_statistics(self.train.images))

    @property
    def model_input_shape(self) -> tuple[int, ...]:
        """Shape of one example after input_transform(): what the network itself sees."""
        return self.image_shape

    def train_dataloader(self) -> DataLoader:
        # A last batch of one image cannot be trained on by a network with batch norm: it is left out instead
        # (a different, shuffled image each epoch).
        assert self.train is not None, "call setup() first"
        one_left = len(self.train.labels) % self.batch_size == 1
        return _loader(self.train, self.batch_size, shuffle=True, drop_last=one_left)

    def val_dataloader(self) -> DataLoader:
        assert self.val is not None, "call setup() first"
        self.val_sampler = PartSampler(len(self.val.labels), self.seed)
        return _loader(self.val, self.eval_batch_size, sampler=self.val_sampler)

    def validate_on_part(self, fraction: float | None) -> None:
        """Let the next validations see a fixed, seeded `fraction` of the validation split (None: all of it)."""
        if self.val_sampler is not None:
            self.val_sampler.part = None if fraction is None else math.ceil(fraction * self.val_sampler.size)

    def test_dataloader(self) -> DataLoader:
        return _loader(self.test, self.eval_batch_size)


def channel_statistics(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation of uint8 images in [0, 1] units, from each channel's histogram of
    its 256 values: exact integer counts, a few times faster than summing float64 copies (it runs every trial)."""
    channels = images.shape[1]
    counts = torch.zeros(channels, 256, dtype=torch.int64)
    for start in range(0, len(images), STATISTICS_CHUNK):
        chunk = images[start : start + STATISTICS_CHUNK]
        for channel in range(channels):
            counts[channel] += torch.bincount(chunk[:, channel].flatten(), minlength=256)
    values = torch.arange(256, dtype=torch.float64) / 255
    count = images.numel() // channels
    mean = counts.double() @ values / count
    variance = (counts.double() @ values.square() - count * mean.square()) / (count - 1)  # unbiased, as torch.std
    return mean.float(), variance.clamp_min(0).sqrt().float()


def _subset(data: ImageTensors, index) -> ImageTensors:
    index = torch.as_tensor(index)
    return ImageTensors(data.images[index], data.labels[index])


def _loader(
    data: ImageTensors | None,
    batch_size: int,
    shuffle: bool = False,
    drop_last: bool = False,
    sampler: Sampler[int] | None = None,
) -> DataLoader:
    assert data is not None, "call setup() first"
    dataset = TensorDataset(data.images, data.labels)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, sampler=sampler)
