"""CIFAR-10/100 through torchvision's dataset classes on generated files in the official format, the CIFAR
study's models, and the issue's command as a real process."""

import pickle
from collections import OrderedDict
from pathlib import Path

import mlflow
import pytest
import torch
import torchvision
from cifar_files import CIFAR10_CLASSES, write_cifar10, write_cifar100
from conftest import FAST, run_cli, train_config
from torch import nn
from torchvision.models.mobilenetv2 import InvertedResidual

from fruitlab.data.cifar import CIFAR10DataModule, CIFAR100DataModule, UnverifiedCIFAR10
from fruitlab.errors import DataError
from fruitlab.models import count_parameters, get_model


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cifar")
    write_cifar10(root)
    write_cifar100(root)
    return root


def test_cifar10_loads_through_torchvision_with_the_shared_split(cifar_root: Path) -> None:
    dm = CIFAR10DataModule(root=cifar_root, verify_checksums=False, seed=3)
    dm.setup()
    assert dm.classes == CIFAR10_CLASSES
    assert dm.image_shape == (3, 32, 32) and dm.train.images.dtype == torch.uint8
    assert (len(dm.train.labels), len(dm.val.labels), len(dm.test.labels)) == (160, 40, 50)
    assert torch.equal(torch.bincount(dm.val.labels), torch.full((10,), 4))  # stratified 80/20
    # The test set is exactly what torchvision's class reads, as NCHW uint8.
    test = UnverifiedCIFAR10(str(cifar_root), train=False)
    assert torch.equal(dm.test.images, torch.from_numpy(test.data).permute(0, 3, 1, 2))
    assert dm.test.labels.tolist() == test.targets
    # Normalisation statistics come from the training split only.
    pixels = dm.train.images.float() / 255
    assert torch.allclose(dm.input_transform().mean.flatten(), pixels.mean(dim=(0, 2, 3)))


def test_cifar100_uses_the_fine_labels(cifar_root: Path) -> None:
    dm = CIFAR100DataModule(root=cifar_root, verify_checksums=False)
    dm.setup()
    assert dm.num_classes == 100 and dm.classes[:2] == ["fine_00", "fine_01"]
    assert (len(dm.train.labels) + len(dm.val.labels), len(dm.test.labels)) == (500, 200)
    assert dm.test.labels.max() == 99


@pytest.mark.parametrize(
    ("module", "folder"),
    [(CIFAR10DataModule, "cifar-10-batches-py"), (CIFAR100DataModule, "cifar-100-python")],
)
def test_official_checksums_are_checked_by_default(cifar_root: Path, module, folder: str) -> None:
    with pytest.raises(DataError, match=rf"{folder} do not match the official MD5 sums.*verify_checksums=false"):
        module(root=cifar_root).setup()


def test_a_missing_copy_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"CIFAR-10 not found: .* lacks data_batch_1.*data.download=true"):
        CIFAR10DataModule(root=tmp_path).setup()


def test_unverified_files_never_run_code(tmp_path: Path) -> None:
    folder = write_cifar10(tmp_path) / "cifar-10-batches-py"
    (folder / "data_batch_3").write_bytes(pickle.dumps(OrderedDict(labels=[1])))  # refers to a class
    with pytest.raises(DataError, match=r"data_batch_3 .*refers to collections.OrderedDict"):
        CIFAR10DataModule(root=tmp_path, verify_checksums=False).setup()


def test_a_truncated_file_is_reported(tmp_path: Path) -> None:
    batch = write_cifar10(tmp_path) / "cifar-10-batches-py" / "test_batch"
    batch.write_bytes(batch.read_bytes()[:1000])
    with pytest.raises(DataError, match=r"cannot read .*test_batch"):
        CIFAR10DataModule(root=tmp_path, verify_checksums=False).setup()


def test_generated_files_carry_a_learnable_signal(make_config, store: str, cifar_root: Path) -> None:
    """Images and labels stay aligned on the way through torchvision: LeNet learns the classes."""
    cfg = make_config(
        "data=cifar10",
        f"data.root={cifar_root}",
        "data.verify_checksums=false",
        "model=lenet",
        "batch_size=16",
        f"tracking.uri={store}",
        *FAST,
        "trainer.max_epochs=5",
        "tracking.log_model=false",
    )
    train_config(cfg)
    run = mlflow.MlflowClient(store).search_runs(
        [mlflow.MlflowClient(store).get_experiment_by_name("cifar10").experiment_id]
    )[0]
    assert run.data.metrics["test_acc"] >= 0.9
    datasets = {d.dataset.name: d.dataset for d in run.inputs.dataset_inputs}  # keyed like the decode cache
    assert set(datasets) == {"cifar10-train", "cifar10-validation", "cifar10-test"}
    assert datasets["cifar10-test"].source == f'{{"uri": "{cifar_root.resolve() / "cifar-10-batches-py"}"}}'
    assert len(datasets["cifar10-test"].digest) == 20


# -- the study's models -------------------------------------------------------------------------------

