"""Explore a dataset (`fruitlab eda`), recorded as an MLflow run of its own.

Sample images per class, class counts per split, and the seed paper's PCA views of the grayscale standardised
pixels: the cumulative explained variance, the first principal components as images ("eigenfruits") and
fruits reconstructed from a few components. The data and the store come from the same Hydra config as
training (`data=...`, `data.root=PATH`, `tracking.uri=...`), so the PCA is the one the FFNN baseline sees.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from matplotlib.figure import Figure
    from omegaconf import DictConfig

    from fruitlab.data.base import TensorImageDataModule
    from fruitlab.data.pca import PCAFit

SAMPLES_PER_CLASS = 6
EIGENFRUITS = 16
RECONSTRUCTED_FRUITS = 4
# Component counts at which the test-set reconstruction error is logged (step = k); capped by the data.
ERROR_COUNTS = (1, 5, 10, 20, 50, 100, 170, 210, 300, 500, 1024)
VARIANCE_LEVELS = (0.90, 0.95, 0.99)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] floats -> uint8, for image_grid."""
    return (images.clamp(0, 1) * 255).round().byte()


def samples_figure(datamodule: TensorImageDataModule) -> Figure:
    """The first training images of each class, one class per row."""
    import torch

    from fruitlab.plotting import image_grid

    images, titles = [], []
    for label, name in enumerate(datamodule.classes):
        chosen = (datamodule.train.labels == label).nonzero().flatten()[:SAMPLES_PER_CLASS]
        images.append(datamodule.train.images[chosen])
        titles += [name] + [""] * (len(chosen) - 1)
    return image_grid(torch.cat(images), titles, columns=SAMPLES_PER_CLASS)


def class_counts(datamodule: TensorImageDataModule) -> dict[str, list[int]]:
    """{split: images per class} for train, validation and test."""
    splits = {"train": datamodule.train, "validation": datamodule.val, "test": datamodule.test}
    return {split: data.labels.bincount(minlength=datamodule.num_classes).tolist() for split, data in splits.items()}


