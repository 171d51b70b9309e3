"""The data group's options: which data module loads what, and its options."""

from dataclasses import dataclass

from omegaconf import MISSING

from fruitlab.schema.rules import FRACTION, setting


# The data group: `loader` picks the data module; every other key but `name` is one of its options.
@dataclass
class ImageFolderData:
    """Any dataset of your own in ImageFolder layout: <root>/Training/<class>/*.jpg and <root>/Test/<class>/*.jpg.
    python -m fruitlab data=imagefolder data.root=PATH data.name=my_dataset"""

    name: str = "imagefolder"
    loader: str = "imagefolder"
    root: str | None = MISSING
    image_size: int | None = setting(32, low=1)
    val_fraction: float = setting(0.2, **FRACTION)
    # blocks: per class, val_blocks seeded runs of video frames (from the file names) are validation and training
    # keeps no frame within val_gap frames of them; random: a seeded stratified random split (data/splits.py).
    val_split: str = setting("random", choices=("random", "blocks"))
    cache_dir: str | None = "${oc.env:FRUITLAB_CACHE,null}"


@dataclass
class Fruits360(ImageFolderData):
    """Fruits-360 in ImageFolder layout; root null uses the small sample embedded in the package, FRUITLAB_DATA or
    data.root=PATH a full copy. Validation holds out blocks of frames, so it never sees a near-duplicate."""

    name: str = "fruits360"
    root: str | None = "${oc.env:FRUITLAB_DATA,null}"
    val_split: str = setting("blocks", choices=("random", "blocks"))
    val_blocks: int = setting(4, low=1)
    val_gap: int = setting(2, low=0)


@dataclass
class Fruits360Hard(Fruits360):
    """Fruits-360, 53 similar varieties (27,481 training and 9,188 test images); root: FRUITLAB_DATA_HARD or
    data.root=PATH. Works at data.image_size 32, 48, 64 and 100."""

    name: str = "fruits360_hard"
    root: str | None = "${oc.env:FRUITLAB_DATA_HARD,null}"
    sample_when_no_root: bool = False  # the embedded sample holds other classes: no root is an error


@dataclass
class Fruits360Pca(Fruits360):
    """The seed paper's PCA baseline input: grayscale, standardised pixels, the first n_components principal
    components fitted on the training split. fit_components are fitted and cached: a sweep over n_components
    sets it to its largest count, so PCA is fitted once for all trials. Pair it with model=ffnn."""

    loader: str = "pca"
    n_components: int = setting(170, low=1)
    fit_components: int | None = setting(210, low=1)


@dataclass
class Fruits360HardPca(Fruits360Hard):
    """The PCA baseline input (fruits360_pca) on Fruits-360 hard."""

    loader: str = "pca"
    n_components: int = setting(170, low=1)
    fit_components: int | None = setting(170, low=1)


@dataclass
class Cifar10:
    """CIFAR-10 read by torchvision from <root>/cifar-10-batches-py/, checked against the official MD5 sums.
    download: true fetches the official archive (about 170 MB); verify_checksums: false reads another copy."""

    name: str = "cifar10"
    loader: str = "cifar10"
    root: str | None = "data"
    download: bool = False
    verify_checksums: bool = True
    val_fraction: float = setting(0.2, **FRACTION)


@dataclass
class Cifar100(Cifar10):
    """CIFAR-100 (100 fine classes) from <root>/cifar-100-python/, like cifar10."""

    name: str = "cifar100"
    loader: str = "cifar100"
