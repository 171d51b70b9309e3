"""A trial's identity travels in its job's Hydra overrides and comes back whole from the job's composed config."""

from fruitlab.config import compose_config
from fruitlab.sweeping.identity import TrialIdentity


def through_hydra(identity: TrialIdentity) -> TrialIdentity | None:
    """The identity as a trial's job reads it: its overrides composed into fruitlab's config by Hydra."""
    return TrialIdentity.of(compose_config(["model=lenet", *identity.overrides()]))


def test_a_pruned_trial_on_a_shared_machine_comes_back_whole():
    identity = TrialIdentity(
        storage="postgresql+psycopg2://sweeper:p@ss'w\\rd@db.example:5432/optuna",
        study="fruits360-lr-0a1b2c3d",
        number=7,
        metric="val_loss",
        direction="minimize",
        pruner="median",
        pruner_options={"n_startup_trials": 2, "n_warmup_steps": 1},
        threads=4,
    )
    assert through_hydra(identity) == identity


def test_a_trial_of_several_objectives_without_pruner_comes_back_whole():
    identity = TrialIdentity("sqlite:////tmp/a folder/optuna.db", "toy-x+y-12345678", 0)
    assert not any(o.startswith(("+trial.metric", "+trial.pruner", "+trial.threads")) for o in identity.overrides())
    assert through_hydra(identity) == identity


def test_a_job_outside_a_sweep_has_no_identity():
    assert TrialIdentity.of(compose_config(["model=lenet"])) is None


def test_quotes_and_backslashes_anywhere_in_a_value_survive():
    for storage in ("sqlite:///a\\", "sqlite:///\\'", "sqlite:///a'b\\\\c", "sqlite:///''"):
        identity = TrialIdentity(storage, "s", 1)
        assert through_hydra(identity) == identity, storage
