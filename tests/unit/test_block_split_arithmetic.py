"""The frame-block split's arithmetic on synthetic frame numbers: each class's share, contiguous blocks, the gap
kept empty on both sides, frames shared by several videos of a class, and the seed."""

import numpy as np
import pytest

from fruitlab.data.splits import block_split, split_indices
from fruitlab.errors import ConfigError


def one_class(frames: list[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    frames = np.asarray(frames)
    return np.zeros(len(frames), dtype=int), frames


def runs_of(frames: np.ndarray) -> int:
    """How many contiguous ranges the sorted distinct frame numbers form."""
    distinct = np.unique(frames)
    return int(1 + np.count_nonzero(np.diff(distinct) > 1))


def test_validation_is_the_classs_share_in_at_most_blocks_contiguous_ranges() -> None:
    labels, frames = one_class(range(100))
    train, val = block_split(labels, frames, val_fraction=0.2, seed=0, blocks=4, gap=0)
    # 100 frames cut into round(4 / 0.2) = 20 segments of 5; 4 of them are validation
    assert len(val) == 20
    assert runs_of(frames[val]) <= 4
    assert sorted([*train, *val]) == list(range(100))  # gap 0: every image is in one set


def test_the_gap_keeps_training_frames_away_from_validation_frames_and_drops_only_those() -> None:
    labels, frames = one_class(range(200))
    gap = 3
    train, val = block_split(labels, frames, val_fraction=0.1, seed=5, blocks=2, gap=gap)
    distance = np.abs(frames[:, None] - frames[val][None, :]).min(axis=1)
    dropped = np.setdiff1d(np.arange(200), np.concatenate([train, val]))
    assert np.intersect1d(train, val).size == 0
    assert (distance[train] > gap).all()
    assert ((distance[dropped] >= 1) & (distance[dropped] <= gap)).all()  # nothing farther is thrown away
    assert len(dropped) <= 2 * gap * 2  # at most `gap` frames on each side of each of the 2 blocks


def test_each_class_keeps_its_own_share() -> None:
    labels = np.repeat([0, 1, 2], [100, 50, 40])
    frames = np.concatenate([np.arange(100), np.arange(50), np.arange(40)])
    train, val = block_split(labels, frames, val_fraction=0.2, seed=1, blocks=2, gap=1)
    assert np.bincount(labels[val]).tolist() == [20, 10, 8]
    assert set(labels[train]) == {0, 1, 2}


def test_videos_sharing_frame_numbers_put_both_copies_of_a_frame_on_the_same_side() -> None:
    labels, frames = one_class(np.concatenate([np.arange(50), np.arange(50)]))  # 123_100.jpg and r_123_100.jpg
    train, val = block_split(labels, frames, val_fraction=0.2, seed=3, blocks=2, gap=0)
    assert len(val) == 20  # 10 frame numbers, each from both videos
    assert np.intersect1d(frames[train], frames[val]).size == 0


def test_the_split_is_seeded() -> None:
    labels, frames = one_class(range(300))
    first = block_split(labels, frames, 0.2, seed=7)
    again = block_split(labels, frames, 0.2, seed=7)
    other = block_split(labels, frames, 0.2, seed=8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[1], other[1])


@pytest.mark.parametrize(("blocks", "gap"), [(0, 2), (4, -1)])
def test_no_block_or_a_negative_gap_is_refused(blocks: int, gap: int) -> None:
    labels, frames = one_class(range(20))
    with pytest.raises(ConfigError, match="val_blocks >= 1 and val_gap >= 0"):
        block_split(labels, frames, 0.2, seed=0, blocks=blocks, gap=gap)


def test_split_indices_reads_frames_from_file_names() -> None:
    names = [f"{prefix}{frame}_100.jpg" for prefix in ("", "r_") for frame in range(40)]
    labels = np.zeros(len(names), dtype=int)
    train, val = split_indices("blocks", labels, names, 0.25, seed=2, blocks=2, gap=0)
    assert len(val) == 20 and len(train) == 60
