"""CIFAR-10 and CIFAR-100 through torchvision's dataset classes (the official python pickle format).

`<root>/cifar-10-batches-py/` (data_batch_1..5, test_batch, batches.meta) and `<root>/cifar-100-python/`
(train, test, meta) are read by `torchvision.datasets.CIFAR10/CIFAR100`, which check the official MD5 sums.
A local copy that is not the official archive (re-pickled, a subset, generated) is read with
`verify_checksums=False` by a thin subclass whose file lists carry no MD5; as such files are not known to be
the official ones, they are first unpickled by a loader that only builds numpy arrays: no code in them runs.
"""

import pickle
import urllib.error
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torchvision.datasets import CIFAR10, CIFAR100

from fruitlab.data.base import ImageTensors, TensorImageDataModule
from fruitlab.data.cache import cache_key
from fruitlab.errors import DataError


def _without_md5(files: list[list[str]]) -> list[list[str | None]]:
    return [[name, None] for name, _md5 in files]


class UnverifiedCIFAR10(CIFAR10):
    """torchvision's CIFAR10 whose file lists carry no MD5: files need only exist and unpickle."""

    train_list = _without_md5(CIFAR10.train_list)
    test_list = _without_md5(CIFAR10.test_list)
    meta: ClassVar[dict] = {**CIFAR10.meta, "md5": None}


class UnverifiedCIFAR100(CIFAR100):
    """torchvision's CIFAR100 whose file lists carry no MD5: files need only exist and unpickle."""

    train_list = _without_md5(CIFAR100.train_list)
    test_list = _without_md5(CIFAR100.test_list)
    meta: ClassVar[dict] = {**CIFAR100.meta, "md5": None}


# What the official files reference: numpy arrays (pickled by numpy 1 or 2) and Python 3's bytes codec.
_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"refers to {module}.{name}, which a CIFAR file never holds")
        return super().find_class(module, name)


def check_arrays_only(path: Path) -> None:
    """Raise DataError unless `path` unpickles to plain data and numpy arrays (nothing executable)."""
    try:
        with path.open("rb") as file:
            _ArraysOnlyUnpickler(file, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise DataError(f"cannot read {path} as a CIFAR python pickle: {error}. Replace it.") from error


class CIFARDataModule(TensorImageDataModule):
    """CIFAR in memory as uint8 tensors, with the base class's seeded stratified train/validation split."""

    title: str
    dataset: type[CIFAR10]
    unverified: type[CIFAR10]

    def __init__(
        self, root: str | Path = "data", download: bool = False, verify_checksums: bool = True, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.root = Path(root).expanduser().resolve()
        self.download = download
        self.verify_checksums = verify_checksums

    @property
    def folder(self) -> Path:
        return self.root / self.dataset.base_folder

    def _files(self) -> list[str]:
        lists = self.dataset.train_list + self.dataset.test_list
        return [name for name, _md5 in lists] + [self.dataset.meta["filename"]]

    def _open(self, train: bool) -> CIFAR10:
        dataset_class = self.dataset if self.verify_checksums else self.unverified
        try:
            return dataset_class(str(self.root), train=train, download=self.download)
        except urllib.error.URLError as error:
            raise DataError(
                f"could not download {self.title} into {self.root}: {error}. Download it where the network "
                f"allows, or set data.root=DIR to a folder that holds {self.dataset.base_folder}/."
            ) from error
        except RuntimeError as error:  # torchvision: "Dataset not found or corrupted", also after a download
            raise self._not_usable(error) from error
        except (pickle.UnpicklingError, EOFError, KeyError, ValueError, OSError) as error:
            raise DataError(f"cannot read {self.title} in {self.folder}: {error}. Replace it.") from error

    def _not_usable(self, error: RuntimeError) -> DataError:
        missing = [name for name in self._files() if not (self.folder / name).is_file()]
        if missing and self.download:
            return DataError(f"downloading {self.title} into {self.root} failed: {error}")
        if missing:
            return DataError(
                f"{self.title} not found: {self.folder} lacks {', '.join(missing)}. Set data.download=true "
                f"to download it, or data.root=DIR to the folder that holds {self.dataset.base_folder}/."
            )
        return DataError(
            f"the {self.title} files in {self.folder} do not match the official MD5 sums. Delete them and "
            "set data.download=true for the official archive, or set data.verify_checksums=false to use a "
            "copy that is not the official one."
        )

    def _tensors(self, dataset: CIFAR10) -> ImageTensors:
        images = torch.from_numpy(np.ascontiguousarray(dataset.data)).permute(0, 3, 1, 2).contiguous()
        return ImageTensors(images, torch.tensor(dataset.targets, dtype=torch.int64))

    def load(self) -> tuple[ImageTensors, ImageTensors, list[str]]:
        if not self.verify_checksums:
            for name in self._files():
                if (self.folder / name).is_file():
                    check_arrays_only(self.folder / name)
        training = self._open(train=True)
        test = self._open(train=False)
        return self._tensors(training), self._tensors(test), list(training.classes)

    def origins(self) -> dict[str, tuple[str, str]]:
        """The digests of the official files (names, sizes, modification times), as the decode cache keys them."""
        keys = {}
        for split, files in (("train", self.dataset.train_list), ("test", self.dataset.test_list)):
            paths = [self.folder / name for name, _md5 in files]
            keys[split] = (cache_key(paths, self.folder, self.title), str(self.folder))
        return keys

    def data_params(self) -> dict[str, object]:
        return {"data.resolved_root": str(self.root)}


class CIFAR10DataModule(CIFARDataModule):
    title = "CIFAR-10"
    dataset = CIFAR10
    unverified = UnverifiedCIFAR10


class CIFAR100DataModule(CIFARDataModule):
    title = "CIFAR-100"
    dataset = CIFAR100
    unverified = UnverifiedCIFAR100
