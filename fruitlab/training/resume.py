"""`resume=<run_id>`: continue an interrupted run from its last checkpoint, in the same MLflow run."""

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from fruitlab.errors import ConfigError
from fruitlab.tracking.query import RunRecord, find_run
from fruitlab.tracking.runs import MAX_PARAM_LENGTH, UNLOGGED_KEYS, flatten
from fruitlab.tracking.store import Store

LAST_CHECKPOINT = "last.ckpt"  # ModelCheckpoint(save_last=True) writes it at the end of every epoch
# Settings that may differ between the interrupted command and the resuming one: they do not change results.
MAY_DIFFER = ("resume", "verbose", "trainer.enable_progress_bar", "data.cache_dir")


def last_checkpoint(store: Store, run_id: str) -> Path | None:
    """The run's checkpoint at its last completed epoch, or None when no epoch completed."""
    path = store.checkpoint_dir(run_id) / LAST_CHECKPOINT
    return path if path.is_file() else None


def resumable_run(cfg: DictConfig, store: Store) -> RunRecord:
    """The run `cfg.resume` names in `store`, after checking that it can be continued with this config."""
    run_id = str(cfg.resume)
    run = find_run(store, run_id)
    if run is None:
        raise ConfigError(f"resume={run_id}: no such run in tracking.uri={store.uri}; give the id of a run there.")
    if run.status == "FINISHED":
        raise ConfigError(f"resume={run_id}: that run FINISHED; there is nothing to resume. Start a new run instead.")
    differences = config_differences(cfg, run.params)
    if differences:
        raise ConfigError(
            f"resume={run_id}: this command's config differs from the run's ({'; '.join(differences)}); "
            f"resume with the run's own overrides: {run.tags.get('overrides', '')!r}."
        )
    return run


def config_differences(cfg: DictConfig, params: dict[str, str]) -> list[str]:
    """'key=now (run: before)' for every logged setting this config changes."""
    settings = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k not in UNLOGGED_KEYS}
    current = flatten(settings)
    return [
        f"{key}={value} (run: {params[key]})"
        for key, value in current.items()
        if key not in MAY_DIFFER and key in params and str(value)[:MAX_PARAM_LENGTH] != params[key]
    ]
