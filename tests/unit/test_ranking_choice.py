"""Which run ranks first and what the ranking shows, on hand-made run tables (the columns runs_frame reads from a
store): order by test zero-one loss then test cross-entropy, the settings that vary, labels that tell runs apart,
the best run of each model, and the PCA curve's points."""

import math

import numpy as np
import pandas as pd

from fruitlab.reporting.ranking import format_value, pca_points, rank, run_labels, setting, swept_params
from fruitlab.reporting.report import pick_curves


def runs(*rows: dict[str, object]) -> pd.DataFrame:
    defaults = {
        "params.optim.name": "adam",
        "params.lr": "0.001",
        "params.tracking.run_name": None,
        "metrics.test_loss": 0.1,
        "epochs_to_target": np.nan,
        "seconds_to_target": np.nan,
    }
    frame = pd.DataFrame([{**defaults, **row} for row in rows])
    frame["run_id"] = [f"{i:032x}" for i in range(len(frame))]
    return frame


def test_the_lowest_test_zero_one_loss_ranks_first_and_ties_go_to_the_lower_cross_entropy() -> None:
    frame = runs(
        {"run_name": "a", "params.model.name": "lenet", "metrics.test_zero_one_loss": 0.10, "metrics.test_loss": 0.2},
        {"run_name": "b", "params.model.name": "vgg1", "metrics.test_zero_one_loss": 0.02, "metrics.test_loss": 0.30},
        {"run_name": "c", "params.model.name": "vgg2", "metrics.test_zero_one_loss": 0.02, "metrics.test_loss": 0.05},
    )
    table = rank(frame)
    assert list(table["run"]) == ["c", "b", "a"]
    assert list(table["rank"]) == [1, 2, 3]
    assert list(table["model"]) == ["vgg2", "vgg1", "lenet"]
    assert table["run_id"][0] == frame["run_id"][2]


def test_only_settings_that_vary_are_shown_and_bookkeeping_never() -> None:
    frame = runs(
        {"run_name": "a", "params.batch_size": "32", "params.seed": "1", "params.data.n_components": "10"},
        {"run_name": "b", "params.batch_size": "64", "params.seed": "1", "params.tracking.run_name": "x"},
        {"run_name": "c", "params.batch_size": "64", "params.seed": "1", "params.data.n_components": "30"},
    )
    frame["params.tracking.run_name"] = ["x", "y", "z"]
    frame["params.lr"] = ["0.1", "0.01", "0.1"]  # varies, but is always shown as its own column
    assert swept_params(frame) == ["params.batch_size", "params.data.n_components"]


def test_runs_sharing_a_name_are_told_apart_by_what_differs_then_by_run_id() -> None:
    frame = runs(
        {"run_name": "ffnn-adam", "params.data.n_components": 10.0},
        {"run_name": "ffnn-adam", "params.data.n_components": 30.0},
        {"run_name": "vgg1", "params.data.n_components": np.nan},
    )
    labels = run_labels(frame, ["params.data.n_components"])
    assert list(labels) == ["ffnn-adam n_components=10", "ffnn-adam n_components=30", "vgg1"]
    twins = runs({"run_name": "lenet"}, {"run_name": "lenet"})
    assert list(run_labels(twins, [])) == [f"lenet {twins['run_id'][0][:6]}", f"lenet {twins['run_id'][1][:6]}"]


def test_the_best_run_of_each_model_is_its_first_in_the_ranking() -> None:
    table = pd.DataFrame({"model": ["vgg1", "lenet", "vgg1", "lenet", "ffnn"], "run": list("abcde")})
    assert pick_curves(table, None, per_model=True) == [0, 1, 4]


def test_the_pca_curve_averages_runs_of_one_component_count() -> None:
    frame = runs(
        {"run_name": "a", "params.data.n_components": 10.0, "metrics.test_zero_one_loss": 0.30},
        {"run_name": "b", "params.data.n_components": 10.0, "metrics.test_zero_one_loss": 0.20},
        {"run_name": "c", "params.data.n_components": 50.0, "metrics.test_zero_one_loss": 0.10},
        {"run_name": "d", "params.data.n_components": np.nan, "metrics.test_zero_one_loss": 0.01},
    )
    points = pca_points(frame)
    assert points.to_dict("list") == {"n_components": [10.0, 50.0], "test_zero_one_loss": [0.25, 0.10], "runs": [2, 1]}
    assert pca_points(runs({"run_name": "cnn", "metrics.test_zero_one_loss": 0.1})).empty


def test_values_are_shown_short() -> None:
    assert setting("params.data.n_components", 30.0) == "n_components=30"
    assert setting("params.optim.name", "sgd") == "name=sgd"
    assert [format_value(v) for v in (None, math.nan, 1234.0, 0.012345678, 0.5, "vgg1")] == [
        "—",
        "—",
        "1,234",
        "0.01235",
        "0.5",
        "vgg1",
    ]
