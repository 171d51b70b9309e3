"""Transfer learning CIFAR-100 -> CIFAR-10 on generated files: a short CIFAR-100 run, then a CIFAR-10 run
initialised from it with only the head trainable; plus the other ways to name the source, and freezing."""

from pathlib import Path

import lightning.pytorch as pl
import mlflow
import pytest
import torch
from cifar_files import write_cifar10, write_cifar100
from conftest import FAST, train_config
from omegaconf import DictConfig

from fruitlab.config import compose_config
from fruitlab.data import build_datamodule
from fruitlab.errors import ConfigError
from fruitlab.models import get_model
from fruitlab.serving.recorded import load_eager
from fruitlab.tracking.store import Store
from fruitlab.training.loop import build_module
from fruitlab.training.transfer import backbone_tensors, copy_weights, freeze, load_source

HEAD = "classifier.1"  # MobileNetV2's linear classifier


def study_config(*overrides: str) -> DictConfig:
    return compose_config(list(overrides))


@pytest.fixture(scope="module")
def setting(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Overrides shared by both runs: generated files, a throw-away store, a short schedule."""
    folder = tmp_path_factory.mktemp("transfer")
    write_cifar10(folder)
    write_cifar100(folder, test_per_class=1)
    return [
        f"data.root={folder}",
        "data.verify_checksums=false",
        "model=mobilenet_v2_slim",
        "batch_size=32",
        f"tracking.uri=sqlite:///{folder / 'mlflow.db'}",
        *FAST,
        "latency.batch_sizes=[1]",
    ]


@pytest.fixture(scope="module")
def store(setting: list[str]) -> Store:
    """The store both runs record to."""
    (uri,) = [override.removeprefix("tracking.uri=") for override in setting if override.startswith("tracking.uri=")]
    return Store.open(uri)


@pytest.fixture(scope="module")
def source_run(setting: list[str], store: Store) -> str:
    """A one-epoch CIFAR-100 run with its model logged; returns its run id."""
    train_config(study_config("data=cifar100", *setting))
    (run,) = mlflow.MlflowClient(store.uri).search_runs([store.ensure_experiment("cifar100")])
    return run.info.run_id


def checkpoint_tensors(store: Store, run_id: str) -> tuple[dict[str, torch.Tensor], dict]:
    """(network tensors, checkpoint) of a run's best checkpoint."""
    (path,) = store.checkpoint_dir(run_id).glob("epoch=*.ckpt")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    return backbone_tensors(checkpoint["state_dict"]), checkpoint


def test_cifar10_run_from_the_cifar100_run_trains_only_the_head(
    setting: list[str], store: Store, source_run: str
) -> None:
    overrides = ["data=cifar10", *setting, f"model.init_from={source_run}", "model.freeze=1", "optim=sgd"]
    cfg = study_config(*overrides, "tracking.log_model=false")
    train_config(cfg)
    (run,) = mlflow.MlflowClient(store.uri).search_runs([store.ensure_experiment("cifar10")])
    assert run.info.status == "FINISHED"
    tags, metrics = run.data.tags, run.data.metrics
    assert tags["init_from_run_id"] == source_run and run.data.params["model.init_from"] == source_run
    assert tags["init_from"] == f"runs:/{source_run}/model"
    assert tags["trainable_layers"] == HEAD and tags["reinitialized"] == f"{HEAD}.bias, {HEAD}.weight"
    assert metrics["trainable_parameters"] == 1280 * 10 + 10
    assert metrics["trainable_parameters"] + metrics["frozen_parameters"] == 1_545_482

    source = backbone_tensors(load_source(store, source_run).tensors)
    trained, checkpoint = checkpoint_tensors(store, run.info.run_id)
    frozen = [name for name in trained if not name.startswith(f"{HEAD}.")]
    assert len(frozen) == len(trained) - 2
    for name in frozen:  # weights and batch-norm statistics alike
        assert torch.equal(trained[name], source[name]), name
    # The optimizer held the head only.
    assert len(checkpoint["optimizer_states"][0]["param_groups"][0]["params"]) == 2
    # The head was trained: it moved away from its (seeded) initialisation.
    pl.seed_everything(cfg.seed, verbose=False)
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    initial = build_module(cfg, datamodule).classifier.backbone.state_dict()
    assert trained[f"{HEAD}.weight"].shape == (10, 1280)
    assert not torch.equal(trained[f"{HEAD}.weight"], initial[f"{HEAD}.weight"])


def test_a_registered_model_and_a_checkpoint_name_the_same_weights(store: Store, source_run: str) -> None:
    mlflow.set_tracking_uri(store.uri)
    version = mlflow.register_model(f"runs:/{source_run}/model", "cifar100_slim")
    mlflow.MlflowClient(store.uri).set_registered_model_alias("cifar100_slim", "champion", version.version)
    registered = load_source(store, "models:/cifar100_slim@champion")
    assert registered.run_id == source_run
    from_checkpoint, _ = checkpoint_tensors(store, source_run)
    from_registry = backbone_tensors(registered.tensors)
    assert {n for n, _ in get_model("mobilenet_v2_slim", 100, (3, 32, 32)).named_parameters()} <= set(from_registry)
    for name, tensor in from_registry.items():
        assert torch.equal(tensor, from_checkpoint[name]), name


def test_the_rebuilt_eager_model_matches_the_logged_one(store: Store, source_run: str) -> None:
    model, input_shape = load_eager(store, "models:/cifar100_slim@champion")
    mlflow.set_tracking_uri(store.uri)
    assert input_shape == (3, 32, 32)
    logged = mlflow.pytorch.load_model(f"runs:/{source_run}/model", map_location="cpu")
    images = torch.rand(4, *input_shape)
    with torch.inference_mode():
        assert torch.allclose(model(images), logged(images), atol=1e-5)


def test_a_source_of_another_architecture_is_refused(store: Store, source_run: str) -> None:
    lenet = get_model("lenet", num_classes=10, input_shape=(3, 32, 32))
    with pytest.raises(ConfigError, match=r"does not fit this model.name: 0.bias"):
        copy_weights(lenet, load_source(store, source_run))


def test_an_unknown_source_says_what_is_accepted(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"neither a run id .* nor an existing checkpoint file"):
        load_source(store, str(tmp_path / "nowhere.ckpt"))
    with pytest.raises(ConfigError, match="cannot find model 'models:/absent@champion'"):
        load_source(store, "models:/absent@champion")


def test_freeze_by_module_names_keeps_those_trainable() -> None:
    model = get_model("resnet34", num_classes=10, input_shape=(3, 32, 32), small_input=True)
    trainable = freeze(model, ["layer4", "fc"])
    assert trainable[-1] == "fc" and all(name.startswith(("layer4.", "fc")) for name in trainable)
    expected = sum(p.numel() for p in model.layer4.parameters()) + sum(p.numel() for p in model.fc.parameters())
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == expected
    assert not model.layer3[0].bn1.training and model.layer4[0].bn1.training  # frozen statistics too


def test_freeze_rejects_what_does_not_exist() -> None:
    model = get_model("lenet", num_classes=10, input_shape=(3, 32, 32))
    with pytest.raises(ConfigError, match=r"model.freeze=6: give a number of last layers to train, 1..5"):
        freeze(model, 6)
    with pytest.raises(ConfigError, match="no module named head; top-level modules: 0, 1"):
        freeze(model, "head")
