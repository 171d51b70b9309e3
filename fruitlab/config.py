"""The composed config: where it lives, how it is composed, and its check against the schema (fruitlab.schema)
before work starts."""

from collections.abc import Sequence
from dataclasses import is_dataclass
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict
from omegaconf.errors import ValidationError

from fruitlab.errors import ConfigError
from fruitlab.schema import FruitlabConfig, store_schema
from fruitlab.schema.rules import Rule, rule, section_schema, shown


def compose_config(overrides: Sequence[str], multirun: bool = False) -> DictConfig:
    """The project's config composed with `overrides`, as `python -m fruitlab` would (without starting a job);
    `multirun`: as `-m` composes it, its sweeps' values left to the trials. A value of the wrong type raises
    ConfigError; other mistakes raise Hydra's errors."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from hydra.types import RunMode

    prepare_hydra()
    mode = RunMode.MULTIRUN if multirun else RunMode.RUN
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        try:
            # hydra.compose() composes in RUN mode only; its Hydra object takes the mode.
            hydra = GlobalHydra.instance().hydra
            cfg = hydra.compose_config("config", list(overrides), run_mode=mode, with_log_configuration=False)
        except HydraException as error:
            refused = type_error(error)
            if refused is None:
                raise
            raise refused from error
    with open_dict(cfg):
        del cfg["hydra"]  # as hydra.compose() returns it
    return cfg


def prepare_hydra() -> None:
    """What Hydra needs before it composes fruitlab's config: the schema, the resolvers and the sweeper plugin."""
    store_schema()
    register_resolvers()
    expose_plugins()


def config_dir() -> str:
    """The Hydra config tree: `conf/` inside an installed package (the wheel ships the repository's conf/
    there), else the repository's top-level `conf/` beside the package of a source checkout."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "conf", package.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return str(candidate)
    raise ConfigError(f"no conf/config.yaml in {package} or beside it: reinstall fruitlab")


def validate_config(cfg: DictConfig) -> None:
    """Raise ConfigError naming the first setting whose value the schema (fruitlab.schema) does not allow: the key,
    the value and what is allowed, in one line."""
    check_section(cfg, FruitlabConfig, "")
    check_endless_training(cfg)


def check_section(node: DictConfig, schema: type, prefix: str) -> None:
    """Every key of `node` that `schema` (the node's own type, when Hydra typed it) has a rule for, and its
    sections."""
    schema = OmegaConf.get_type(node) if is_dataclass(OmegaConf.get_type(node)) else schema
    for key in node:
        if OmegaConf.is_missing(node, key):
            continue  # a value the user must give (data.root of data=imagefolder): Hydra says so when it is read
        value = node[key]  # resolved
        if isinstance(value, DictConfig):
            inner = section_schema(schema, str(key))
            if inner is not None or is_dataclass(OmegaConf.get_type(value)):
                check_section(value, inner, f"{prefix}{key}.")
            continue
        found = rule(schema, str(key))
        value = OmegaConf.to_container(value) if isinstance(value, ListConfig) else value
        if found is not None and not found.allows(value):
            raise refusal(f"{prefix}{key}", value, found)


def refusal(key: str, value: object, found: Rule) -> ConfigError:
    return ConfigError(
        f"{key}={shown(value)} is not allowed: give {found.allowed_text()}, e.g. {key}={shown(found.example)}."
    )


def type_error(error: Exception) -> ConfigError | None:
    """Hydra's refusal of an override whose value has the wrong type (`lr=abc`), in the schema's words."""
    cause = error.__cause__
    if not isinstance(cause, ValidationError) or not is_dataclass(cause.object_type) or cause.key is None:
        return None
    found = rule(cause.object_type, str(cause.key))
    return None if found is None else refusal(str(cause.full_key), cause.value, found)


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


def expose_plugins() -> None:
    """Hydra finds plugins by listing the folders of the `hydra_plugins` namespace package; setuptools' default
    editable install serves fruitlab's sweeper through an import hook instead of a folder: add the folder."""
    import importlib.util
    import sys

    spec = importlib.util.find_spec("hydra_plugins.fruitlab_optuna_sweeper")
    if spec is None or not spec.submodule_search_locations:
        return
    folder = str(Path(next(iter(spec.submodule_search_locations))).parent)
    namespace = sys.modules["hydra_plugins"].__path__
    if folder not in namespace:
        namespace.append(folder)
