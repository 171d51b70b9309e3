"""Any ImageFolder-layout dataset: `<root>/Training/<class>/*.jpg` and `<root>/Test/<class>/*.jpg`."""

from importlib import resources
from pathlib import Path

import torch
from torchvision.datasets.folder import IMG_EXTENSIONS

from fruitlab.data.base import ImageTensors, TensorImageDataModule
from fruitlab.data.cache import cache_key, decode_images, default_cache_dir
from fruitlab.data.loaded import load_cached
from fruitlab.errors import DataError

TRAIN_DIR, TEST_DIR = "Training", "Test"


def embedded_sample() -> Path:
    """The small Fruits-360 sample shipped inside the package (see its ATTRIBUTION.md)."""
    return Path(str(resources.files("fruitlab.data") / "sample" / "fruits360"))


def scan_split(split_dir: Path, classes: list[str] | None = None) -> tuple[list[Path], list[int], list[str]]:
    """Image files and labels of one split; classes come from the folder names."""
    if not split_dir.is_dir():
        raise DataError(
            f"dataset folder not found: {split_dir}. Expected <root>/{TRAIN_DIR}/<class>/*.jpg and "
            f"<root>/{TEST_DIR}/<class>/*.jpg; set data.root=PATH or FRUITLAB_DATA."
        )
    found = sorted(d.name for d in split_dir.iterdir() if d.is_dir())
    if not found:
        raise DataError(f"no class folders in {split_dir}: expected one folder of images per class.")
    if classes is not None and found != classes:
        raise DataError(f"class folders of {split_dir} differ from the training classes: {found} vs {classes}")
    paths: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(found):
        files = sorted(f for f in (split_dir / name).iterdir() if f.suffix.lower() in IMG_EXTENSIONS)
        if not files:
            raise DataError(f"class folder {split_dir / name} holds no images ({', '.join(IMG_EXTENSIONS)}).")
        paths += files
        labels += [label] * len(files)
    return paths, labels, found


class ImageFolderDataModule(TensorImageDataModule):
    def __init__(
        self,
        root: str | Path | None = None,
        image_size: int = 32,
        cache_dir: str | Path | None = None,
        sample_when_no_root: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if not root and not sample_when_no_root:
            raise DataError(
                "data.root is not set and no embedded sample stands in for this dataset: set data.root=PATH, or "
                "the environment variable its config reads (FRUITLAB_DATA_HARD for data=fruits360_hard)"
            )
        self.root = Path(root).expanduser() if root else embedded_sample()
        self.image_size = image_size
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        self._origins: dict[str, tuple[str, str]] = {}

    def _load_split(self, name: str, classes: list[str] | None = None) -> tuple[ImageTensors, list[str]]:
        paths, labels, classes = scan_split(self.root / name, classes)
        key = cache_key(paths, self.root, "imagefolder", self.image_size)
        self._origins["train" if name == TRAIN_DIR else "test"] = (key, str(self.root / name))

        def build() -> dict:
            return {"images": decode_images(paths, self.image_size), "labels": torch.tensor(labels)}

        data = load_cached(self.cache_dir / f"imagefolder-{key}.pt", build)
        return ImageTensors(data["images"], data["labels"], [path.name for path in paths]), classes

    def load(self) -> tuple[ImageTensors, ImageTensors, list[str]]:
        training, classes = self._load_split(TRAIN_DIR)
        test, _ = self._load_split(TEST_DIR, classes)
        return training, test, classes

    def origins(self) -> dict[str, tuple[str, str]]:
        return self._origins

    def data_params(self) -> dict[str, object]:
        return {"data.resolved_root": str(self.root)}
