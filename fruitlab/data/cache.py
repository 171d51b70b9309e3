"""Decode-once tensor cache: images are decoded and resized a single time and kept as uint8 tensors on disk,
so later epochs and later runs never decode a JPEG again.

A cache file carries its format version, the shape and type of every tensor and a SHA-256 of their bytes. A file
that is truncated, altered or of another format is reported in one warning line and rebuilt from the images; a
file is written under a temporary name and renamed into place, so concurrent builders never see a partial one.
"""

import hashlib
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from fruitlab.errors import DataError

CACHE_FORMAT = 2  # bump when the cached layout or the decoding changes

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    return Path(os.environ.get("FRUITLAB_CACHE", Path.home() / ".cache" / "fruitlab"))


def to_rgb_array(image: Image.Image, image_size: int) -> np.ndarray:
    """A PIL image as the (H, W, 3) uint8 array a model sees: RGB, `image_size` pixels a side."""
    rgb = image.convert("RGB").resize((image_size, image_size), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8)


def decode_image(path: Path, image_size: int) -> np.ndarray:
    """One image file as an (H, W, 3) uint8 array of `image_size` pixels a side."""
    try:
        with Image.open(path) as image:
            return to_rgb_array(image, image_size)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise DataError(f"cannot read image {path}: {error}. Remove or replace this file.") from error


def decode_images(paths: list[Path], image_size: int) -> torch.Tensor:
    """Decode `paths` in parallel threads (PIL releases the GIL) into an (N, 3, H, W) uint8 tensor."""
    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        arrays = list(pool.map(lambda p: decode_image(p, image_size), paths))
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def cache_key(paths: list[Path], root: Path, *parts: object) -> str:
    """Digest of the file list (relative names, sizes, modification times) and the decoding settings."""
    digest = hashlib.sha256(repr((CACHE_FORMAT, *parts)).encode())
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def cached(path: Path, build: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The tensors saved at `path` when the file is intact, else built by `build()` and saved atomically (safe
    with concurrent workers). A damaged file is reported in one warning line and replaced."""
    if path.exists():
        try:
            return read_checked(path)
        except CacheDamaged as damage:
            log.warning("cache file %s is damaged (%s); rebuilding it from the images", path, damage)
    value = build()
    write_checked(path, value)
    return value


class CacheDamaged(Exception):
    """A cache file cannot be read back as it was written."""


def read_checked(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a cache file, after checking its format version, shapes, types and checksum."""
    try:
        content = torch.load(path, weights_only=True, mmap=True)  # pages in on use: no copy of a large set
    except Exception as error:  # truncated or altered bytes surface as any of zip, pickle or storage errors
        raise CacheDamaged(f"unreadable: {type(error).__name__}") from error
    if not isinstance(content, dict) or content.get("format") != CACHE_FORMAT:
        raise CacheDamaged(f"not a format-{CACHE_FORMAT} cache file")
    tensors = content.get("tensors")
    if not isinstance(tensors, dict) or content.get("layout") != layout(tensors):
        raise CacheDamaged("its tensors' shapes or types differ from its header")
    if content.get("sha256") != checksum(tensors):
        raise CacheDamaged("checksum mismatch")
    return tensors


def write_checked(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Save `tensors` with their header under a temporary name, then rename it into place (atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {"format": CACHE_FORMAT, "layout": layout(tensors), "sha256": checksum(tensors), "tensors": tensors}
    partial = path.with_suffix(f".{os.getpid()}.partial")
    torch.save(content, partial)
    os.replace(partial, path)


def layout(tensors: dict[str, torch.Tensor]) -> dict[str, list]:
    """Each tensor's shape and type, by name."""
    return {name: [list(t.shape), str(t.dtype)] for name, t in sorted(tensors.items())}


def checksum(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(tensors.items()):
        digest.update(name.encode())
        digest.update(tensor.contiguous().numpy().data)  # the bytes in place, without a copy
    return digest.hexdigest()
