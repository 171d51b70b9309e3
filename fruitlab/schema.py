"""The config's schema: every config group option and top-level key as a dataclass, with its default, its type
(Hydra checks it on every override) and the values it allows (field metadata, checked before work starts).
conf/config.yaml chooses among these options; conf/ holds the presets, augmentations and sweeps."""

import dataclasses
import math
import types
import typing
from dataclasses import Field, dataclass, field, fields, is_dataclass
from typing import Any

from omegaconf import MISSING, OmegaConf


@dataclass(frozen=True)
class Allowed:
    """The values a setting allows beyond its type: a range, a list of choices, values outside the range."""

    low: float | None = None  # the smallest allowed value
    high: float | None = None  # the largest allowed value
    open_low: bool = False  # `low` itself is not allowed
    open_high: bool = False
    also: tuple = ()  # values allowed outside the range
    choices: tuple = ()
    length: int | None = None  # of a list: how many values (None: any number)
    example: Any = None  # a valid value shown in the error, when the default is none
    kind: type | None = None  # the type of a key typed Any (one that also takes values of another type)


FRACTION = {"low": 0, "high": 1, "open_low": True, "open_high": True}
RATE = {"low": 0, "high": 1, "open_high": True}  # momentum, dropout, betas: 1 would never forget


def setting(default: Any, **allowed: Any) -> Any:
    """A dataclass field with its default and what it allows (keyword arguments of `Allowed`)."""
    metadata = {"allowed": Allowed(**allowed)}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


# The data group: `loader` picks the data module; every other key but `name` is one of its options.
@dataclass
class ImageFolderData:
    """Any dataset of your own in ImageFolder layout: <root>/Training/<class>/*.jpg and <root>/Test/<class>/*.jpg.
    python -m fruitlab data=imagefolder data.root=PATH data.name=my_dataset"""

    name: str = "imagefolder"
    loader: str = "imagefolder"
    root: str | None = MISSING
    image_size: int | None = setting(32, low=1)
    val_fraction: float = setting(0.2, **FRACTION)
    # blocks: per class, val_blocks seeded runs of video frames (from the file names) are validation and training
    # keeps no frame within val_gap frames of them; random: a seeded stratified random split (data/splits.py).
    val_split: str = setting("random", choices=("random", "blocks"))
    cache_dir: str | None = "${oc.env:FRUITLAB_CACHE,null}"


@dataclass
class Fruits360(ImageFolderData):
    """Fruits-360 in ImageFolder layout; root null uses the small sample embedded in the package, FRUITLAB_DATA or
    data.root=PATH a full copy. Validation holds out blocks of frames, so it never sees a near-duplicate."""

    name: str = "fruits360"
    root: str | None = "${oc.env:FRUITLAB_DATA,null}"
    val_split: str = setting("blocks", choices=("random", "blocks"))
    val_blocks: int = setting(4, low=1)
    val_gap: int = setting(2, low=0)


@dataclass
class Fruits360Hard(Fruits360):
    """Fruits-360, 53 similar varieties (27,481 training and 9,188 test images); root: FRUITLAB_DATA_HARD or
    data.root=PATH. Works at data.image_size 32, 48, 64 and 100."""

    name: str = "fruits360_hard"
    root: str | None = "${oc.env:FRUITLAB_DATA_HARD,null}"
    sample_when_no_root: bool = False  # the embedded sample holds other classes: no root is an error


@dataclass
class Fruits360Pca(Fruits360):
    """The seed paper's PCA baseline input: grayscale, standardised pixels, the first n_components principal
    components fitted on the training split. fit_components are fitted and cached: a sweep over n_components
    sets it to its largest count, so PCA is fitted once for all trials. Pair it with model=ffnn."""

    loader: str = "pca"
    n_components: int = setting(170, low=1)
    fit_components: int | None = setting(210, low=1)


@dataclass
class Fruits360HardPca(Fruits360Hard):
    """The PCA baseline input (fruits360_pca) on Fruits-360 hard."""

    loader: str = "pca"
    n_components: int = setting(170, low=1)
    fit_components: int | None = setting(170, low=1)


@dataclass
class Cifar10:
    """CIFAR-10 read by torchvision from <root>/cifar-10-batches-py/, checked against the official MD5 sums.
    download: true fetches the official archive (about 170 MB); verify_checksums: false reads another copy."""

    name: str = "cifar10"
    loader: str = "cifar10"
    root: str | None = "data"
    download: bool = False
    verify_checksums: bool = True
    val_fraction: float = setting(0.2, **FRACTION)


@dataclass
class Cifar100(Cifar10):
    """CIFAR-100 (100 fine classes) from <root>/cifar-100-python/, like cifar10."""

    name: str = "cifar100"
    loader: str = "cifar100"


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
    """The value a run returns to a sweeper; the best checkpoint is chosen by it too."""

    metric: str = "val_loss"
    direction: str = setting("minimize", choices=("minimize", "maximize"))


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
    """Test-set reports beyond the scores, for candidates: `leading` gives them only to a sweep trial whose
    objective leads its study so far (the champion always does), `all` to every trial."""

    figures: bool = True  # plots/confusion_matrix*.png and plots/test_predictions.png
    gradcam: bool = True  # Grad-CAM heat maps of conv models (plots/gradcam.png)
    gradcam_images: int = setting(8, low=0)
    trials: str = setting("leading", choices=("leading", "all"))