# torchvision documents 21,797,672 (ResNet34) and 3,504,872 (MobileNetV2) parameters with 1000 classes; a
# 10-class head has (1000 - 10) x (512 + 1) and (1000 - 10) x (1280 + 1) fewer. The CIFAR stem of ResNet34
# has 3x3x3x64 weights instead of 7x7x3x64. The slim MobileNetV2 was counted block by block by hand.
TORCH_COUNTS = {
    ("resnet34", False): 21_797_672 - 990 * 513,
    ("resnet34", True): 21_797_672 - 990 * 513 - (7 * 7 - 3 * 3) * 3 * 64,
    ("mobilenet_v2", False): 3_504_872 - 990 * 1281,
    ("mobilenet_v2", True): 3_504_872 - 990 * 1281,
    ("mobilenet_v2_slim", True): 1_545_482,
}
# Keras-style (fruitlab's num_parameters): plus the batch norms' running means and variances.
KERAS_COUNTS = {
    "resnet34": 21_299_146,
    "mobilenet_v2": 2_270_794,
    "mobilenet_v2_slim": 1_564_618,
    "lenet": 62_006,
}


@pytest.mark.parametrize(("name", "small_input"), TORCH_COUNTS)
def test_parameter_counts(name: str, small_input: bool) -> None:
    model = get_model(name, num_classes=10, input_shape=(3, 32, 32), small_input=small_input)
    assert sum(p.numel() for p in model.parameters()) == TORCH_COUNTS[name, small_input]
    assert model.eval()(torch.rand(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize(("name", "expected"), KERAS_COUNTS.items())
def test_logged_parameter_counts(name: str, expected: int) -> None:
    options = {} if name == "lenet" else {"small_input": True}
    assert count_parameters(get_model(name, num_classes=10, input_shape=(3, 32, 32), **options)) == expected


def _feature_size(model: nn.Module, features: nn.Module) -> int:
    sizes = []
    features.register_forward_hook(lambda _m, _i, output: sizes.append(output.shape[-1]))
    model.eval()(torch.rand(1, 3, 32, 32))
    return sizes[0]


def test_resnet34_small_input_stem() -> None:
    model = get_model("resnet34", num_classes=10, input_shape=(3, 32, 32), small_input=True)
    assert (model.conv1.kernel_size, model.conv1.stride) == ((3, 3), (1, 1))
    assert isinstance(model.maxpool, nn.Identity)
    assert _feature_size(model, model.layer4) == 4  # 32 -> 32, 16, 8, 4
    stock = get_model("resnet34", num_classes=10, input_shape=(3, 32, 32))
    assert _feature_size(stock, stock.layer4) == 1


def test_mobilenet_v2_as_is_for_the_fruits_study_and_stride_1_stem_for_cifar() -> None:
    stock = get_model("mobilenet_v2", num_classes=10, input_shape=(3, 32, 32))
    reference = torchvision.models.mobilenet_v2(num_classes=10)
    assert [p.shape for p in stock.parameters()] == [p.shape for p in reference.parameters()]
    assert stock.features[0][0].stride == (2, 2) and _feature_size(stock, stock.features) == 1
    small = get_model("mobilenet_v2", num_classes=10, input_shape=(3, 32, 32), small_input=True)
    assert small.features[0][0].stride == (1, 1) and _feature_size(small, small.features) == 2


def test_slim_mobilenet_v2_follows_the_study_settings() -> None:
    model = get_model("mobilenet_v2_slim", num_classes=10, input_shape=(3, 32, 32), small_input=True)
    blocks = [m for m in model.features if isinstance(m, InvertedResidual)]
    assert len(blocks) == 1 + 2 + 1 + 2 + 2 + 1
    assert [b.out_channels for b in blocks] == [16, 24, 24, 32, 96, 96, 160, 160, 320]
    assert _feature_size(model, model.features) == 4  # strides 1 (stem), 1, 2, 2, 1, 2, 1


# -- the command ------------------------------------------------------------------------------


def test_the_cifar10_command_trains_and_logs_latency(cifar_root: Path, store: str) -> None:
    result = run_cli(
        "data=cifar10",
        f"data.root={cifar_root}",
        "data.verify_checksums=false",
        "model=mobilenet_v2_slim",
        "optim=sgd",
        "lr=0.01",
        "trainer.max_epochs=1",
        f"tracking.uri={store}",
        "trainer.enable_progress_bar=false",
        "latency.repeats=3",  # the metrics are what is checked here, not their precision
        "latency.warmup=1",
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    client = mlflow.MlflowClient(store)
    (run,) = client.search_runs([client.get_experiment_by_name("cifar10").experiment_id])
    assert run.info.status == "FINISHED"
    metrics, params = run.data.metrics, run.data.params
    assert params["model.name"] == "mobilenet_v2_slim" and params["data.verify_checksums"] == "False"
    assert metrics["num_parameters"] == KERAS_COUNTS["mobilenet_v2_slim"]
    assert metrics["test_size"] == 50 and 0 <= metrics["test_acc"] <= 1
    for batch in (1, 64):
        for stat in ("p50", "p95", "mean"):
            assert metrics[f"latency_b{batch}_{stat}_ms"] > 0


def test_the_official_check_fails_the_command_in_one_line(cifar_root: Path, store: str) -> None:
    result = run_cli("data=cifar10", f"data.root={cifar_root}", f"tracking.uri={store}", timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("fruitlab: error: the CIFAR-10 files in")
    assert "data.verify_checksums=false" in result.stderr
