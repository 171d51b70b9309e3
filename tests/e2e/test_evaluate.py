"""Test-set scores agree with scikit-learn; Grad-CAM maps cover the image."""

import csv
import io
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from conftest import TrainedRun, compose_config
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score

from fruitlab.data.augment import build_augmentation
from fruitlab.data.imagefolder import ImageFolderDataModule
from fruitlab.evaluation.gradcam import gradcam_maps, last_conv_layer, log_gradcam
from fruitlab.evaluation.held_out import classification_report
from fruitlab.models import get_model


@pytest.fixture(scope="module")
def test_predictions(trained_run: TrainedRun) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(probabilities, labels) of the recorded model on the real test set, as it is ("clean") and with
    the strong augmentation applied ("augmented": harder, so many more mistakes to score)."""
    mlflow.set_tracking_uri(trained_run.uri)
    model = mlflow.pytorch.load_model(f"runs:/{trained_run.run_id}/model")
    datamodule = ImageFolderDataModule(root=trained_run.data)
    datamodule.setup()
    augment = build_augmentation(compose_config("augment=strong").augment)
    torch.manual_seed(0)
    sets = {"clean": datamodule.test.images, "augmented": augment(datamodule.test.images)}
    with torch.inference_mode():
        return {
            name: (model(images.float() / 255).numpy(), datamodule.test.labels.numpy()) for name, images in sets.items()
        }


def sklearn_scores(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    classes = np.arange(probabilities.shape[1])
    predictions = probabilities.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=classes, zero_division=0
    )
    one_vs_rest = labels[:, None] == classes[None, :]
    roc_auc = roc_auc_score(one_vs_rest, probabilities, average=None)
    return {"precision": precision, "recall": recall, "f1": f1, "roc_auc": roc_auc, "support": support}


@pytest.mark.parametrize("images", ["clean", "augmented"])
def test_scores_match_scikit_learn_on_the_same_predictions(test_predictions, images: str) -> None:
    probabilities, labels = test_predictions[images]
    predictions = probabilities.argmax(axis=1)
    if images == "augmented":  # mistakes in every class exercise the per-class arithmetic
        assert (predictions != labels).sum() > 100
    report = classification_report(torch.from_numpy(probabilities), torch.from_numpy(labels))
    expected = sklearn_scores(probabilities, labels)
    for name, values in expected.items():
        np.testing.assert_allclose(report.per_class[name].numpy(), values, atol=1e-5, err_msg=name)
    for name in ("precision", "recall", "f1", "roc_auc"):
        assert report.macro[name] == pytest.approx(expected[name].mean(), abs=1e-5)
    assert report.macro["roc_auc"] == pytest.approx(
        roc_auc_score(labels, probabilities, multi_class="ovr", average="macro"), abs=1e-5
    )
    np.testing.assert_array_equal(report.confusion.numpy(), confusion_matrix(labels, predictions))


def test_the_run_records_the_scores_and_a_per_class_table(trained_run: TrainedRun, test_predictions) -> None:
    probabilities, labels = test_predictions["clean"]
    expected = sklearn_scores(probabilities, labels)
    run = mlflow.MlflowClient(trained_run.uri).get_run(trained_run.run_id)
    for name in ("precision", "recall", "f1", "roc_auc"):
        assert run.data.metrics[f"test_{name}_macro"] == pytest.approx(expected[name].mean(), abs=1e-4)
    mlflow.set_tracking_uri(trained_run.uri)
    table = list(
        csv.DictReader(io.StringIO(mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/metrics/per_class.csv")))
    )
    classes = sorted(p.name for p in (trained_run.data / "Test").iterdir())
    assert [row["class"] for row in table] == classes
    np.testing.assert_allclose([float(row["f1"]) for row in table], expected["f1"], atol=1e-4)
    assert [int(row["support"]) for row in table] == expected["support"].tolist()
    counts = list(
        csv.reader(io.StringIO(mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/metrics/confusion_matrix.csv")))
    )
    np.testing.assert_array_equal(
        np.array([row[1:] for row in counts[1:]], dtype=int),
        confusion_matrix(labels, probabilities.argmax(axis=1)),
    )
    plots = {a.path for a in mlflow.MlflowClient(trained_run.uri).list_artifacts(run.info.run_id, "plots")}
    assert {
        "plots/confusion_matrix.png",
        "plots/confusion_matrix_normalized.png",
        "plots/gradcam.png",
    } <= plots


@pytest.mark.parametrize(("name", "size"), [("vgg1", 32), ("lenet", 32), ("lenet", 48)])
def test_gradcam_maps_have_the_image_size(name: str, size: int, real_data: Path) -> None:
    datamodule = ImageFolderDataModule(root=real_data, image_size=size)
    datamodule.setup()
    images = datamodule.test.images[::200][:8]
    model = get_model(name, 10, (3, size, size))
    maps = gradcam_maps(model, images, torch.arange(len(images)) % 10)
    assert maps.shape == (len(images), size, size)
    peaks = maps.flatten(1).amax(dim=1)
    assert maps.min() >= 0 and (peaks > 0).any()
    assert torch.allclose(peaks[peaks > 0], torch.ones(1))  # scaled to [0, 1] (an untrained net may give 0)


def test_gradcam_is_skipped_for_networks_without_convolutions() -> None:
    ffnn = get_model("ffnn", 10, (3, 32, 32))
    assert last_conv_layer(ffnn) is None
    images = torch.zeros(4, 3, 32, 32, dtype=torch.uint8)
    assert not log_gradcam(None, ffnn, images, torch.zeros(4, dtype=torch.long), torch.rand(4, 10), list("abcdefghij"))