@dataclass
class Latency:
    """CPU inference latency of the test-time model, logged by every run."""

    batch_sizes: list[int] = setting([1, 64], low=1)
    repeats: int = setting(30, low=1)
    warmup: int = setting(5, low=0)
    trial_repeats: int = setting(5, low=1)  # a sweep trial that trails its study: enough to compare


def group(name: str, schema: type | None = None) -> Any:
    """A field that a config group fills; `schema`: the group's keys, for an untyped (open) group."""
    return field(default=MISSING, metadata={"schema": schema} if schema else {})


@dataclass
class FruitlabConfig:
    """The top-level keys."""

    data: Any = group("data")
    model: Any = group("model")
    optim: Any = group("optim")
    scheduler: Any = group("scheduler")
    trainer: Any = group("trainer", Trainer)
    tracking: Any = group("tracking")
    augment: Any = group("augment")
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


@dataclass(frozen=True)
class Rule:
    """What one key allows: its type (from the annotation) and `Allowed`; `allowed()` says it in words."""

    kind: type | None  # int, float, bool or str; float accepts whole numbers too; None: not checked
    allowed: Allowed
    example: Any
    nullable: bool = False
    listed: bool = False  # a list of values, each checked

    def allows(self, value: object) -> bool:
        if value is None:
            return self.nullable
        if not self.listed:
            return self._one(value)
        length = self.allowed.length
        if not isinstance(value, list) or not value or len(value) != (length or len(value)):
            return False
        return all(map(self._one, value))

    def _one(self, value: object) -> bool:
        allowed = self.allowed
        if any(type(value) is type(other) and value == other for other in allowed.also):
            return True
        if not _is_a(value, self.kind):
            return False
        if allowed.choices:
            return value in allowed.choices
        above = allowed.low is None or (value > allowed.low if allowed.open_low else value >= allowed.low)
        below = allowed.high is None or (value < allowed.high if allowed.open_high else value <= allowed.high)
        return above and below

    def allowed_text(self) -> str:
        """What the key allows, in words: `a number in (0, 1)`, `a whole number >= 1`, `min or max`."""
        allowed = self.allowed
        if allowed.choices:
            text = " or ".join(map(str, allowed.choices))
        else:
            text = {int: "a whole number", float: "a number", bool: "true or false", str: "a text"}[self.kind]
            text += _range(allowed)
        text += "".join(f" or {shown(value)}" for value in allowed.also)
        if self.listed:
            text = f"a list of {allowed.length or 'one or more'} values, each {text}"
        return f"{text} or null" if self.nullable else text


def shown(value: object) -> str:
    """A value as the user writes it: 5 (not 5.0), true, [0.9, 1.5], 'abc' for a text where a number belongs."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return f"[{', '.join(map(shown, value))}]"
    return repr(value)


def _range(allowed: Allowed) -> str:
    low, high = allowed.low, allowed.high
    if low is not None and high is not None:
        return f" in {'(' if allowed.open_low else '['}{low:g}, {high:g}{')' if allowed.open_high else ']'}"
    if low is not None:
        return f" {'>' if allowed.open_low else '>='} {low:g}"
    if high is not None:
        return f" {'<' if allowed.open_high else '<='} {high:g}"
    return ""


def _is_a(value: object, kind: type) -> bool:
    if isinstance(value, bool):
        return kind is bool
    if kind is float:
        return isinstance(value, int | float) and math.isfinite(value)
    return isinstance(value, kind)


def rule(schema: type, key: str) -> Rule | None:
    """The rule of `schema`'s field `key`; None for a key it lacks or a section (checked key by key)."""
    found = [f for f in fields(schema) if f.name == key]
    if not found or found[0].metadata.get("schema") is not None:
        return None
    hint = typing.get_type_hints(schema)[key]
    nullable = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)
    if nullable:
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    listed = typing.get_origin(hint) is list
    if listed:
        (hint,) = typing.get_args(hint)
    allowed = found[0].metadata.get("allowed", Allowed())
    kind = allowed.kind or (hint if hint in (int, float, bool, str) else None)
    if kind is None and not allowed.choices:
        return None
    return Rule(kind, allowed, _example(found[0], allowed), nullable, listed)


def _example(spec: Field, allowed: Allowed) -> Any:
    if allowed.example is not None:
        return allowed.example
    default = spec.default_factory() if spec.default_factory is not dataclasses.MISSING else spec.default
    return None if default in (dataclasses.MISSING, MISSING) else default


def section_schema(schema: type, key: str) -> type | None:
    """The dataclass that describes `schema`'s section `key` when its node is untyped (an open group)."""
    found = [f for f in fields(schema) if f.name == key]
    if not found:
        return None
    declared = found[0].metadata.get("schema") or typing.get_type_hints(schema)[key]
    return declared if is_dataclass(declared) else None
