"""The hard study's report, its pure parts: what a strategy would deliver so far against its wall time, the mean
and band over seeds, one strategies.csv row, and the most confused class pairs."""

import numpy as np
import pandas as pd
import pytest

from fruitlab.studies.hard_report import StrategyRecord, best_so_far, confused_pairs, mean_curve
from fruitlab.tracking.query import RunRecord


def result(run_id: str, val_acc: float, test_loss: float, **metrics: float) -> RunRecord:
    values = {"best_val_acc": val_acc, "test_zero_one_loss": test_loss, **metrics}
    return RunRecord(run_id, run_id, "0", "FINISHED", "parent", {}, values, {})


def trials() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "number": [0, 1, 2, 3],
            "state": ["COMPLETE", "COMPLETE", "PRUNED", "COMPLETE"],
            "datetime_start": [
                "2026-01-01 10:00:00",
                "2026-01-01 10:00:00",
                "2026-01-01 10:00:10",
                "2026-01-01 10:00:20",
            ],
            "datetime_complete": [
                "2026-01-01 10:00:00",
                "2026-01-01 10:00:30",
                "2026-01-01 10:00:15",
                "2026-01-01 10:01:00",
            ],
            "user_attrs_mlflow_run_id": [None, "a", "b", "c"],
            "user_attrs_warm_start_run_id": ["w", None, None, None],
        }
    )


def record(**changes: object) -> StrategyRecord:
    search = result("s", 0, 0, part_wall_s=100.0, trials_complete=3, trials_pruned=1, warm_start_trials=1)
    final_parent = result("f", 0, 0, part_wall_s=200.0)
    settings = {
        "strategy": "tpe_warm",
        "seed": 1,
        "search": search,
        "trials": trials(),
        "final": result("final", 0.97, 0.02),
        "final_parent": final_parent,
    }
    return StrategyRecord(**{**settings, **changes})


RUNS = {
    "w": result("w", 0.90, 0.12),
    "a": result("a", 0.85, 0.10),
    "b": result("b", 0.99, 0.01),
    "c": result("c", 0.95, 0.04),
}


def test_a_warm_start_is_known_from_the_start_a_pruned_trial_is_never_chosen_and_the_final_model_ends_it() -> None:
    curve = best_so_far(record(), RUNS)
    assert list(curve["seconds"]) == [0.0, 60.0, 300.0]  # trial a (val 0.85) is no better than the warm start
    assert list(curve["test_zero_one_loss"]) == [0.12, 0.04, 0.02]
    assert curve["val_zero_one_loss"].tolist() == pytest.approx([0.10, 0.05, 0.03])


def test_train_longer_has_its_final_model_only() -> None:
    curve = best_so_far(record(strategy="train_longer", search=None, trials=pd.DataFrame()), RUNS)
    assert list(curve["seconds"]) == [200.0] and list(curve["test_zero_one_loss"]) == [0.02]


def test_a_row_counts_the_trials_the_search_ran_and_charges_both_parts() -> None:
    assert record().row() == {
        "strategy": "tpe_warm",
        "seed": 1,
        "trials": 3,  # 3 complete + 1 pruned - 1 warm start
        "pruned": 1,
        "search_s": 100.0,
        "train_s": 200.0,
        "val_zero_one_loss": pytest.approx(0.03),
        "test_zero_one_loss": 0.02,
    }


def test_the_mean_curve_holds_each_seeds_last_value_and_its_band_is_the_std_over_seeds() -> None:
    one = pd.DataFrame({"seconds": [0.0, 10.0], "loss": [0.4, 0.2]})
    two = pd.DataFrame({"seconds": [5.0], "loss": [0.6]})
    mean, std = mean_curve([one, two], "loss", np.array([0.0, 5.0, 10.0, 20.0]))
    assert mean.tolist() == pytest.approx([0.4, 0.5, 0.4, 0.4])  # seed two unknown before 5 s
    assert std[0] == 0.0 and std[2] == pytest.approx(np.std([0.2, 0.6], ddof=1))


def test_confused_pairs_are_the_largest_off_diagonal_counts() -> None:
    names = ["apple", "pear", "plum"]
    matrix = pd.DataFrame([[50, 8, 0], [3, 40, 1], [0, 0, 20]], index=names, columns=names)
    pairs = confused_pairs(matrix, top=2)
    assert list(zip(pairs["true"], pairs["predicted"], pairs["images"], strict=True)) == [
        ("apple", "pear", 8),
        ("pear", "apple", 3),
    ]
    assert pairs["share_of_true_class"].iloc[0] == pytest.approx(8 / 58)
