"""The ranking figure on hand-made run tables (the columns runs_frame reads from a store): latency per
architecture with its spread, the sentence that says it was measured under load, and a panel of one shared value
said in words."""

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt

from fruitlab.reporting.ranking import rank
from fruitlab.reporting.ranking_figure import architecture, latency_by_architecture, load_note, ranking_chart


def runs(*rows: dict[str, object]) -> pd.DataFrame:
    defaults = {
        "run_name": "run",
        "params.model.name": "lenet",
        "params.optim.name": "adam",
        "params.lr": "0.001",
        "params.data.image_size": 32.0,
        "metrics.num_parameters": 62_006.0,
        "metrics.test_zero_one_loss": 0.1,
        "metrics.test_loss": 0.3,
        "epochs_to_target": np.nan,
        "seconds_to_target": np.nan,
    }
    frame = pd.DataFrame([{**defaults, **row} for row in rows])
    frame["run_id"] = [f"{i:032x}" for i in range(len(frame))]
    return frame


def latency(p50: float, p95: float, **more: object) -> dict[str, object]:
    return {"metrics.latency_b1_p50_ms": p50, "metrics.latency_b1_p95_ms": p95, **more}


def test_runs_of_one_architecture_share_one_latency_with_the_spread_of_their_measurements() -> None:
    frame = runs(
        latency(1.6, 2.0),
        latency(2.9, 4.1),
        latency(12.0, 13.0, **{"params.model.name": "vgg1", "metrics.num_parameters": 1_060_138.0}),
        latency(3.0, 3.5, **{"params.data.image_size": 64.0}),  # the same network on bigger images
    )
    table = latency_by_architecture(frame)
    assert list(table["architecture"]) == [
        "lenet 32 px 62k params",
        "lenet 32 px 62k params",
        "vgg1 32 px 1.06M params",
        "lenet 64 px 62k params",
    ]
    lenet = table.iloc[0]
    assert (lenet["median_ms"], lenet["low_ms"], lenet["high_ms"]) == (2.25, 1.6, 4.1)
    assert table.iloc[1].equals(lenet)
    assert (table.iloc[2]["median_ms"], table.iloc[2]["low_ms"], table.iloc[2]["high_ms"]) == (12.0, 12.0, 13.0)
    assert list(table.index) == list(frame["run_id"])


def test_a_run_without_latency_or_a_p95_still_has_a_row() -> None:
    frame = runs(latency(1.6, np.nan), {"params.model.name": "vgg1"})
    table = latency_by_architecture(frame)
    assert table.iloc[0]["high_ms"] == 1.6
    assert np.isnan(table.iloc[1]["median_ms"])


def test_the_architecture_of_a_run_without_an_image_size_names_what_it_has() -> None:
    assert (
        architecture(pd.Series({"params.model.name": "ffnn", "metrics.num_parameters": 1234.0})) == "ffnn 1.23k params"
    )


def test_the_figure_says_when_latency_was_measured_under_load() -> None:
    idle = {"metrics.latency_load": 0.2, "metrics.latency_cpus": 2.0}
    busy = {"metrics.latency_load": 1.7, "metrics.latency_cpus": 2.0}
    assert load_note(runs(latency(1.6, 2.0, **idle), latency(2.9, 4.1, **idle))) is None
    note = load_note(runs(latency(1.6, 2.0, **idle), latency(2.9, 4.1, **busy), latency(2.0, 2.5)))
    assert note is not None and note.startswith("latency measured under load")
    assert "during 1 of the 2 measurements" in note and "up to 1.7 of 2 cores" in note
    assert load_note(runs(latency(1.6, 2.0))) is None  # not recorded: nothing to say


def test_a_panel_of_one_shared_value_says_it_in_words_and_draws_no_bars() -> None:
    frame = runs(
        latency(1.6, 2.0, **{"metrics.test_zero_one_loss": 0.1}),
        latency(2.9, 4.1, **{"metrics.test_zero_one_loss": 0.2}),
    )
    frame["run_name"] = ["a", "b"]
    table = rank(frame)
    fig = ranking_chart(table, frame)
    loss, seconds, parameters, timing = fig.axes
    assert len(loss.patches) == 2
    assert not parameters.patches and "all 2 runs:\n62k" in [text.get_text() for text in parameters.texts]
    assert not seconds.patches and "every run:\nnot reached" in [text.get_text() for text in seconds.texts]
    widths = [bar.get_width() for bar in timing.patches]
    assert widths == [2.25, 2.25] and timing.get_xscale() == "linear"  # one network: one latency
    plt.close(fig)
