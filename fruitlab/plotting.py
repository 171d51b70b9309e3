"""Figures a user looks at: learning curves, confusion matrices, image and prediction grids. A leaf: it knows
nothing of runs, stores or training."""

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in CI

import numpy as np
import torch
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

History = Mapping[str, Sequence[tuple[int, float]]]


def spread_sample(count: int, total: int) -> torch.Tensor:
    """`count` indices spread evenly over `total` items (covers every class of a class-sorted test set)."""
    return torch.linspace(0, total - 1, min(count, total)).round().long()


def learning_curves(runs: Mapping[str, History]) -> Figure:
    """Loss and accuracy per epoch, train (dashed) vs validation (solid), for one or several runs."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, quantity in zip(axes, ("loss", "acc"), strict=True):
        for index, (label, history) in enumerate(runs.items()):
            color = f"C{index % 10}"  # one colour per run: its train and validation curves pair up
            for stage, style in (("train", "--"), ("val", "-")):
                points = history.get(f"{stage}_{quantity}", [])
                if points:
                    epochs, values = zip(*points, strict=True)
                    name = f"{label} {stage}".strip()
                    ax.plot(np.asarray(epochs) + 1, values, style, color=color, marker="o", markersize=3, label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel("cross-entropy loss" if quantity == "loss" else "accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


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
