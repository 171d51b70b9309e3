"""Figures a user looks at: learning curves, confusion matrices, image and prediction grids. A leaf: it knows
nothing of runs, stores or training."""

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in CI

import numpy as np
import torch
from matplotlib import pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

History = Mapping[str, Sequence[tuple[int, float]]]
CHECK_PREFIX = "check_"  # the validation metrics logged at each check of an epoch: check_val_loss, check_val_acc
LOG_SCALE_DECADES = 1.0  # a log axis only for values spanning more than this many decades
# Told apart by their markers too: a one-epoch run's curves are single points, with no line to see.
STAGE_STYLES = {"train": {"linestyle": "--", "markerfacecolor": "white"}, "val": {"linestyle": "-"}}
CHECKS_NOTE = (
    "validation at each check: inside an epoch on a fixed 1/N of the validation split (N = {} checks per epoch), "
    "at the epoch's end on all of it; training metrics at epoch ends"
)


def spread_sample(count: int, total: int) -> torch.Tensor:
    """`count` indices spread evenly over `total` items (covers every class of a class-sorted test set)."""
    return torch.linspace(0, total - 1, min(count, total)).round().long()


def epoch_positions(steps: Sequence[int], checks_per_epoch: int = 1) -> np.ndarray:
    """Where in training, in epochs, the metrics logged at `steps` were taken: an epoch's metric (step = epoch)
    at the epoch's end, check k of epoch e (step e·N + k, N checks per epoch) at e + (k + 1)/N."""
    return (np.asarray(steps, dtype=float) + 1) / checks_per_epoch


def padded_limits(
    values: Sequence[float], min_span: float, floor: float | None = None, ceiling: float | None = None
) -> tuple[float, float]:
    """Axis limits around `values` spanning at least `min_span` (one value, or several close ones, is not drawn
    on an axis a hair wide), kept within [floor, ceiling] by shifting, plus a margin of 5% of the span."""
    low, high = float(np.min(values)), float(np.max(values))
    span = max(high - low, min_span)
    low, high = (low + high - span) / 2, (low + high + span) / 2
    if ceiling is not None and high > ceiling:
        low, high = low - (high - ceiling), ceiling
    if floor is not None and low < floor:
        low, high = floor, high + (floor - low)
    margin = 0.05 * span
    return low - margin, high + margin


def spans_decades(values: Sequence[float], decades: float = LOG_SCALE_DECADES) -> bool:
    """Whether the finite `values`, all positive, span more than `decades` powers of ten: what a log axis is
    for; closer values read better on a linear one."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    return finite.size > 1 and bool((finite > 0).all()) and bool(np.log10(finite.max() / finite.min()) > decades)


def all_identical(values: Sequence[float]) -> bool:
    """Whether the finite `values` (at least two) are one and the same number: nothing to compare in a chart."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    return finite.size > 1 and bool(np.isclose(finite, finite[0], rtol=1e-9, atol=0).all())


def compact_number(value: float) -> str:
    """A tick label: 3 significant digits, thousands as k, millions as M (1500 -> '1.5k', 0.0123 -> '0.0123')."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"


def set_value_scale(ax: Axes, values: Sequence[float], log: bool = True) -> None:
    """The x axis of bars of `values`: log where `log` allows it and they span decades, labelled at powers of
    ten only (labelled minor ticks overlap), else linear from 0; tick labels in `compact_number`'s form."""
    if log and spans_decades(values):
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10))
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        ax.set_xlim(left=0)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: compact_number(value)))