def class_counts_figure(classes: list[str], counts: dict[str, list[int]]) -> Figure:
    import numpy as np
    from matplotlib import pyplot as plt

    positions = np.arange(len(classes))
    width = 0.8 / len(counts)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.7 * len(classes) + 2), 4))
    for index, (split, values) in enumerate(counts.items()):
        ax.bar(positions + (index - (len(counts) - 1) / 2) * width, values, width, label=split)
    ax.set_xticks(positions, classes, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("images")
    ax.set_title("images per class")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def explained_variance_figure(cumulative: torch.Tensor, marked: list[int]) -> Figure:
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    counts = range(1, len(cumulative) + 1)
    ax.plot(counts, cumulative.numpy())
    for k in marked:
        if k <= len(cumulative):
            value = float(cumulative[k - 1])
            ax.plot(k, value, "o", color="tab:red")
            ax.annotate(f"{k}: {value:.1%}", (k, value), textcoords="offset points", xytext=(6, -12), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("principal components")
    ax.set_ylabel("cumulative explained variance")
    ax.set_title("grayscale, standardised pixels (training split)")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def eigenfruits_figure(fit: PCAFit, side: int) -> Figure:
    """The first principal components as images, each scaled to its own range."""
    from fruitlab.plotting import image_grid

    components = fit.components[:EIGENFRUITS]
    low, high = components.min(dim=1, keepdim=True).values, components.max(dim=1, keepdim=True).values
    scaled = ((components - low) / (high - low)).reshape(-1, 1, side, side)
    titles = [f"PC {i + 1} ({fit.explained_variance_ratio[i]:.1%})" for i in range(len(components))]
    return image_grid(to_uint8(scaled), titles)


def reconstructions_figure(images: torch.Tensor, fit: PCAFit, counts: list[int]) -> Figure:
    """Each fruit: the original, its grayscale, then its reconstruction from each count of components."""
    import torch

    from fruitlab.data.pca import grayscale
    from fruitlab.plotting import image_grid

    side = images.shape[-1]
    gray = grayscale(images)
    columns = [images, to_uint8(gray.reshape(-1, 1, side, side)).expand(-1, 3, -1, -1)]
    for k in counts:
        rebuilt = fit.reconstruct(fit.project(gray, k)).reshape(-1, 1, side, side)
        columns.append(to_uint8(rebuilt).expand(-1, 3, -1, -1))
    grid = torch.stack(columns, dim=1).flatten(0, 1)  # row by row: one fruit per row
    titles = ["original", "grayscale", *(f"{k} components" for k in counts)] * len(images)
    return image_grid(grid, titles, columns=len(columns))


def reconstruction_errors(fit: PCAFit, images: torch.Tensor) -> dict[int, float]:
    """Mean squared error of the standardised gray pixels rebuilt from k components, for each logged k.
    Nested orthogonal projections: it cannot grow with k."""
    from fruitlab.data.pca import grayscale

    standardized = fit.standardize(grayscale(images))
    errors = {}
    for k in (k for k in ERROR_COUNTS if k <= len(fit.components)):
        scores = standardized @ fit.components[:k].T
        errors[k] = float(((scores @ fit.components[:k] - standardized) ** 2).mean())
    return errors


def explore(cfg: DictConfig, counts: list[int], out: Path) -> str:
    """Write the figures to `out`, record them and the numbers as an MLflow run; return its id."""
    from matplotlib import pyplot as plt
    from omegaconf import OmegaConf

    from fruitlab.data import build_datamodule
    from fruitlab.data.pca import fit_pca
    from fruitlab.plotting import spread_sample
    from fruitlab.tracking.runs import flatten, tracked_run
    from fruitlab.tracking.store import Store

    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    side = datamodule.image_shape[-1]
    fit = fit_pca(datamodule.train.images, side * side, cfg.seed)
    cumulative = fit.explained_variance_ratio.cumsum(0)
    counts_per_split = class_counts(datamodule)
    fruits = datamodule.test.images[spread_sample(RECONSTRUCTED_FRUITS, len(datamodule.test.labels))]
    figures = {
        "samples.png": samples_figure(datamodule),
        "class_counts.png": class_counts_figure(datamodule.classes, counts_per_split),
        "explained_variance.png": explained_variance_figure(cumulative, counts),
        "eigenfruits.png": eigenfruits_figure(fit, side),
        "reconstructions.png": reconstructions_figure(fruits, fit, counts),
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, figure in figures.items():
        figure.savefig(out / name, dpi=100)
        plt.close(figure)

    store = Store.open(cfg.tracking.uri)
    experiment_id = store.ensure_experiment(cfg.tracking.experiment or cfg.data.name)
    with tracked_run(store, experiment_id, f"eda-{cfg.data.name}") as recorder:
        recorder.set_tags({"fruitlab.kind": "eda"})
        data_settings = flatten({"data": OmegaConf.to_container(cfg.data, resolve=True)})
        recorder.log_params({**data_settings, **datamodule.data_params()})
        recorder.log_dict({"classes": datamodule.classes, **counts_per_split}, "eda/class_counts.json")
        recorder.log_metrics(
            {
                "num_classes": datamodule.num_classes,
                **{f"{split}_size": sum(values) for split, values in counts_per_split.items()},
                **{
                    f"components_for_{level * 100:g}pct_variance": int((cumulative < level).sum()) + 1
                    for level in VARIANCE_LEVELS
                    if cumulative[-1] >= level
                },
            }
        )
        for k, error in reconstruction_errors(fit, datamodule.test.images).items():
            recorder.log_metrics({"reconstruction_mse": error, "explained_variance": float(cumulative[k - 1])}, step=k)
        recorder.log_artifacts(out, "eda")
    return recorder.run_id
