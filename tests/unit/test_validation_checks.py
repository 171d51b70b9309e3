"""Where the validation checks of `objective.checks_per_epoch` fall in an epoch and the global step each one is
reported at; the schema's range for it. Pure arithmetic and composition: no training."""

import pytest

from fruitlab.config import compose_config, validate_config
from fruitlab.data.base import PartSampler
from fruitlab.errors import ConfigError
from fruitlab.training.checks import check_batches, check_step


@pytest.mark.parametrize(
    ("batches", "checks", "expected"),
    [
        (64, 1, [64]),
        (64, 4, [16, 32, 48, 64]),
        (10, 4, [3, 5, 8, 10]),  # Lightning's fraction 0.25 would validate at 2, 4, 6, 8, 10: five times
        (11, 4, [3, 6, 9, 11]),  # ... and at 2, 4, 6, 8, 10: not at the epoch's end
        (5, 4, [2, 3, 4, 5]),
        (2, 4, [1, 2]),  # at most one check per batch
    ],
)
def test_checks_are_evenly_spread_and_the_last_ends_the_epoch(batches: int, checks: int, expected: list[int]) -> None:
    assert check_batches(batches, checks) == expected


def test_one_check_per_epoch_is_reported_at_the_epoch() -> None:
    assert [check_step(epoch, 64, 64, 1) for epoch in range(3)] == [0, 1, 2]


def test_checks_count_on_over_epochs() -> None:
    steps = [check_step(epoch, done, 10, 4) for epoch in range(2) for done in check_batches(10, 4)]
    assert steps == list(range(8))


def test_a_validation_off_the_schedule_counts_as_the_next_check() -> None:
    assert check_step(1, 4, 10, 4) == 4 + 1  # after batch 4 of epoch 1: the check due at batch 5


def test_an_epoch_shorter_than_its_checks_steps_by_the_checks_it_has() -> None:
    assert [check_step(epoch, done, 2, 4) for epoch in range(2) for done in (1, 2)] == [0, 1, 2, 3]


def test_checks_per_epoch_defaults_to_one() -> None:
    assert compose_config([]).objective.checks_per_epoch == 1


@pytest.mark.parametrize("value", ["0", "101"])
def test_checks_per_epoch_out_of_range_is_refused_in_one_line(value: str) -> None:
    with pytest.raises(ConfigError) as refused:
        validate_config(compose_config([f"objective.checks_per_epoch={value}"]))
    message = str(refused.value)
    assert message.startswith(f"objective.checks_per_epoch={value} is not allowed: give a whole number in [1, 100]")
    assert "\n" not in message


def test_the_validation_sampler_gives_the_whole_split_in_order_until_a_part_is_asked_for() -> None:
    sampler = PartSampler(100, seed=7)
    assert list(sampler) == list(range(100)) and len(sampler) == 100
    sampler.part = 25
    part = list(sampler)
    assert len(part) == len(sampler) == 25 and part == sorted(set(part)) and part != list(range(25))
    assert part == list(sampler)  # the same part at every check


def test_the_part_is_drawn_by_the_seed() -> None:
    parts = []
    for seed in (7, 7, 8):
        sampler = PartSampler(100, seed)
        sampler.part = 25
        parts.append(list(sampler))
    assert parts[0] == parts[1] != parts[2]
