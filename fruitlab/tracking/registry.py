"""The MLflow Model Registry: a run's logged model as a version of a registered model, and aliases on it."""

import mlflow
from mlflow.exceptions import MlflowException

from fruitlab.errors import ConfigError

CHAMPION = "champion"


def logged_model_uri(run_id: str, name: str = "model") -> str:
    """`models:/<model_id>` of the model the run logged as `name` (MLflow 3 keeps logged models apart from
    the run's artifacts)."""
    run = mlflow.MlflowClient().get_run(run_id)
    models = mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"source_run_id = '{run_id}' AND name = '{name}'",
        output_format="list",
    )
    if not models:
        raise ConfigError(f"run {run_id} logged no model '{name}' to register; run it with tracking.log_model=true")
    return f"models:/{models[0].model_id}"


def register_model(run_id: str, name: str, alias: str | None = None) -> str:
    """Register the run's logged model as a new version of `name`, with `alias` pointing at it when given;
    returns the version."""
    version = str(mlflow.register_model(logged_model_uri(run_id), name).version)
    if alias:
        mlflow.MlflowClient().set_registered_model_alias(name, alias, version)
    return version


def set_champion(run_id: str, name: str, alias: str = CHAMPION) -> str:
    """Point `alias` of `name` at the run's model, registering a version only when the alias is not already
    on this run (so that reporting on a finished study again adds nothing); returns the version."""
    try:
        current = mlflow.MlflowClient().get_model_version_by_alias(name, alias)
    except MlflowException:  # no such model or alias yet
        current = None
    if current is not None and current.run_id == run_id:
        return str(current.version)
    return register_model(run_id, name, alias)


def tag_model_version(name: str, version: str, tags: dict[str, str]) -> None:
    client = mlflow.MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
