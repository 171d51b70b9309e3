"""Small CIFAR-10/100 copies in the official python pickle format, for tests.

The layout, file names and dictionary keys are those of the official archives as `pickle.load(f,
encoding="latin1")` returns them (what torchvision reads): `data` is a (N, 3072) uint8 array of the red, green
and blue 32x32 planes, labels are lists of ints. Each class gets a fixed random 4x4 colour pattern, scaled up
to 32x32, plus noise: a signal a small network learns in an epoch or two. The MD5 sums are of course not the
official ones.
"""

import pickle
from pathlib import Path

import numpy as np

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def class_images(labels: np.ndarray, seed: int, num_classes: int) -> np.ndarray:
    """(N, 3072) uint8 rows: the class's pattern plus noise."""
    prototypes = np.random.default_rng(1234).integers(0, 256, size=(num_classes, 3, 4, 4))
    prototypes = prototypes.repeat(8, axis=2).repeat(8, axis=3)  # 4x4 -> 32x32
    noise = np.random.default_rng(seed).normal(0, 24, size=(len(labels), 3, 32, 32))
    images = np.clip(prototypes[labels] + noise, 0, 255).astype(np.uint8)
    return images.reshape(len(labels), 3 * 32 * 32)


def balanced_labels(num_classes: int, per_class: int, seed: int) -> list[int]:
    labels = np.repeat(np.arange(num_classes), per_class)
    return np.random.default_rng(seed).permutation(labels).tolist()


def _dump(path: Path, content: dict) -> None:
    with path.open("wb") as file:
        pickle.dump(content, file, protocol=2)


def write_cifar10(root: Path, train_per_class: int = 20, test_per_class: int = 5) -> Path:
    """`root/cifar-10-batches-py/`: five training batches (train_per_class split among them), a test batch."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    per_batch = train_per_class // 5
    for index in range(1, 6):
        labels = balanced_labels(10, per_batch, seed=index)
        _dump(folder / f"data_batch_{index}", _batch(labels, f"training batch {index} of 5", seed=index))
    labels = balanced_labels(10, test_per_class, seed=0)
    _dump(folder / "test_batch", _batch(labels, "testing batch 1 of 1", seed=100))
    _dump(
        folder / "batches.meta",
        {"num_cases_per_batch": per_batch * 10, "label_names": CIFAR10_CLASSES, "num_vis": 3072},
    )
    return root


def _batch(labels: list[int], batch_label: str, seed: int) -> dict:
    return {
        "batch_label": batch_label,
        "labels": labels,
        "data": class_images(np.array(labels), seed, 10),
        "filenames": [f"image_{seed}_{i}.png" for i in range(len(labels))],
    }


def write_cifar100(root: Path, train_per_class: int = 5, test_per_class: int = 2) -> Path:
    """`root/cifar-100-python/` with train, test and meta (100 fine classes in 20 coarse ones)."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for name, per_class, seed in (("train", train_per_class, 1), ("test", test_per_class, 2)):
        fine = balanced_labels(100, per_class, seed)
        _dump(
            folder / name,
            {
                "filenames": [f"image_{seed}_{i}.png" for i in range(len(fine))],
                "batch_label": f"{name}ing batch 1 of 1",
                "fine_labels": fine,
                "coarse_labels": [label // 5 for label in fine],
                "data": class_images(np.array(fine), seed, 100),
            },
        )
    _dump(
        folder / "meta",
        {
            "fine_label_names": [f"fine_{i:02d}" for i in range(100)],
            "coarse_label_names": [f"coarse_{i:02d}" for i in range(20)],
        },
    )
    return root
