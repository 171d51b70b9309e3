"""The decode cache's integrity: a truncated or altered cache file is detected, reported in one warning line and
rebuilt from the images (never trained on); two processes building the same cache leave one intact file."""

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from conftest import REPO

from fruitlab.data.cache import read_checked
from fruitlab.data.imagefolder import ImageFolderDataModule

SIZE = 16


def training_images(cache_dir: Path) -> torch.Tensor:
    datamodule = ImageFolderDataModule(cache_dir=cache_dir, image_size=SIZE, seed=0)
    datamodule.setup()
    return torch.cat([datamodule.train.images, datamodule.val.images])


def cache_files(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.glob("imagefolder-*.pt"))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def overwrite_20kb(path: Path) -> None:
    """20 KB of other bytes inside the file, as a faulty disk or a stray writer would leave them."""
    data = bytearray(path.read_bytes())
    start = len(data) // 3
    data[start : start + 20_000] = os.urandom(20_000)
    path.write_bytes(bytes(data))


def flip_one_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # inside the pixels: the file still loads, only the checksum can tell
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [truncate, overwrite_20kb, flip_one_bit])
def test_a_damaged_cache_is_reported_in_one_line_and_rebuilt(
    tmp_path: Path, damage: Callable[[Path], None], caplog: pytest.LogCaptureFixture
) -> None:
    decoded = training_images(tmp_path)
    largest = max(cache_files(tmp_path), key=lambda p: p.stat().st_size)
    damage(largest)

    with caplog.at_level(logging.WARNING, logger="fruitlab.data.cache"):
        assert torch.equal(training_images(tmp_path), decoded)
    (record,) = caplog.records
    assert str(largest) in record.getMessage() and "rebuilding it from the images" in record.getMessage()
    assert "\n" not in record.getMessage()
    read_checked(largest)  # replaced by an intact file


BUILD = f"""
import sys
from fruitlab.data.imagefolder import ImageFolderDataModule
datamodule = ImageFolderDataModule(cache_dir=sys.argv[1], image_size={SIZE})
datamodule.setup()
print(len(datamodule.train.labels))
"""


def test_two_processes_building_one_cache_leave_it_intact(tmp_path: Path) -> None:
    builders = [
        subprocess.Popen([sys.executable, "-c", BUILD, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [builder.communicate(timeout=300)[0] for builder in builders]
    assert [b.returncode for b in builders] == [0, 0] and outputs[0] == outputs[1]
    assert len(cache_files(tmp_path)) == 2 and not list(tmp_path.glob("*.partial"))
    for path in cache_files(tmp_path):
        read_checked(path)
