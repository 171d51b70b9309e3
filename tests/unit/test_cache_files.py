"""The decode cache's file logic on tensors written to a temporary folder: its key, and a damaged file rebuilt."""

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from fruitlab.data.cache import CACHE_FORMAT, CacheDamaged, cache_key, cached, read_checked, write_checked


@pytest.fixture
def images(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    for name in ("Training/apple/0.jpg", "Training/apple/1.jpg", "Training/pear/0.jpg"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(name.encode())
    return root


def files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.jpg"))


def test_the_key_is_stable_and_follows_the_files_and_the_settings(images: Path) -> None:
    key = cache_key(files(images), images, 32)
    assert key == cache_key(files(images), images, 32)
    assert key != cache_key(files(images), images, 64)
    first = files(images)[0]
    first.write_bytes(b"a longer image than before")
    assert cache_key(files(images), images, 32) != key


def test_the_key_changes_when_a_file_is_touched_or_added(images: Path) -> None:
    key = cache_key(files(images), images, 32)
    first = files(images)[0]
    stat = first.stat()
    os.utime(first, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    touched = cache_key(files(images), images, 32)
    assert touched != key
    (images / "Training" / "pear" / "1.jpg").write_bytes(b"new")
    assert cache_key(files(images), images, 32) not in (key, touched)


def test_a_copy_with_its_times_kept_has_the_same_key_wherever_it_lies(images: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(images, tmp_path / "elsewhere" / "data")  # copy2: sizes and modification times kept
    assert cache_key(files(copy), copy, 32) == cache_key(files(images), images, 32)


def tensors() -> dict[str, torch.Tensor]:
    images = torch.arange(2 * 3 * 4 * 4, dtype=torch.uint8).reshape(2, 3, 4, 4)  # two 4x4 RGB images
    return {"images": images, "labels": torch.tensor([0, 1])}


def test_a_cache_file_is_built_once_then_read_back(tmp_path: Path) -> None:
    builds = []

    def build() -> dict[str, torch.Tensor]:
        builds.append(1)
        return tensors()

    path = tmp_path / "cache" / "key.pt"
    cached(path, build)
    again = cached(path, build)
    assert len(builds) == 1
    assert all(torch.equal(again[name], tensor) for name, tensor in tensors().items())
    assert [p.name for p in path.parent.iterdir()] == ["key.pt"]  # no partial file left behind


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


def flip_a_pixel(path: Path) -> None:
    content = path.read_bytes()
    at = content.rindex(bytes(range(90, 96)))  # inside the stored image tensor, so the file still unpickles
    path.write_bytes(content[:at] + bytes([content[at] ^ 0xFF]) + content[at + 1 :])


def older_format(path: Path) -> None:
    torch.save({"format": CACHE_FORMAT - 1, "tensors": tensors()}, path)


def header_not_matching(path: Path) -> None:
    torch.save({**torch.load(path, weights_only=True), "layout": {}}, path)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (truncate, "unreadable"),
        (flip_a_pixel, "checksum mismatch"),
        (older_format, f"not a format-{CACHE_FORMAT} cache file"),
        (header_not_matching, "shapes or types differ"),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_a_damaged_file_is_named_in_one_warning_and_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: Callable[[Path], None], reason: str
) -> None:
    path = tmp_path / "key.pt"
    write_checked(path, tensors())
    damage(path)
    with pytest.raises(CacheDamaged, match=reason):
        read_checked(path)
    with caplog.at_level(logging.WARNING, logger="fruitlab.data.cache"):
        rebuilt = cached(path, tensors)
    (warning,) = caplog.records
    assert str(path) in warning.getMessage() and "rebuilding" in warning.getMessage()
    assert torch.equal(rebuilt["images"], tensors()["images"])
    assert torch.equal(read_checked(path)["images"], tensors()["images"])
