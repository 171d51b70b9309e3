"""Test-set evaluation of a trained classifier: predictions and the figures and numbers made from them."""

import csv
import io
import itertools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from torchmetrics.functional.classification import (
    multiclass_auroc,
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)

from fruitlab.models import to_unit_float
from fruitlab.plotting import confusion_matrix_figure, prediction_grid, spread_sample
from fruitlab.tracking.runs import RunRecorder


@torch.inference_mode()
def predict_logits(
    classifier: nn.Module, loader: DataLoader, batches: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, labels) over a loader (its first `batches`, or all), on the classifier's device, returned on the
    CPU."""
    classifier.eval()
    device = next(classifier.parameters()).device
    logits, labels = [], []
    for images, batch_labels in itertools.islice(loader, batches):
        logits.append(classifier(to_unit_float(images.to(device))).float().cpu())
        labels.append(batch_labels)
    return torch.cat(logits), torch.cat(labels)


def limited_batches(limit: int | float, batches: int) -> int:
    """How many of a loader's `batches` a Lightning `limit_*_batches` setting lets a loop run: an int is a count,
    a float a fraction (at least one batch)."""
    if isinstance(limit, int):
        return min(limit, batches)
    return max(1, int(batches * limit))


def predict(classifier: nn.Module, loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    """(probabilities, labels) over a loader, on the classifier's device, returned on the CPU."""
    logits, labels = predict_logits(classifier, loader)
    return torch.softmax(logits, dim=1), labels


def held_out_scores(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """test_acc, test_loss (mean cross-entropy) and test_zero_one_loss of one pass over the test set: what
    Lightning's test loop logs, whose epoch values are the same means weighted by batch size."""
    accuracy = float((logits.argmax(dim=1) == labels).float().mean())
    loss = float(F.cross_entropy(logits, labels))
    return {"test_acc": accuracy, "test_loss": loss, "test_zero_one_loss": 1.0 - accuracy}


@dataclass
class ClassificationReport:
    per_class: dict[str, torch.Tensor]  # score name -> (C,) values, plus "support"
    macro: dict[str, float]  # score name -> unweighted mean over classes
    confusion: torch.Tensor  # (C, C) counts, rows are the true classes

    def per_class_csv(self, classes: list[str]) -> str:
        columns = self.per_class.values()
        rows = [[name, *(_number(values[i]) for values in columns)] for i, name in enumerate(classes)]
        return _csv([["class", *self.per_class], *rows])

    def confusion_csv(self, classes: list[str]) -> str:
        rows = [[name, *row] for name, row in zip(classes, self.confusion.tolist(), strict=True)]
        return _csv([["true \\ predicted", *classes], *rows])


def _number(value: torch.Tensor) -> str:
    return f"{float(value):.6f}" if value.is_floating_point() else str(int(value))


def _csv(rows: list[list]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def _scores(probabilities: torch.Tensor, labels: torch.Tensor, average: str | None) -> dict[str, torch.Tensor]:
    num_classes, predictions = probabilities.shape[1], probabilities.argmax(dim=1)
    return {
        "precision": multiclass_precision(predictions, labels, num_classes, average=average),
        "recall": multiclass_recall(predictions, labels, num_classes, average=average),
        "f1": multiclass_f1_score(predictions, labels, num_classes, average=average),
        "roc_auc": multiclass_auroc(probabilities, labels, num_classes, average=average),  # one-vs-rest
    }


def classification_report(probabilities: torch.Tensor, labels: torch.Tensor) -> ClassificationReport:
    """Per-class and macro precision, recall, F1 and one-vs-rest ROC-AUC, and the confusion matrix, from
    torchmetrics. A class never predicted has precision 0 (scikit-learn's zero_division=0)."""
    num_classes = probabilities.shape[1]
    per_class = _scores(probabilities, labels, None)
    per_class["support"] = torch.bincount(labels, minlength=num_classes)
    macro = {name: float(value) for name, value in _scores(probabilities, labels, "macro").items()}
    confusion = multiclass_confusion_matrix(probabilities.argmax(dim=1), labels, num_classes)
    return ClassificationReport(per_class, macro, confusion)


def log_test_report(
    recorder: RunRecorder,
    images: torch.Tensor,
    labels: torch.Tensor,
    probabilities: torch.Tensor,
    classes: list[str],
    figures: bool = True,
) -> ClassificationReport:
    """Log the test scores (test_<score>_macro metrics, metrics/per_class.csv, metrics/confusion_matrix.csv)
    and, when `figures`, the test figures."""
    report = classification_report(probabilities, labels)
    recorder.log_metrics({f"test_{name}_macro": value for name, value in report.macro.items()})
    recorder.log_text(report.per_class_csv(classes), "metrics/per_class.csv")
    recorder.log_text(report.confusion_csv(classes), "metrics/confusion_matrix.csv")
    if figures:
        log_test_figures(recorder, images, labels, probabilities, classes, report.confusion.numpy())
    return report


def log_test_figures(
    recorder: RunRecorder,
    images: torch.Tensor,
    labels: torch.Tensor,
    probabilities: torch.Tensor,
    classes: list[str],
    matrix: np.ndarray,
) -> None:
    """Log the confusion matrix (counts and normalised) and a 16-image prediction grid."""
    predictions = probabilities.argmax(dim=1)
    sample = spread_sample(16, len(labels))
    figures = {
        "plots/confusion_matrix.png": confusion_matrix_figure(matrix, classes),
        "plots/confusion_matrix_normalized.png": confusion_matrix_figure(matrix, classes, normalize=True),
        "plots/test_predictions.png": prediction_grid(images[sample], labels[sample], predictions[sample], classes),
    }
    for path, figure in figures.items():
        recorder.log_figure(figure, path)
