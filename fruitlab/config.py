"""The composed config: where it lives, its schema (every typed setting's type and valid values, checked before
work starts) and its resolvers."""

import math
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from fruitlab.errors import ConfigError


def compose_config(overrides: list[str]) -> DictConfig:
    """The project's config composed with `overrides`, as `python -m fruitlab` would (without starting a job)."""
    from hydra import compose, initialize_config_dir

    register_resolvers()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def config_dir() -> str:
    """The Hydra config tree: `conf/` inside an installed package (the wheel ships the repository's conf/
    there), else the repository's top-level `conf/` beside the package of a source checkout."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "conf", package.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return str(candidate)
    raise ConfigError(f"no conf/config.yaml in {package} or beside it: reinstall fruitlab")


@dataclass(frozen=True)
class Setting:
    """One key of the typed config: its type and the values it allows. A key a config does not have (the
    optimizer's own options, a loader's) is not checked."""

    key: str
    kind: type  # int, float, bool or str; float accepts whole numbers too
    example: object  # a valid value, shown in the error
    low: float | None = None  # the smallest allowed value
    high: float | None = None  # the largest allowed value
    open_low: bool = False  # `low` itself is not allowed
    open_high: bool = False
    also: tuple = ()  # values allowed outside the range
    choices: tuple = ()
    nullable: bool = False
    listed: bool = False  # a list of values, each checked
    length: int | None = None  # of a list: how many values (None: any number)

    def allows(self, value: object) -> bool:
        if value is None:
            return self.nullable
        if not self.listed:
            return self._one(value)
        if not isinstance(value, list) or not value or len(value) != (self.length or len(value)):
            return False
        return all(map(self._one, value))

    def _one(self, value: object) -> bool:
        if any(type(value) is type(other) and value == other for other in self.also):
            return True
        if not _is_a(value, self.kind):
            return False
        if self.choices:
            return value in self.choices
        above = self.low is None or (value > self.low if self.open_low else value >= self.low)
        below = self.high is None or (value < self.high if self.open_high else value <= self.high)
        return above and below

    def allowed(self) -> str:
        """What the key allows, in words: `a number in (0, 1)`, `a whole number >= 1`, `min or max`."""
        if self.choices:
            text = " or ".join(map(str, self.choices))
        else:
            text = {int: "a whole number", float: "a number", bool: "true or false", str: "a text"}[self.kind]
            text += _range(self)
        text += "".join(f" or {str(value).lower() if isinstance(value, bool) else value}" for value in self.also)
        if self.listed:
            text = f"a list of {self.length or 'one or more'} values, each {text}"
        return f"{text} or null" if self.nullable else text


def _range(setting: Setting) -> str:
    low, high = setting.low, setting.high
    if low is not None and high is not None:
        return f" in {'(' if setting.open_low else '['}{low:g}, {high:g}{')' if setting.open_high else ']'}"
    if low is not None:
        return f" {'>' if setting.open_low else '>='} {low:g}"
    if high is not None:
        return f" {'<' if setting.open_high else '<='} {high:g}"
    return ""


def _is_a(value: object, kind: type) -> bool:
    if isinstance(value, bool):
        return kind is bool
    if kind is float:
        return isinstance(value, int | float) and math.isfinite(value)
    return isinstance(value, kind)


FRACTION = {"low": 0, "high": 1, "open_low": True, "open_high": True}
RATE = {"low": 0, "high": 1, "open_high": True}  # momentum, dropout, betas: 1 would never forget

# The typed config: every setting whose value fruitlab (or torch, Lightning) takes as given, checked before
# any work starts. Keys of one config group (optim.momentum for sgd and rmsprop) appear once.
SCHEMA: tuple[Setting, ...] = (
    Setting("lr", float, 0.001, low=0, open_low=True),
    Setting("seed", int, 42, low=0, high=2**32 - 1),
    Setting("batch_size", int, 64, low=1),
    Setting("trainer.max_epochs", int, 10, low=1, also=(-1,)),
    Setting("trainer.log_every_n_steps", int, 10, low=1),
    Setting("trainer.enable_progress_bar", bool, True),
    Setting("data.image_size", int, 32, low=1, nullable=True),
    Setting("data.val_fraction", float, 0.2, **FRACTION),
    Setting("data.val_split", str, "blocks", choices=("random", "blocks")),
    Setting("data.val_blocks", int, 4, low=1),
    Setting("data.val_gap", int, 2, low=0),
    Setting("data.n_components", int, 50, low=1),
    Setting("data.fit_components", int, 210, low=1, nullable=True),
    Setting("data.download", bool, False),
    Setting("data.verify_checksums", bool, True),
    Setting("model.dropout", float, 0.2, **RATE, nullable=True),
    Setting("model.hidden_units", int, 32, low=1),
    Setting("model.small_input", bool, True),
    Setting("optim.momentum", float, 0.9, **RATE),
    Setting("optim.dampening", float, 0.0, low=0, high=1),
    Setting("optim.nesterov", bool, False),
    Setting("optim.betas", float, "[0.9,0.999]", **RATE, listed=True, length=2),
    Setting("optim.eps", float, 1e-8, low=0, open_low=True),
    Setting("optim.weight_decay", float, 0.0, low=0),
    Setting("optim.rho", float, 0.9, low=0, high=1),
    Setting("optim.alpha", float, 0.99, low=0, high=1),
    Setting("optim.amsgrad", bool, False),
    Setting("optim.centered", bool, False),
    Setting("scheduler.eta_min", float, 0.0, low=0),
    Setting("scheduler.step_size", int, 10, low=1),
    Setting("scheduler.gamma", float, 0.1, low=0, open_low=True),
    Setting("scheduler.factor", float, 0.1, **FRACTION),
    Setting("scheduler.patience", int, 3, low=0),
    Setting("scheduler.mode", str, "min", choices=("min", "max")),
    Setting("objective.direction", str, "minimize", choices=("minimize", "maximize")),
    Setting("early_stopping.enabled", bool, True),
    Setting("early_stopping.mode", str, "min", choices=("min", "max")),
    Setting("early_stopping.patience", int, 3, low=0),
    Setting("early_stopping.min_delta", float, 0.0, low=0),
    Setting("cv.folds", int, 5, low=2, also=(0,)),
    Setting("threads", int, 2, low=1, nullable=True),
    Setting("channels_last", str, "auto", choices=("auto",), also=(True, False)),
    Setting("report.figures", bool, True),
    Setting("report.trials", str, "leading", choices=("leading", "all")),
    Setting("report.gradcam", bool, True),
    Setting("report.gradcam_images", int, 8, low=0),
    Setting("latency.batch_sizes", int, "[1,64]", low=1, listed=True),
    Setting("latency.repeats", int, 30, low=1),
    Setting("latency.warmup", int, 5, low=0),
    Setting("latency.trial_repeats", int, 5, low=1),
    Setting("tracking.log_model", bool, True),
    Setting("verbose", bool, False),
)

_ABSENT = object()


def validate_config(cfg: DictConfig) -> None:
    """Raise ConfigError naming the first setting whose value the schema does not allow: the key, the value
    and what is allowed, in one line."""
    for setting in SCHEMA:
        value = OmegaConf.select(cfg, setting.key, default=_ABSENT)
        if value is _ABSENT:
            continue
        if isinstance(value, ListConfig):
            value = OmegaConf.to_container(value)
        if not setting.allows(value):
            raise ConfigError(
                f"{setting.key}={value!r} is not allowed: give {setting.allowed()}, "
                f"e.g. {setting.key}={setting.example}."
            )
    check_endless_training(cfg)


def check_endless_training(cfg: DictConfig) -> None:
    """trainer.max_epochs=-1 means "no epoch limit": only with something else that ends training."""
    if OmegaConf.select(cfg, "trainer.max_epochs") != -1:
        return
    if OmegaConf.select(cfg, "early_stopping.enabled") or OmegaConf.select(cfg, "trainer.max_time") is not None:
        return
    raise ConfigError(
        "trainer.max_epochs=-1 (no epoch limit) is allowed only with early_stopping.enabled=true or "
        "+trainer.max_time=DD:HH:MM:SS; otherwise give a number of epochs >= 1, e.g. trainer.max_epochs=10."
    )


def gpus_or(cpu_processes: int) -> int:
    """All the GPUs present, else `cpu_processes` CPU processes: `devices: ${gpus_or:2}`."""
    import torch

    return torch.cuda.device_count() or cpu_processes


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("gpus_or"):
        OmegaConf.register_new_resolver("gpus_or", gpus_or)
