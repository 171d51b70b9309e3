"""The test scores of one prediction pass, and how many test batches a limit lets that pass run."""

import math

import pytest
import torch

from fruitlab.evaluation.held_out import held_out_scores, limited_batches


def test_scores_are_the_accuracy_and_the_mean_cross_entropy_of_the_pass() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0], [0.0, 0.0]])
    labels = torch.tensor([0, 1, 1, 0])
    scores = held_out_scores(logits, labels)
    # rows 0 and 1 are right, row 2 wrong, row 3 a tie that argmax gives to class 0 (right)
    assert scores["test_acc"] == pytest.approx(0.75)
    assert scores["test_zero_one_loss"] == pytest.approx(0.25)
    losses = [math.log(1 + math.exp(-2)), math.log(1 + math.exp(-1)), math.log(1 + math.exp(3)), math.log(2)]
    assert scores["test_loss"] == pytest.approx(sum(losses) / 4)


@pytest.mark.parametrize(
    ("limit", "batches", "allowed"),
    [(1.0, 7, 7), (0.5, 7, 3), (0.01, 7, 1), (2, 7, 2), (20, 7, 7), (1, 7, 1)],
)
def test_an_int_limit_is_a_count_and_a_float_a_fraction_of_at_least_one_batch(
    limit: int | float, batches: int, allowed: int
) -> None:
    assert limited_batches(limit, batches) == allowed
