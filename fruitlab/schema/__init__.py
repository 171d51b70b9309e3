"""The config's schema: every config group option and top-level key as a dataclass, with its default, its type
(Hydra checks it on every override) and the values it allows (field metadata, checked before work starts).
conf/config.yaml chooses among these options; conf/ holds the presets, augmentations and sweeps."""

from dataclasses import dataclass, field
from typing import Any

from omegaconf import OmegaConf

from fruitlab.schema.data import (
    Cifar10,
    Cifar100,
    Fruits360,
    Fruits360Hard,
    Fruits360HardPca,
    Fruits360Pca,
    ImageFolderData,
)
from fruitlab.schema.rules import group, setting
from fruitlab.schema.training import (
    Adadelta,
    Adam,
    AdamW,
    Cosine,
    CpuTrainer,
    DdpTrainer,
    Ffnn,
    MobileNetV2,
    Model,
    NoSchedule,
    Plateau,
    RmsProp,
    Sgd,
    SmallInputModel,
    Step,
    Tracking,
    Trainer,
    Vgg,
)

# group -> option -> its schema and defaults.
GROUPS: dict[str, dict[str, type]] = {
    "data": {
        "imagefolder": ImageFolderData,
        "fruits360": Fruits360,
        "fruits360_hard": Fruits360Hard,
        "fruits360_pca": Fruits360Pca,
        "fruits360_hard_pca": Fruits360HardPca,
        "cifar10": Cifar10,
        "cifar100": Cifar100,
    },
    "model": {
        "ffnn": Ffnn,
        "lenet": Model,
        "mobilenet_v2": MobileNetV2,
        "mobilenet_v2_slim": SmallInputModel,
        "resnet34": SmallInputModel,
        **dict.fromkeys(("vgg1", "vgg2", "vgg3", "vgg3_bn", "vgg3_dropout"), Vgg),
    },
    "optim": {"sgd": Sgd, "adam": Adam, "adamw": AdamW, "adadelta": Adadelta, "rmsprop": RmsProp},
    "scheduler": {"none": NoSchedule, "cosine": Cosine, "step": Step, "plateau": Plateau},
    "trainer": {"default": Trainer, "cpu": CpuTrainer, "ddp_cpu": DdpTrainer},
    "tracking": {"mlflow": Tracking},
}

# Groups whose nodes stay untyped, so that `+trainer.KEY=VALUE` passes any other Lightning option: their keys are
# checked against the schema after composition instead of by Hydra.
OPEN_GROUPS = ("trainer",)


@dataclass
class Objective:
    """The value a run returns to a sweeper; the best checkpoint is chosen by it too. checks_per_epoch: how many
    times per training epoch it is measured (evenly spread, the last at the epoch's end); each check is
    reported to a sweep's pruner, and checkpoints and early stopping follow the checks."""

    metric: str = "val_loss"
    direction: str = setting("minimize", choices=("minimize", "maximize"))
    checks_per_epoch: int = setting(1, low=1, high=100)  # more would spend the epoch validating


@dataclass
class EarlyStopping:
    """Stop when `monitor` has not improved by min_delta for `patience` epochs (Lightning's EarlyStopping)."""

    enabled: bool = False
    monitor: str = "val_loss"
    mode: str = setting("min", choices=("min", "max"))
    patience: int = setting(3, low=0)
    min_delta: float = setting(0.0, low=0)


@dataclass
class CrossValidation:
    """folds >= 2: one child run per stratified fold of the training folder under a parent run that records each
    metric's mean and std; a sweep then optimises the mean. 0: no cross-validation."""

    folds: int = setting(0, low=2, also=(0,), example=5)


@dataclass
class Report:
    """Test-set reports beyond the scores, for candidates: `leading` gives them (with the learning curves' plot,
    latency and the model) only to a sweep trial whose objective leads its study so far (the champion always
    does), `all` to every trial. A trailing trial records its scores, per-class report and curves (as metrics)."""

    figures: bool = True  # plots/confusion_matrix*.png and plots/test_predictions.png
    gradcam: bool = True  # Grad-CAM heat maps of conv models (plots/gradcam.png)
    gradcam_images: int = setting(8, low=0)
    trials: str = setting("leading", choices=("leading", "all"))


@dataclass
class Latency:
    """CPU inference latency of the test-time model, logged by every run but a sweep trial that trails its study
    (see `report.trials`), which measures it only when `trial_repeats` asks."""

    batch_sizes: list[int] = setting([1, 64], low=1)
    repeats: int = setting(30, low=1)
    warmup: int = setting(5, low=0)
    trial_repeats: int = setting(0, low=0, example=5)  # a trailing sweep trial's timed passes; 0: none


@dataclass
class FruitlabConfig:
    """The top-level keys."""

    data: Any = group()
    model: Any = group()
    optim: Any = group()
    scheduler: Any = group()
    trainer: Any = group(Trainer)
    tracking: Any = group()
    augment: Any = group()
    lr: float = setting(0.001, low=0, open_low=True)
    seed: int = setting(42, low=0, high=2**32 - 1)
    batch_size: int = setting(64, low=1)
    objective: Objective = field(default_factory=Objective)
    early_stopping: EarlyStopping = field(default_factory=EarlyStopping)
    cv: CrossValidation = field(default_factory=CrossValidation)
    report: Report = field(default_factory=Report)
    latency: Latency = field(default_factory=Latency)
    # torch intra-op threads; null: every core this process may use (trials side by side get their share here).
    threads: int | None = setting(None, low=1, example=2)
    # conv models train in the channels-last memory format: auto (CPU and CUDA), true, false
    channels_last: Any = setting("auto", kind=str, choices=("auto",), also=(True, False))
    verbose: bool = False  # full tracebacks instead of one-line errors
    resume: str | None = None  # <run_id> of an interrupted run: continue it from its last checkpoint
    trial: Any = None  # a sweep trial's identity, which the sweeper passes as +trial.KEY=VALUE


SCHEMA_NAME = "fruitlab_schema"  # conf/config.yaml's first default


def store_schema() -> None:
    """Register the schema and the group options in Hydra's ConfigStore, once per process."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    if f"{SCHEMA_NAME}.yaml" in store.repo:
        return
    store.store(name=SCHEMA_NAME, node=FruitlabConfig, provider="fruitlab")
    for name, options in GROUPS.items():
        for option, schema in options.items():
            node = OmegaConf.structured(schema(name=option) if name == "model" else schema)  # models share schemas
            if name in OPEN_GROUPS:
                node = OmegaConf.create(OmegaConf.to_container(node))
            store.store(group=name, name=option, node=node, provider="fruitlab")
