"""Everything a trial's job needs to run as its trial, in one message: where its study is, which trial it is,
which metric it reports each epoch (and in which direction it improves), how the sweep prunes, and its torch
threads. The sweeper writes it into the job's Hydra overrides as `+trial.*` keys; the job reads it back from its
config (`TrialIdentity.of`), so the same code runs whether the launcher runs the job in the sweeper's process, a
local worker process or a cluster node. Also the names both sides use for what a trial records."""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from omegaconf import DictConfig, OmegaConf

TRIAL_NUMBER_TAG = "trial_number"
TRIAL_STATE_TAG = "trial_state"
STUDY_TAG = "sweep.study"
RUN_ID_ATTR = "mlflow_run_id"  # user attribute of a trial: its MLflow run
PRUNED_EPOCH_ATTR = "pruned_epoch"  # user attribute of a pruned trial, and tag of its run
PRUNED_CHECK_ATTR = "pruned_check"  # the same for the validation check (its global index: the reported step)
NO_PRUNER = "none"


@dataclass(frozen=True)
class TrialIdentity:
    storage: str  # the study's RDB URL
    study: str
    number: int
    metric: str | None = None  # reported each epoch; None with several objectives (Optuna reports one)
    direction: str | None = None  # of `metric`: minimize | maximize
    pruner: str = NO_PRUNER
    pruner_options: Mapping[str, object] = field(default_factory=dict)
    threads: int | None = None  # torch threads of the trial's job, when several trials share one machine

    @property
    def prunes(self) -> bool:
        return self.pruner != NO_PRUNER

    def overrides(self) -> list[str]:
        """The job overrides that carry this identity (`trial` is bookkeeping: it is never logged as params)."""
        values: dict[str, str | None] = {
            "storage": quote(self.storage),
            "study": quote(self.study),
            "number": str(self.number),
            "metric": None if self.metric is None else quote(self.metric),
            "direction": None if self.direction is None else quote(self.direction),
            "pruner": None if not self.prunes else quote(self.pruner),
            "pruner_options": None if not self.prunes else quote(json.dumps(dict(self.pruner_options))),
            "threads": None if self.threads is None else str(self.threads),
        }
        return [f"+trial.{key}={value}" for key, value in values.items() if value is not None]

    @classmethod
    def of(cls, cfg: DictConfig) -> "TrialIdentity | None":
        """The identity in a job's config; None outside a sweep."""
        trial = cfg.get("trial")
        if trial is None:
            return None
        values = OmegaConf.to_container(trial)
        threads = values.get("threads")
        return cls(
            storage=str(values["storage"]),
            study=str(values["study"]),
            number=int(values["number"]),
            metric=values.get("metric"),
            direction=values.get("direction"),
            pruner=values.get("pruner", NO_PRUNER),
            pruner_options=json.loads(values.get("pruner_options", "{}")),
            threads=None if threads is None else int(threads),
        )


def quote(value: str) -> str:
    """`value` as a quoted Hydra override value: any character survives. Hydra reads backslashes as escapes only
    in a run of them before a quote (the closing one included): such a run is doubled, and a quote escaped."""
    escaped = re.sub(r"(\\*)('|$)", lambda m: m[1] * 2 + ("\\'" if m[2] else ""), value)
    return f"'{escaped}'"
