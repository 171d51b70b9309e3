"""The model, optim, scheduler, trainer and tracking groups' options."""

from dataclasses import dataclass
from typing import Any

from omegaconf import MISSING

from fruitlab.schema.rules import FRACTION, RATE, setting


# The model group. Every model can start from another's weights (training/transfer.py): init_from is a run id,
# models:/NAME@ALIAS or a checkpoint file; freeze: N trains only the last N layers, [name, ...] only these modules.
@dataclass
class Model:
    name: str = MISSING
    init_from: str | None = None
    freeze: Any = None


@dataclass
class Ffnn(Model):
    """One hidden layer of ReLU units on the flattened input (the seed paper's PCA baseline uses 32)."""

    name: str = "ffnn"
    hidden_units: int = setting(32, low=1)


@dataclass
class Vgg(Model):
    """dropout null: the paper's rates; a rate p: p is the largest rate, the others keep their ratios (a model
    without dropout gets p after every block and the dense layer); 0: no dropout."""

    dropout: float | None = setting(None, **RATE, example=0.2)


@dataclass
class MobileNetV2(Model):
    """torchvision's MobileNetV2; small_input: true gives its stem stride 1 for 32x32 images (models/mobilenet.py)."""

    name: str = "mobilenet_v2"
    small_input: bool = False
    dropout: float | None = setting(0.2, **RATE)  # before the classifier (torchvision's default)


@dataclass
class SmallInputModel(Model):
    """The CIFAR study's slim MobileNetV2, or ResNet34 with the CIFAR-style stem (3x3 stride-1, no max-pooling);
    small_input: false gives torchvision's stem."""

    small_input: bool = True


# The optim group: `name` plus the optimizer's keyword arguments; a null one is torch's default.
@dataclass
class Sgd:
    name: str = "sgd"
    momentum: float = setting(0.9, **RATE)
    weight_decay: float = setting(0.0, low=0)
    nesterov: bool = False
    dampening: float | None = setting(None, low=0, high=1, example=0.0)


@dataclass
class Adam:
    name: str = "adam"
    betas: list[float] = setting([0.9, 0.999], **RATE, length=2)
    weight_decay: float = setting(0.0, low=0)
    eps: float | None = setting(None, low=0, open_low=True, example=1e-8)
    amsgrad: bool | None = None


@dataclass
class AdamW(Adam):
    name: str = "adamw"
    weight_decay: float = setting(0.01, low=0)


@dataclass
class Adadelta:
    name: str = "adadelta"
    rho: float = setting(0.9, low=0, high=1)
    weight_decay: float = setting(0.0, low=0)
    eps: float | None = setting(None, low=0, open_low=True, example=1e-6)


@dataclass
class RmsProp:
    name: str = "rmsprop"
    momentum: float = setting(0.0, **RATE, example=0.9)
    weight_decay: float = setting(0.0, low=0)
    alpha: float | None = setting(None, low=0, high=1, example=0.99)
    eps: float | None = setting(None, low=0, open_low=True, example=1e-8)
    centered: bool | None = None


# The scheduler group: the learning rate's schedule, stepped once per epoch (training/optim.py).
@dataclass
class NoSchedule:
    name: str = "none"


@dataclass
class Cosine:
    """Cosine annealing from lr to eta_min over trainer.max_epochs."""

    name: str = "cosine"
    eta_min: float = setting(0.0, low=0)


@dataclass
class Step:
    """Multiply the learning rate by gamma every step_size epochs."""

    name: str = "step"
    step_size: int = setting(10, low=1)
    gamma: float = setting(0.1, low=0, open_low=True)


@dataclass
class Plateau:
    """Divide the learning rate when the objective metric stops improving."""

    name: str = "plateau"
    mode: str = setting("min", choices=("min", "max"))
    factor: float = setting(0.1, **FRACTION)
    patience: int = setting(3, low=0)


# The trainer group: keyword arguments of lightning.pytorch.Trainer; CPU here, the GPU where one is present.
@dataclass
class Trainer:
    max_epochs: int = setting(10, low=1, also=(-1,))
    accelerator: str = "auto"
    devices: Any = 1
    deterministic: Any = "warn"
    precision: Any = "32-true"
    enable_progress_bar: bool = True
    log_every_n_steps: int = setting(10, low=1)


@dataclass
class CpuTrainer(Trainer):
    accelerator: str = "cpu"


@dataclass
class DdpTrainer(Trainer):
    """Lightning's DDP, one process per device: 2 CPU processes over gloo, or every GPU present over NCCL. Only
    the first process records to MLflow."""

    devices: Any = "${gpus_or:2}"
    strategy: str = "ddp"


@dataclass
class Tracking:
    """MLflow 3: a local SQLite store (artifacts beside it), or http://HOST:PORT for a tracking server."""

    uri: str | None = None  # null: $MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db (tracking.store.resolve_uri)
    experiment: str | None = None  # null: named after the dataset
    run_name: str | None = None  # null: <model>-<optim>-lr<lr>
    log_model: bool = True
    register: str | None = None  # a model name: register this run's model as a new version of it (needs log_model)
    parent_run_id: str | None = None  # set by the sweeper: the trial's run is nested under the sweep's parent run
