import re
import shutil
from pathlib import Path

import pytest
import torch

from fruitlab.data.imagefolder import ImageFolderDataModule, embedded_sample
from fruitlab.errors import DataError


def test_real_data_classes_split_and_shapes(real_data: Path, tmp_path: Path) -> None:
    dm = ImageFolderDataModule(root=real_data, image_size=32, cache_dir=tmp_path, seed=1)
    dm.setup()
    assert dm.classes == sorted(p.name for p in (real_data / "Training").iterdir() if p.is_dir())
    assert dm.num_classes == 10
    assert dm.train.images.dtype == torch.uint8 and dm.image_shape == (3, 32, 32)
    n_train = sum(1 for _ in (real_data / "Training").rglob("*.jpg"))
    assert len(dm.train.labels) + len(dm.val.labels) == n_train
    assert len(dm.val.labels) == pytest.approx(0.2 * n_train, abs=1)
    assert len(dm.test.labels) == sum(1 for _ in (real_data / "Test").rglob("*.jpg"))
    # stratified: each class keeps its share in the validation split
    train_share = torch.bincount(dm.train.labels) / len(dm.train.labels)
    val_share = torch.bincount(dm.val.labels) / len(dm.val.labels)
    assert torch.allclose(train_share, val_share, atol=0.01)


def test_split_is_seeded(tmp_path: Path) -> None:
    def val_labels(seed: int) -> torch.Tensor:
        dm = ImageFolderDataModule(cache_dir=tmp_path, seed=seed)
        dm.setup()
        return dm.val.images

    assert torch.equal(val_labels(3), val_labels(3))
    assert not torch.equal(val_labels(3), val_labels(4))


def test_images_are_decoded_once_and_cached_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = ImageFolderDataModule(cache_dir=tmp_path, image_size=24)
    first.setup()
    assert len(list(tmp_path.glob("imagefolder-*.pt"))) == 2  # Training and Test

    def no_decoding(*_args, **_kwargs):
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr("fruitlab.data.imagefolder.decode_images", no_decoding)
    second = ImageFolderDataModule(cache_dir=tmp_path, image_size=24)
    second.setup()
    assert torch.equal(first.train.images, second.train.images)


def test_embedded_sample_has_all_classes_and_a_licence() -> None:
    root = embedded_sample()
    assert len([p for p in (root / "Training").iterdir() if p.is_dir()]) == 10
    assert (root / "LICENSE").read_text().startswith("CC BY-SA 4.0")


def test_missing_root_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=str(tmp_path / "nowhere" / "Training")):
        ImageFolderDataModule(root=tmp_path / "nowhere", cache_dir=tmp_path).setup()


def _copy_sample(tmp_path: Path) -> Path:
    root = tmp_path / "fruits"
    shutil.copytree(embedded_sample(), root)
    return root


def test_empty_class_folder_names_the_folder(tmp_path: Path) -> None:
    root = _copy_sample(tmp_path)
    empty = root / "Training" / "Banana 1"
    shutil.rmtree(empty)
    empty.mkdir()
    with pytest.raises(DataError, match=r"Banana 1.*holds no images"):
        ImageFolderDataModule(root=root, cache_dir=tmp_path).setup()


def test_corrupt_jpeg_names_the_file(tmp_path: Path) -> None:
    root = _copy_sample(tmp_path)
    victim = sorted((root / "Training" / "Kiwi 1").glob("*.jpg"))[0]
    victim.write_bytes(victim.read_bytes()[:200])  # a truncated JPEG
    with pytest.raises(DataError, match=re.escape(f"cannot read image {victim}")):
        ImageFolderDataModule(root=root, cache_dir=tmp_path).setup()
