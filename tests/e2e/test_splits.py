"""The validation splits on real Fruits-360 file lists: the frame-block split keeps every validation frame away
from the training frames of its class, keeps each class's share, and is seeded."""

from pathlib import Path

import numpy as np
import pytest

from fruitlab.data.imagefolder import ImageFolderDataModule, embedded_sample, scan_split
from fruitlab.data.splits import frame_number, split_indices
from fruitlab.errors import ConfigError, DataError

HARD = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "fruits360-hard"


def training_files(root: Path) -> tuple[np.ndarray, list[str], np.ndarray]:
    paths, labels, _ = scan_split(root / "Training")
    names = [path.name for path in paths]
    return np.array(labels), names, np.array([frame_number(name) for name in names])


def nearest_training_frame(labels, frames, train, val) -> int:
    """The smallest frame distance between a validation image and a training image of the same class."""
    distances = []
    for label in np.unique(labels):
        train_frames = frames[train][labels[train] == label]
        val_frames = frames[val][labels[val] == label]
        distances.append(np.abs(train_frames[:, None] - val_frames[None, :]).min())
    return int(min(distances))


@pytest.fixture(params=["sample", "fruits360", "fruits360-hard"])
def dataset_root(request: pytest.FixtureRequest, real_data: Path) -> Path:
    root = {"sample": embedded_sample(), "fruits360": real_data, "fruits360-hard": HARD}[request.param]
    if not (root / "Training").is_dir():
        pytest.skip(f"{request.param} not found")
    return root


def test_frame_numbers_come_from_fruits360_file_names() -> None:
    assert [frame_number(n) for n in ("123_100.jpg", "r_7_100.jpg", "r2_40_100.jpg", "r0_0_100.jpg")] == [123, 7, 40, 0]
    with pytest.raises(DataError, match=r"apple\.jpg.*val_split=random"):
        frame_number("apple.jpg")


def test_block_split_keeps_validation_frames_away_from_training_frames(dataset_root: Path) -> None:
    labels, names, frames = training_files(dataset_root)
    gap = 2
    train, val = split_indices("blocks", labels, names, 0.2, seed=42, gap=gap)
    assert not set(train) & set(val)
    assert nearest_training_frame(labels, frames, train, val) > gap
    # stratified: every class gives about val_fraction of its images to validation
    share = np.bincount(labels[val], minlength=labels.max() + 1) / np.bincount(labels)
    assert share.min() >= 0.18 and share.max() <= 0.25
    # the random split, by contrast, validates on neighbours of training frames
    train_r, val_r = split_indices("random", labels, names, 0.2, seed=42)
    assert nearest_training_frame(labels, frames, train_r, val_r) <= 1


def test_block_split_is_seeded(real_data: Path) -> None:
    labels, names, _ = training_files(real_data)
    first, again, other = (split_indices("blocks", labels, names, 0.2, seed) for seed in (3, 3, 4))
    assert np.array_equal(first[1], again[1]) and np.array_equal(first[0], again[0])
    assert not np.array_equal(first[1], other[1])


def test_data_module_uses_the_configured_split(tmp_path: Path) -> None:
    modules = {
        split: ImageFolderDataModule(cache_dir=tmp_path, val_split=split, seed=1) for split in ("blocks", "random")
    }
    for module in modules.values():
        module.setup()
    assert len(modules["random"].train.labels) + len(modules["random"].val.labels) == 400
    assert len(modules["blocks"].train.labels) + len(modules["blocks"].val.labels) < 400  # the gaps are left out


def test_unknown_split_and_split_without_file_names_are_refused() -> None:
    labels = np.array([0, 0, 1, 1])
    with pytest.raises(ConfigError, match="val_split=stripes: use one of random, blocks"):
        split_indices("stripes", labels, None, 0.5, 0)
    with pytest.raises(ConfigError, match="needs image files named by frame number"):
        split_indices("blocks", labels, None, 0.5, 0)


def test_hard_set_without_a_root_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data\.root is not set.*FRUITLAB_DATA_HARD"):
        ImageFolderDataModule(root=None, sample_when_no_root=False, cache_dir=tmp_path)
