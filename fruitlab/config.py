"""Checks and resolvers for the composed config that Hydra cannot do itself (the config has no schema)."""

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from fruitlab.errors import ConfigError


def compose_config(overrides: list[str]) -> DictConfig:
    """The project's config composed with `overrides`, as `python -m fruitlab` would (without starting a job)."""
    from hydra import compose, initialize_config_dir

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


# Settings whose type a command-line override can get wrong (`lr=abc`, `trainer.max_epochs=ten`). The
# optimizer's options are checked by torch when it is built (fruitlab/training/optim.py).
NUMBERS: dict[str, type] = {
    "lr": float,
    "seed": int,
    "batch_size": int,
    "trainer.max_epochs": int,
    "data.image_size": int,
    "data.val_fraction": float,
    "threads": int,
}


# Of those, the ones null is a valid value for (CIFAR keeps its native size; every core).
NULLABLE = ("data.image_size", "threads")


def check_types(cfg: DictConfig) -> None:
    """Raise ConfigError naming the first setting whose value has the wrong type."""
    for key, kind in NUMBERS.items():
        value = OmegaConf.select(cfg, key)
        if value is None and key in NULLABLE:
            continue
        if not _is_a(value, kind):
            wanted = "a whole number" if kind is int else "a number"
            raise ConfigError(f"{key}={value!r} is not {wanted}; give e.g. {key}={kind(1)}.")


def _is_a(value: object, kind: type) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if kind is int else isinstance(value, int | float)


def gpus_or(cpu_processes: int) -> int:
    """All the GPUs present, else `cpu_processes` CPU processes: `devices: ${gpus_or:2}`."""
    import torch

    return torch.cuda.device_count() or cpu_processes


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("gpus_or"):
        OmegaConf.register_new_resolver("gpus_or", gpus_or)
