"""Where a user sees a store's runs: the MLflow UI's pages, and the command that serves a local store's UI."""

from dataclasses import dataclass

from fruitlab.tracking.store import shown_uri

UI_HOST, UI_PORT = "127.0.0.1", 5000  # what `mlflow ui` serves by default
# MLflow 3.x's UI picks its "GenAI" or "Model training" view from this URL parameter (else the browser's last
# choice, else GenAI); the experiment-kind tag alone does not choose it in every 3.x release.
TRAINING_VIEW = "workflowType=machine_learning"


@dataclass(frozen=True)
class StoreUI:
    """The UI of a store: its base address and, for a store no server serves, the command that starts one."""

    base_url: str
    command: str | None  # None: a tracking server already serves the UI at base_url

    @classmethod
    def of(cls, uri: str) -> "StoreUI":
        if uri.startswith(("http://", "https://")):
            return cls(uri.rstrip("/"), None)
        return cls(f"http://{UI_HOST}:{UI_PORT}", f"mlflow ui --backend-store-uri {shown_uri(uri)} --port {UI_PORT}")

    def experiment_page(self, experiment_id: str) -> str:
        return f"{self.base_url}/#/experiments/{experiment_id}/runs?{TRAINING_VIEW}"

    def run_page(self, experiment_id: str, run_id: str) -> str:
        return f"{self.base_url}/#/experiments/{experiment_id}/runs/{run_id}?{TRAINING_VIEW}"