def learning_curves(runs: Mapping[str, History], checks_per_epoch: Mapping[str, int] | None = None) -> Figure:
    """Loss and accuracy of one or several runs (one colour each) against the epochs of training: train (dashed,
    open markers) at epoch ends, validation (solid) at each check of a run with `checks_per_epoch[label]` N > 1 and
    `check_val_*` in its history (fractional epochs), else at epoch ends. A run of one point is a marker on axes
    that give it room."""
    checks = checks_per_epoch or {}
    checked = any(n > 1 for n in checks.values())
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.3))
    for ax, quantity in zip(axes, ("loss", "acc"), strict=True):
        drawn: list[float] = []
        for index, (label, history) in enumerate(runs.items()):
            for stage, points, per_epoch in curves_of(history, quantity, checks.get(label, 1)):
                steps, values = zip(*points, strict=True)
                x = epoch_positions(steps, per_epoch)
                ax.plot(x, values, color=run_color(index), marker="o", markersize=4, **STAGE_STYLES[stage])
                drawn += [v for v in values if np.isfinite(v)]
        if drawn:
            limits = padded_limits(drawn, 0.1, 0, 1) if quantity == "acc" else padded_limits(drawn, max(drawn) / 2, 0)
            ax.set_ylim(*limits)
        ax.set_xlim(left=0)
        # Ticks at whole epochs, or at quarters and halves of one when checks fall inside epochs.
        ax.xaxis.set_major_locator(MaxNLocator(integer=not checked, steps=[1, 2, 2.5, 5, 10]))
        ax.set_xlabel("epochs of training")
        ax.set_ylabel("cross-entropy loss" if quantity == "loss" else "accuracy")
        ax.grid(alpha=0.3)
    legend = fig.legend(handles=curve_key(list(runs)), loc="center right", fontsize=8)
    if checked:
        counts = " or ".join(str(n) for n in sorted({n for n in checks.values() if n > 1}))
        fig.text(0.01, 0.01, CHECKS_NOTE.format(counts), fontsize=8, color="dimgray")
    fig.canvas.draw()  # the legend's width is known once drawn
    legend_share = legend.get_window_extent().width / fig.bbox.width
    fig.tight_layout(rect=(0, 0.05 if checked else 0, 1 - legend_share - 0.01, 1))
    return fig


def run_color(index: int) -> str:
    return f"C{index % 10}"  # one colour per run: its train and validation curves pair up


def curve_key(labels: list[str]) -> list[Line2D]:
    """Legend entries: each run's colour (none for one unnamed run), then how train and validation are drawn."""
    named = [] if labels == [""] else labels
    runs = [Line2D([], [], color=run_color(i), lw=3, label=label) for i, label in enumerate(named)]
    stages = [Line2D([], [], color="black", marker="o", label=stage, **style) for stage, style in STAGE_STYLES.items()]
    return [*runs, *stages]


def curves_of(
    history: History, quantity: str, checks_per_epoch: int
) -> list[tuple[str, Sequence[tuple[int, float]], int]]:
    """(stage, points, checks per epoch of their steps) of the curves of `quantity` a run has: train at epoch
    ends, validation at every check when they were logged, else at epoch ends."""
    curves = []
    if points := history.get(f"train_{quantity}"):
        curves.append(("train", points, 1))
    checked = history.get(f"{CHECK_PREFIX}val_{quantity}") if checks_per_epoch > 1 else None
    if checked:
        curves.append(("val", checked, checks_per_epoch))
    elif points := history.get(f"val_{quantity}"):
        curves.append(("val", points, 1))
    return curves


def confusion_matrix_figure(matrix: np.ndarray, classes: Sequence[str], normalize: bool = False) -> Figure:
    values = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1) if normalize else matrix
    size = max(5.0, 0.55 * len(classes) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(values, cmap="Blues")
    ticks = np.arange(len(classes))
    ax.set_xticks(ticks, classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(ticks, classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(classes) <= 30:
        threshold = values.max() / 2
        for (i, j), v in np.ndenumerate(values):
            text = f"{v:.2f}" if normalize else str(int(v))
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if v > threshold else "black")
    ax.set_title("test confusion matrix" + (" (row-normalised)" if normalize else ""))
    fig.tight_layout()
    return fig


def image_grid(
    images: torch.Tensor, titles: Sequence[str], colors: Sequence[str] | None = None, columns: int = 4
) -> Figure:
    """uint8 (N, C, H, W) images in a grid, each with a title (coloured, e.g. red for a mistake)."""
    rows = max(1, -(-len(images) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.8 * rows), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < len(images):
            image = images[index].permute(1, 2, 0).numpy()
            ax.imshow(image.squeeze(), cmap="gray" if image.shape[-1] == 1 else None)
            ax.set_title(titles[index], fontsize=8, color=colors[index] if colors else "black")
    fig.tight_layout()
    return fig


def prediction_grid(
    images: torch.Tensor, labels: torch.Tensor, predictions: torch.Tensor, classes: Sequence[str], count: int = 16
) -> Figure:
    """The first `count` test images with true and predicted labels; mistakes in red, marked with ✗."""
    images, labels, predictions = images[:count], labels[:count], predictions[:count]
    titles, colors = [], []
    for true, pred in zip(labels.tolist(), predictions.tolist(), strict=True):
        ok = true == pred
        titles.append(f"true: {classes[true]}\npred: {classes[pred]}{'' if ok else ' ✗'}")
        colors.append("black" if ok else "red")
    return image_grid(images, titles, colors)
