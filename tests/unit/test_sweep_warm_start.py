"""Warm starts without a store or a process: recorded runs (plain mappings, as MLflow records them) as trials of a
search space, the reasons a run is skipped, the enqueued points checked against the space, and both added to an
in-memory Optuna study."""

from datetime import datetime

import optuna
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from optuna.trial import TrialState

from fruitlab.errors import ConfigError
from fruitlab.sweeping.claims import add_seeded_trials, counted, enqueue_points, is_warm_started, pending_points
from fruitlab.sweeping.objectives import Objective
from fruitlab.sweeping.space import SearchSpace
from fruitlab.sweeping.warm_start import (
    SEEDED_ATTR,
    WARM_STARTED_ATTR,
    RecordedRun,
    Seed,
    Seeding,
    curve_in_study_steps,
    enqueued_points,
    seed_of,
    warm_start_sources,
)

from .sweep_config import TRAINING, plan_of, task_config

SPACE = SearchSpace.from_overrides(
    OverridesParser.create().parse_overrides(
        [
            "lr=tag(log, interval(1e-4, 1e-1))",
            "model=choice(lenet,vgg1)",
            "batch_size=range(32,129,32)",
            "model.dropout=range(0.0,0.5,0.1)",
            "+trainer.limit_train_batches=int(interval(1, 8))",
        ]
    )
)
VAL_ACC = (Objective("val_acc", "maximize"),)
# What a finished training run records: its flattened config as text, its final metrics.
PARAMS = {
    "lr": "0.001",
    "model.name": "vgg1",
    "batch_size": "64",
    "model.dropout": "0.30000000000000004",
    "trainer.limit_train_batches": "4",
    "optim.name": "adam",
}
METRICS = {"best_val_acc": 0.9, "val_acc": 0.85, "test_acc": 0.8}


def run(run_id: str = "r1", status: str = "FINISHED", tags: dict | None = None, **changes: object) -> RecordedRun:
    params = {k: v for k, v in {**PARAMS, **changes}.items() if v is not None}
    return RecordedRun(run_id, status, params, METRICS, tags or {})


def test_a_finished_run_becomes_its_point_in_the_space_with_the_best_checkpoint_objective():
    seed = seed_of(run(), SPACE, VAL_ACC)
    assert seed == Seed(
        "r1",
        {
            "lr": 0.001,
            "model": "vgg1",
            "batch_size": 64,
            "model.dropout": 0.30000000000000004,
            "trainer.limit_train_batches": 4,
        },
        (0.9,),
    )
    assert type(seed.params["batch_size"]) is int and type(seed.params["lr"]) is float


def test_the_objective_falls_back_to_the_metric_itself():
    bare = RecordedRun("r2", "FINISHED", PARAMS, {"val_acc": 0.7})
    assert seed_of(bare, SPACE, VAL_ACC).values == (0.7,)


def test_a_value_on_a_step_grid_is_snapped_to_the_grid_value():
    seed = seed_of(run(**{"model.dropout": "0.3"}), SPACE, VAL_ACC)
    assert seed.params["model.dropout"] == SPACE.parameters[3].values[3]  # the grid's own float


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"lr": "0.5"}, "lr outside the search space"),
        ({"model.name": "resnet34"}, "model outside the search space"),
        ({"batch_size": "48"}, "batch_size outside the search space"),  # not on the range's step
        ({"model.dropout": "0.25"}, "model.dropout outside the search space"),
        ({"trainer.limit_train_batches": "2.5"}, "trainer.limit_train_batches outside the search space"),
        ({"lr": "adam"}, "lr outside the search space"),
        ({"lr": None}, "no lr recorded"),
    ],
)
def test_a_run_outside_the_space_is_skipped_with_its_reason(changes, reason):
    assert seed_of(run(**changes), SPACE, VAL_ACC) == reason


def test_unfinished_pruned_and_metricless_runs_are_skipped():
    assert seed_of(run(status="FAILED"), SPACE, VAL_ACC) == "not finished (FAILED)"
    assert seed_of(run(tags={"trial_state": "PRUNED"}), SPACE, VAL_ACC) == "pruned"
    assert seed_of(run(), SPACE, (Objective("val_loss", "minimize"),)) == "no objective metric"


def test_seeding_counts_the_skipped_runs_by_reason_in_one_line_and_takes_each_run_once():
    runs = [run("a"), run("a"), run("b", lr="0.5"), run("c", lr="0.9"), run("d", status="FAILED"), run("e")]
    seeding = Seeding.of(runs, SPACE, VAL_ACC)
    assert [s.run_id for s in seeding.seeds] == ["a", "e"]
    assert seeding.summary() == (
        "warm start: 2 finished runs became complete trials; "
        "3 runs skipped (2 lr outside the search space, 1 not finished (FAILED))"
    )
    assert Seeding.of([run()], SPACE, VAL_ACC).summary() == "warm start: 1 finished runs became complete trials"


