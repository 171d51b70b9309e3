"""Train/validation splits of a training set: indices of the images to train on and to validate on.

- `random`: a seeded, stratified random split (sklearn's train_test_split).
- `blocks`: for datasets whose files are consecutive video frames (Fruits-360: `123_100.jpg`, `r_123_100.jpg`,
  `r2_123_100.jpg`; the number before `_100` is the frame), per class, seeded contiguous ranges of frame numbers
  go to validation, and training keeps no image within `gap` frames of them. A random split puts the neighbours
  of each validation frame (near-duplicates) in training, so its validation error says little about new images.
"""

import re
from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import train_test_split

from fruitlab.errors import ConfigError, DataError

SPLITS = ("random", "blocks")
# <optional video prefix such as r_, r2_><frame>_<size>.<ext>, or <frame>.<ext>
FRAME_NAME = re.compile(r"^(?:[a-z]+\d*_)?(\d+)(?:_\d+)?\.[A-Za-z]+$")


def frame_number(name: str) -> int:
    """The frame number in a Fruits-360 file name: 'r_123_100.jpg' -> 123."""
    match = FRAME_NAME.match(name)
    if match is None:
        raise DataError(
            f"cannot read a frame number from the file name '{name}' (expected e.g. 123_100.jpg or r_123_100.jpg): "
            "use data.val_split=random for this dataset"
        )
    return int(match.group(1))


def random_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified random split: (train indices, validation indices)."""
    return train_test_split(np.arange(len(labels)), test_size=val_fraction, stratify=labels, random_state=seed)


def _held_out_frames(frames: np.ndarray, val_fraction: float, blocks: int, rng: np.random.Generator) -> np.ndarray:
    """Frame numbers of `blocks` seeded contiguous ranges holding about `val_fraction` of one class's images."""
    # Cut the class's images, ordered by frame, into segments of equal size, `blocks` of which make val_fraction
    # (several videos of a class share frame numbers); pick that many at random.
    segments = np.array_split(np.sort(frames), max(blocks, round(blocks / val_fraction)))
    chosen = rng.choice(len(segments), size=blocks, replace=False)
    return np.unique(np.concatenate([segments[i] for i in chosen]))


def block_split(
    labels: np.ndarray, frames: np.ndarray, val_fraction: float, seed: int, blocks: int = 4, gap: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Per class, `blocks` contiguous ranges of frame numbers (about `val_fraction` of its images) are
    validation; images within `gap` frames of a validation frame are in neither set. Seeded."""
    if blocks < 1 or gap < 0:
        raise ConfigError(f"data.val_blocks={blocks}, data.val_gap={gap}: need val_blocks >= 1 and val_gap >= 0")
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        class_frames = frames[members]
        held = _held_out_frames(class_frames, val_fraction, blocks, rng)
        in_val = np.isin(class_frames, held)
        # distance of every frame of the class to the nearest validation frame
        distance = np.abs(class_frames[:, None] - held[None, :]).min(axis=1)
        val.append(members[in_val])
        train.append(members[~in_val & (distance > gap)])
    return np.concatenate(train), np.concatenate(val)


def split_indices(
    split: str,
    labels: np.ndarray,
    file_names: Sequence[str] | None,
    val_fraction: float,
    seed: int,
    blocks: int = 4,
    gap: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices) of a training set by the strategy `split` (one of SPLITS)."""
    if split == "random":
        return random_split(labels, val_fraction, seed)
    if split != "blocks":
        raise ConfigError(f"data.val_split={split}: use one of {', '.join(SPLITS)}")
    if file_names is None:
        raise ConfigError("data.val_split=blocks needs image files named by frame number: use data.val_split=random")
    frames = np.array([frame_number(name) for name in file_names])
    return block_split(labels, frames, val_fraction, seed, blocks, gap)
