"""Decode-once tensor cache: images are decoded and resized a single time and kept as uint8 tensors on disk,
so later epochs and later runs never decode a JPEG again."""

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from fruitlab.errors import DataError

CACHE_FORMAT = 1  # bump when the cached layout or the decoding changes


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


def cached(path: Path, build: Callable[[], dict]) -> dict:
    """Load the tensors saved at `path`, or build and save them atomically (safe with concurrent workers)."""
    if path.exists():
        return torch.load(path, weights_only=True, mmap=True)  # pages in on use: no copy of a large set
    value = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    torch.save(value, partial)
    os.replace(partial, path)
    return value
