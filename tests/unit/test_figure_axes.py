"""The axis rules of the figures: a log scale only over decades and then without labelled minor ticks, one value
shared by all runs told apart from values to compare, axes that give a single point room, and checks placed at
fractional epochs."""

import math

import numpy as np
import pytest
from matplotlib import pyplot as plt
from matplotlib.ticker import NullFormatter

from fruitlab.plotting import (
    all_identical,
    compact_number,
    curves_of,
    epoch_positions,
    learning_curves,
    padded_limits,
    set_value_scale,
    spans_decades,
)


@pytest.mark.parametrize(
    ("values", "log"),
    [
        ([1.6, 2.9], False),  # latencies of one model: a linear axis
        ([62_006, 62_006], False),
        ([62_006, 1_060_138], True),  # 17 times: more than a decade
        ([0.5, 4.9], False),  # just under a decade
        ([0.0, 10.0, 200.0], False),  # a zero has no place on a log axis
        ([math.nan, 1.0, 50.0], True),  # missing values are ignored
        ([3.0], False),
    ],
)
def test_a_log_scale_only_where_positive_values_span_more_than_a_decade(values: list[float], log: bool) -> None:
    assert spans_decades(values) is log


def test_identical_values_are_told_apart_from_values_to_compare() -> None:
    assert all_identical([62_006.0, 62_006.0, math.nan])
    assert not all_identical([62_006.0, 62_007.0])
    assert not all_identical([5.0])  # one run: nothing shared to say
    assert not all_identical([math.nan, math.nan])


def test_a_log_axis_labels_powers_of_ten_only() -> None:
    fig, ax = plt.subplots()
    values = [0.3, 1.6, 2.9, 147.0]
    ax.barh(range(len(values)), values)
    set_value_scale(ax, values)
    fig.canvas.draw()
    assert ax.get_xscale() == "log" and isinstance(ax.xaxis.get_minor_formatter(), NullFormatter)
    assert all(label.get_text() == "" for label in ax.xaxis.get_minorticklabels())
    shown = {label.get_text() for label in ax.xaxis.get_majorticklabels() if label.get_text()}
    assert {"1", "10", "100"} <= shown
    plt.close(fig)


def test_close_values_get_a_linear_axis_from_zero() -> None:
    fig, ax = plt.subplots()
    ax.barh([0, 1], [1.6, 2.9])
    set_value_scale(ax, [1.6, 2.9])
    assert ax.get_xscale() == "linear" and ax.get_xlim()[0] == 0
    plt.close(fig)


@pytest.mark.parametrize(
    ("value", "text"), [(1500, "1.5k"), (62_006, "62k"), (1_060_138, "1.06M"), (0.0123, "0.0123"), (0, "0")]
)
def test_tick_labels_are_compact(value: float, text: str) -> None:
    assert compact_number(value) == text


def test_one_value_gets_an_axis_of_at_least_the_minimum_span_within_the_bounds() -> None:
    low, high = padded_limits([1.0], min_span=0.1, floor=0, ceiling=1)
    assert high - low >= 0.1 and low < 1.0 < high <= 1.01  # not 0.96 to 1.04 around the value
    low, high = padded_limits([0.02], min_span=0.1, floor=0, ceiling=1)
    assert low < 0 < 0.02 < high and high - low >= 0.1
    assert padded_limits([0.2, 0.9], min_span=0.1) == pytest.approx((0.2 - 0.035, 0.9 + 0.035))


def test_checks_fall_at_fractional_epochs_and_epoch_metrics_at_epoch_ends() -> None:
    # checks_per_epoch=4: check k of epoch e is step 4e + k
    assert list(epoch_positions([0, 1, 2, 3, 4, 7], 4)) == [0.25, 0.5, 0.75, 1.0, 1.25, 2.0]
    assert list(epoch_positions([0, 1, 2])) == [1.0, 2.0, 3.0]


def test_validation_is_drawn_at_the_checks_when_the_run_logged_them() -> None:
    history = {
        "train_acc": [(0, 0.5), (1, 0.8)],
        "val_acc": [(0, 0.6), (1, 0.9)],
        "check_val_acc": [(step, 0.1 * step) for step in range(8)],
    }
    (train, validation) = curves_of(history, "acc", checks_per_epoch=4)
    assert train == ("train", history["train_acc"], 1)
    assert validation == ("val", history["check_val_acc"], 4)
    assert curves_of(history, "acc", checks_per_epoch=1)[1] == ("val", history["val_acc"], 1)


def test_a_one_epoch_run_is_a_marker_on_readable_axes() -> None:
    fig = learning_curves({"": {"train_loss": [(0, 0.3)], "val_loss": [(0, 0.25)], "val_acc": [(0, 1.0)]}})
    loss, accuracy = fig.axes[:2]
    low, high = accuracy.get_ylim()
    assert high - low >= 0.1 and high <= 1.01
    assert loss.get_ylim()[0] >= -0.1 and loss.get_xlim()[0] == 0
    assert [line.get_marker() for line in accuracy.get_lines()] == ["o"]
    train, validation = loss.get_lines()  # single points: told apart by their markers
    assert train.get_markerfacecolor() != validation.get_markerfacecolor()
    plt.close(fig)


def test_curves_of_several_runs_share_one_legend_with_a_colour_per_run() -> None:
    history = {"train_loss": [(0, 1.0), (1, 0.5)], "val_loss": [(0, 1.1), (1, 0.6)]}
    fig = learning_curves({"a": history, "b": history})
    (legend,) = fig.legends
    assert [text.get_text() for text in legend.get_texts()] == ["a", "b", "train", "val"]
    colours = {line.get_color() for line in fig.axes[0].get_lines()}
    assert len(colours) == 2 and np.isfinite(fig.axes[0].get_ylim()).all()
    plt.close(fig)
