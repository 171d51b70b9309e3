"""`objective.checks_per_epoch`: several validation checks per epoch, each logged to MLflow and reported to the
sweep's trial, so that a pruner can stop a hopeless trial inside its first epoch. Real training on the embedded
sample, a real MLflow store, real `python -m fruitlab -m` sweeps with a real Optuna storage."""

import math
from pathlib import Path

import lightning.pytorch as pl
import mlflow
import optuna
import pytest
from conftest import FAST, run_cli, train_config
from optuna.trial import TrialState


class CountValidated(pl.Callback):
    """Training hooks (fruitlab.training.hooks) that count the examples each validation of the fit sees."""

    def __init__(self) -> None:
        self.validated: list[int] = []

    def callbacks(self) -> list[pl.Callback]:
        return [self]

    def run_started(self, recorder: object) -> None:
        pass

    def stopped_early(self) -> bool:
        return False

    def leads(self, metrics: dict[str, float]) -> bool:
        return True

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.validated.append(0)

    def on_validation_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, *args) -> None:
        self.validated[-1] += len(batch[1])


CHECKS = ["objective.checks_per_epoch=4", "trainer.max_epochs=1", "model=lenet", "tracking.log_model=false"]


def test_a_run_records_every_check_and_keeps_the_best_checkpoint_among_them(make_config, store: str) -> None:
    counter = CountValidated()
    objective = train_config(make_config(*FAST, *CHECKS, f"tracking.uri={store}"), counter).objective
    _sanity_check, part, part_again, last_part, whole = counter.validated
    assert part == part_again == last_part == math.ceil(whole / 4)  # the same fixed part inside the epoch
    client = mlflow.MlflowClient(store)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    checks = client.get_metric_history(run.info.run_id, "check_val_loss")
    assert [m.step for m in sorted(checks, key=lambda m: m.step)] == [0, 1, 2, 3]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "check_val_acc")] == [0, 1, 2, 3]
    (epoch_end,) = client.get_metric_history(run.info.run_id, "val_loss")  # the epoch's curve stays one point
    last_check = max(checks, key=lambda m: m.step)
    assert epoch_end.step == 0 and epoch_end.value == pytest.approx(last_check.value)  # the last check ends it
    assert objective == pytest.approx(min(m.value for m in checks))  # the best checkpoint is chosen among checks


def test_a_sweep_prunes_a_hopeless_trial_inside_its_first_epoch(store: str) -> None:
    result = run_cli(
        "-m", *FAST, *CHECKS, f"tracking.uri={store}", "optim=adam", "lr=0.003,1e-7,0.001",
        "hydra.sweeper.pruner=median", "hydra.sweeper.pruner_options={n_startup_trials:1,n_warmup_steps:0}",
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    storage = f"sqlite:///{Path(store.removeprefix('sqlite:///')).parent / 'optuna.db'}"
    (summary,) = optuna.get_all_study_summaries(storage)
    trials = {t.params["lr"]: t for t in optuna.load_study(study_name=summary.study_name, storage=storage).trials}
    hopeless = trials[1e-7]
    assert hopeless.state == TrialState.PRUNED
    assert hopeless.user_attrs["pruned_epoch"] == 0 and hopeless.user_attrs["pruned_check"] < 3
    assert max(hopeless.intermediate_values) == hopeless.user_attrs["pruned_check"]
    complete = [t for t in trials.values() if t.state == TrialState.COMPLETE]
    assert complete
    for trial in complete:
        assert sorted(trial.intermediate_values) == [0, 1, 2, 3]
    run = mlflow.MlflowClient(store).get_run(hopeless.user_attrs["mlflow_run_id"])
    assert run.data.tags["trial_state"] == "PRUNED"
    assert int(run.data.tags["pruned_check"]) == hopeless.user_attrs["pruned_check"]
