"""The MLflow Model Registry: a run's logged model as a version of a registered model, and aliases on it."""

from mlflow.exceptions import MlflowException

from fruitlab.errors import ConfigError
from fruitlab.tracking.store import Store

CHAMPION = "champion"
ALREADY_EXISTS = ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS")  # MLflow's error codes for a name taken


def logged_model_id(store: Store, run_id: str, name: str = "model") -> str:
    """Id of the model the run logged as `name` (MLflow 3 keeps logged models apart from the run's artifacts)."""
    run = store.client.get_run(run_id)
    models = store.client.search_logged_models(
        [run.info.experiment_id], filter_string=f"source_run_id = '{run_id}' AND name = '{name}'"
    )
    if not models:
        raise ConfigError(f"run {run_id} logged no model '{name}' to register; run it with tracking.log_model=true")
    return models[0].model_id


def register_model(store: Store, run_id: str, name: str, alias: str | None = None) -> str:
    """Register the run's logged model as a new version of `name` (created when new), with `alias` pointing at
    it when given; returns the version."""
    model_id = logged_model_id(store, run_id)
    try:
        store.client.create_registered_model(name)
    except MlflowException as error:
        if error.error_code not in ALREADY_EXISTS:
            raise
    with store.fluent():  # MLflow resolves a models:/ source through the process-wide tracking URI
        version = store.client.create_model_version(name, f"models:/{model_id}", run_id, model_id=model_id).version
    if alias:
        store.client.set_registered_model_alias(name, alias, str(version))
    return str(version)


def set_champion(store: Store, run_id: str, name: str, alias: str = CHAMPION) -> str:
    """Point `alias` of `name` at the run's model, registering a version only when the alias is not already
    on this run (so that reporting on a finished study again adds nothing); returns the version."""
    try:
        current = store.client.get_model_version_by_alias(name, alias)
    except MlflowException:  # no such model or alias yet
        current = None
    if current is not None and current.run_id == run_id:
        return str(current.version)
    return register_model(store, run_id, name, alias)


def tag_model_version(store: Store, name: str, version: str, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        store.client.set_model_version_tag(name, version, key, value)
