"""The ranking as a figure: one row per run, best at the top, one panel per quantity that tells runs apart. A
panel whose runs all share one value says so in words; latency is drawn per architecture, with its spread, and
the figure says when it was measured while other work kept the machine busy."""

import textwrap

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from fruitlab.plotting import all_identical, compact_number, set_value_scale
from fruitlab.reporting.ranking import format_value, target_columns

P50, P95 = "metrics.latency_b1_p50_ms", "metrics.latency_b1_p95_ms"
LOAD, CPUS = "metrics.latency_load", "metrics.latency_cpus"  # cores other work kept busy, of the machine's
# What makes two runs' latencies comparable: the same network (name and size) on images of the same size.
ARCHITECTURE = ("params.model.name", "params.data.image_size", "metrics.num_parameters")
UNDER_LOAD = 0.5  # other work on more than half of the cores: the latency is the machine's as much as the model's
LATENCY_NOTE = (
    "latency per architecture (model, image size, parameters): the median of its runs' p50, with a whisker from "
    "their lowest p50 to their highest p95 (label: median [lowest, highest])"
)
ROW_INCHES, FOOTNOTE_INCHES = 0.32, 0.2
WRAP = 210  # footnote characters per line, across the figure's width


def architecture(run: pd.Series) -> str:
    """A run's network as text, 'lenet 32 px 62k params': runs sharing it time the same computation."""
    name, size, parameters = (run.get(column) for column in ARCHITECTURE)
    parts = [
        format_value(name) if pd.notna(name) else "",
        f"{format_value(size)} px" if pd.notna(size) else "",
        f"{compact_number(parameters)} params" if pd.notna(parameters) else "",
    ]
    return " ".join(part for part in parts if part)


def latency_by_architecture(frame: pd.DataFrame) -> pd.DataFrame:
    """Per run (index: run_id): its architecture, the median of the batch-1 p50 latencies of the runs sharing it,
    their lowest p50 and highest p95: what one machine's load and noise made of the same network. A run measured
    with no p95 counts its p50 as its p95; a run with no latency has NaN."""
    p50 = frame.get(P50, pd.Series(np.nan, frame.index)).astype(float)
    runs = pd.DataFrame(
        {
            "architecture": frame.apply(architecture, axis=1),
            "p50": p50,
            "p95": frame.get(P95, p50).astype(float).fillna(p50),
        }
    )
    grouped = runs.groupby("architecture")
    runs["median_ms"] = grouped["p50"].transform("median")
    runs["low_ms"] = grouped["p50"].transform("min")
    runs["high_ms"] = grouped["p95"].transform("max")
    return runs.drop(columns=["p50", "p95"]).set_index(frame["run_id"])


def load_note(frame: pd.DataFrame) -> str | None:
    """A sentence when any run's latency was measured while other processes kept more than half of the machine's
    cores busy (`latency_load` of `latency_cpus`); None when none was, or none recorded it."""
    if LOAD not in frame or CPUS not in frame:
        return None
    share = frame[LOAD] / frame[CPUS]
    loaded = share > UNDER_LOAD
    if not loaded.any():
        return None
    busiest = frame.loc[share.idxmax()]
    return (
        f"latency measured under load: other processes kept over half of the cores busy during {loaded.sum()} of "
        f"the {share.notna().sum()} measurements recording it (up to {busiest[LOAD]:.1f} of {busiest[CPUS]:g} "
        "cores): differences within a whisker are the machine's, not the model's"
    )


