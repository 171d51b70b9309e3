"""Test-set evaluation of a trained classifier: predictions and the figures and numbers made from them."""

import mlflow
import numpy as np
import torch
from matplotlib import pyplot as plt
from sklearn.metrics import confusion_matrix
from torch import nn
from torch.utils.data import DataLoader

from fruitlab.reporting.figures import confusion_matrix_figure, prediction_grid
from fruitlab.training.module import to_unit_float


@torch.inference_mode()
def predict(classifier: nn.Module, loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    """(probabilities, labels) over a loader, on the classifier's device, returned on the CPU."""
    classifier.eval()
    device = next(classifier.parameters()).device
    probabilities, labels = [], []
    for images, batch_labels in loader:
        probabilities.append(torch.softmax(classifier(to_unit_float(images.to(device))), dim=1).cpu())
        labels.append(batch_labels)
    return torch.cat(probabilities), torch.cat(labels)


def spread_sample(count: int, total: int) -> torch.Tensor:
    """`count` indices spread evenly over `total` items (covers every class of a class-sorted test set)."""
    return torch.linspace(0, total - 1, min(count, total)).round().long()


def log_test_figures(
    images: torch.Tensor, labels: torch.Tensor, probabilities: torch.Tensor, classes: list[str]
) -> np.ndarray:
    """Log the confusion matrix (counts and normalised) and a 16-image prediction grid; return the matrix."""
    predictions = probabilities.argmax(dim=1)
    matrix = confusion_matrix(labels.numpy(), predictions.numpy(), labels=np.arange(len(classes)))
    sample = spread_sample(16, len(labels))
    figures = {
        "plots/confusion_matrix.png": confusion_matrix_figure(matrix, classes),
        "plots/confusion_matrix_normalized.png": confusion_matrix_figure(matrix, classes, normalize=True),
        "plots/test_predictions.png": prediction_grid(
            images[sample], labels[sample], predictions[sample], classes
        ),
    }
    for path, figure in figures.items():
        mlflow.log_figure(figure, path)
        plt.close(figure)
    return matrix