def test_enqueued_points_are_checked_against_the_space_and_typed_by_it():
    point = {"lr": 0.01, "model": "lenet", "batch_size": 32, "model.dropout": 0.1, "+trainer.limit_train_batches": 2}
    assert enqueued_points([point], SPACE) == (
        {"lr": 0.01, "model": "lenet", "batch_size": 32, "model.dropout": 0.1, "trainer.limit_train_batches": 2},
    )
    assert enqueued_points(None, SPACE) == ()
    with pytest.raises(ConfigError, match=r"lr=0\.5 is outside lr=tag\(log, interval\(1e-4, 1e-1\)\)"):
        enqueued_points([{**point, "lr": 0.5}], SPACE)
    with pytest.raises(ConfigError, match=r"give exactly the swept keys \(lr, model, batch_size"):
        enqueued_points([{"lr": 0.01}], SPACE)
    with pytest.raises(ConfigError, match="give a mapping of the swept keys"):
        enqueued_points(["lr=0.01"], SPACE)
    with pytest.raises(ConfigError, match="give a list of points"):
        enqueued_points("lr=0.01", SPACE)


def test_warm_start_sources_are_names_or_ids():
    assert warm_start_sources(["fruits360", "abc123"]) == ("fruits360", "abc123")
    assert warm_start_sources("fruits360") == ("fruits360",)
    with pytest.raises(ConfigError, match="without a quote"):
        warm_start_sources(["it's"])


def test_the_plan_carries_the_warm_start_settings_and_refuses_more_points_than_trials():
    config = task_config(TRAINING)
    plan = plan_of("lr=0.1,0.01", config=config, enqueue=[{"lr": 0.01}], warm_start=["fruits360"])
    assert plan.enqueue == ({"lr": 0.01},) and plan.warm_start == ("fruits360",)
    assert plan_of("lr=0.1,0.01", config=config).enqueue == ()
    with pytest.raises(ConfigError, match=r"hydra\.sweeper\.enqueue has 2 points but n_trials=1"):
        plan_of("lr=0.1,0.01", config=config, enqueue=[{"lr": 0.01}, {"lr": 0.1}], n_trials=1)
    with pytest.raises(ConfigError, match="only fruitlab's training records runs"):
        plan_of("x=0,1", warm_start=["fruits360"])


LR_GRID = SearchSpace.from_overrides(OverridesParser.create().parse_overrides(["lr=0.1,0.01,0.001"]))


def test_seeded_trials_are_complete_with_their_curve_hold_their_point_and_cost_no_budget():
    study = optuna.create_study(direction="maximize")  # in memory: the same Study API as the RDB storage
    seeds = [Seed("a", {"lr": 0.1}, (0.5,)), Seed("b", {"lr": 0.01}, (0.7,))]
    add_seeded_trials(study, LR_GRID, seeds, {"a": {0: 0.4, 1: 0.5}})
    trials = study.get_trials()
    assert [(t.number, t.state, t.params, t.value) for t in trials] == [
        (0, TrialState.COMPLETE, {"lr": 0.1}, 0.5),
        (1, TrialState.COMPLETE, {"lr": 0.01}, 0.7),
    ]
    assert trials[0].intermediate_values == {0: 0.4, 1: 0.5} and trials[1].intermediate_values == {}
    assert [t.user_attrs[SEEDED_ATTR] for t in trials] == ["a", "b"]
    assert is_warm_started(study) and study.user_attrs[WARM_STARTED_ATTR] == 2
    started = datetime.now()
    assert counted(trials, started) == []  # n_trials counts the sweep's own trials
    assert pending_points(LR_GRID.grid(), trials, started) == [{"lr": 0.001}]  # a seeded grid point is not rerun


def test_enqueued_points_wait_in_order_and_are_not_enqueued_again():
    study = optuna.create_study()
    add_seeded_trials(study, LR_GRID, [Seed("a", {"lr": 0.1}, (0.5,))], {})
    points = [{"lr": 0.01}, {"lr": 0.1}, {"lr": 0.001}]
    assert enqueue_points(study, points) == 2  # 0.1 is held by the seeded trial
    assert enqueue_points(study, points) == 0  # a resumed sweep
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert [t.system_attrs["fixed_params"] for t in waiting] == [{"lr": 0.01}, {"lr": 0.001}]


def test_a_seeds_curve_is_placed_at_the_steps_of_the_studys_checks():
    by_check, by_epoch = {0: 0.5, 1: 0.7, 2: 0.8, 3: 0.9}, {0: 0.9}
    four = Seed("r", {}, (0.9,), checks_per_epoch=4)
    assert curve_in_study_steps(four, by_check, by_epoch, 4) == by_check  # validated as often: check by check
    one = Seed("r", {}, (0.9,), checks_per_epoch=1)
    assert curve_in_study_steps(one, {0: 0.9}, {0: 0.9, 1: 0.95}, 4) == {3: 0.9, 7: 0.95}  # at each epoch's end
    assert curve_in_study_steps(four, by_check, by_epoch, 2) == {1: 0.9}