def ranking_chart(table: pd.DataFrame, frame: pd.DataFrame, target: float = 0.99) -> Figure:
    """One row per run of `table` (the ranking, best at the top): test zero-one loss, then what separates runs
    that all reach it: training seconds to the target validation accuracy, parameters and batch-1 latency per
    architecture. `frame` holds the runs' params and metrics (runs_frame), for the latency's architecture and
    load."""
    seconds_col = target_columns(target)[1]
    runs = frame.set_index("run_id").loc[table["run_id"]].reset_index()
    latency = latency_by_architecture(runs)
    notes = [LATENCY_NOTE, *filter(None, [load_note(runs)])]
    lines = sum(len(textwrap.wrap(note, WRAP)) for note in notes)
    height = 1.3 + ROW_INCHES * len(table) + FOOTNOTE_INCHES * lines
    positions = np.arange(len(table))
    fig, axes = plt.subplots(1, 4, figsize=(16, height), sharey=True)
    values = table["test_zero_one_loss"].astype(float).to_numpy()
    bar_panel(axes[0], values, "test zero-one loss", "tab:blue", "—", log=False)
    seconds = table[seconds_col].astype(float).to_numpy()
    bar_panel(axes[1], seconds, f"seconds to {target:.0%} val accuracy", "tab:green", "not reached")
    bar_panel(axes[2], table["num_parameters"].astype(float).to_numpy(), "parameters", "tab:blue", "—")
    latency_panel(axes[3], latency)
    axes[0].set_yticks(positions, table["run"], fontsize=8)
    axes[0].invert_yaxis()
    text = "\n".join(line for note in notes for line in textwrap.wrap(note, WRAP))
    fig.text(0.01, 0.01, text, fontsize=8, color="dimgray", va="bottom")
    fig.tight_layout(rect=(0, (FOOTNOTE_INCHES * lines + 0.1) / height, 1, 1))
    return fig


def bar_panel(ax: Axes, values: np.ndarray, title: str, color: str, missing: str, log: bool = True) -> None:
    """A bar per row, labelled with its value; on a log axis only where `log` and the values span decades. One
    value shared by all rows, or none at all, is said in words."""
    ax.set_title(title, fontsize=10)
    shown = values[np.isfinite(values)]
    if shown.size == 0 or (shown.size == values.size and all_identical(values)):
        words = f"all {shown.size} runs:\n{compact_number(shown[0])}" if shown.size else f"every run:\n{missing}"
        ax.text(0.5, 0.5, words, ha="center", va="center", transform=ax.transAxes, fontsize=10)
        ax.set_xticks([])
        return
    positions = np.arange(len(values))
    ax.barh(positions, np.nan_to_num(values), color=color)
    for y, value in zip(positions, values, strict=True):
        label = missing if np.isnan(value) else compact_number(value)
        ax.text(0 if np.isnan(value) else value, y, f" {label}", va="center", fontsize=7)
    set_value_scale(ax, values, log)
    leave_room_for_labels(ax, 0.15)
    ax.grid(axis="x", alpha=0.3)


def latency_panel(ax: Axes, latency: pd.DataFrame) -> None:
    """Each row's architecture's median batch-1 latency, with a whisker over the spread of its runs."""
    positions = np.arange(len(latency))
    median, low, high = (latency[column].to_numpy() for column in ("median_ms", "low_ms", "high_ms"))
    ax.barh(positions, np.nan_to_num(median), color="tab:purple", alpha=0.8)
    whisker = np.vstack([median - low, high - median])
    ax.errorbar(median, positions, xerr=np.nan_to_num(whisker), fmt="none", ecolor="black", capsize=3, lw=1)
    for y, value, low_end, end in zip(positions, median, low, high, strict=True):
        ax.text(
            0 if np.isnan(value) else end,
            y,
            " —" if np.isnan(value) else f" {value:.3g} [{low_end:.3g}, {end:.3g}]",
            va="center",
            fontsize=7,
        )
    set_value_scale(ax, np.concatenate([low, high]))
    leave_room_for_labels(ax, 0.3)
    ax.set_title("batch-1 latency, ms (CPU), per architecture", fontsize=10)
    ax.grid(axis="x", alpha=0.3)


def leave_room_for_labels(ax: Axes, share: float) -> None:
    """Widen the x axis to the right by `share` of the panel, so that labels at the ends of bars stay inside."""
    low, high = ax.get_xlim()
    if ax.get_xscale() == "log":
        ax.set_xlim(low, low * (high / low) ** (1 / (1 - share)))
    else:
        ax.set_xlim(low, low + (high - low) / (1 - share))
