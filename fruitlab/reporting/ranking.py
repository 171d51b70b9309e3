"""Rank training runs read from the store, and draw the ranking and the PCA curve."""

import math

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

# Always shown; the other params appear when they vary across the runs.
FIXED_PARAMS = {"model.name": "model", "optim.name": "optimizer", "lr": "lr"}
BOOKKEEPING_PREFIXES = ("params.tracking.",)  # run names, parent ids: they differ without being settings
COMPONENTS = "params.data.n_components"
METRICS = ("num_parameters", "test_zero_one_loss", "test_acc", "epochs", "fit_time_s")
LATENCY = "latency_b1_mean_ms"
# Ties on the test zero-one loss (frequent: the task saturates) are broken by the test cross-entropy.
ORDER = ("metrics.test_zero_one_loss", "metrics.test_loss")


def target_columns(target: float) -> tuple[str, str]:
    percent = f"{target * 100:g}"
    return f"epochs_to_val_acc_{percent}", f"seconds_to_val_acc_{percent}"


def swept_params(frame: pd.DataFrame) -> list[str]:
    """`params.*` columns, other than the fixed ones, that take two or more values among the runs recording
    them (a PCA run's `data.n_components` counts even if CNN runs beside it have none)."""
    fixed = {f"params.{name}" for name in FIXED_PARAMS}
    return [
        column
        for column in frame.columns
        if column.startswith("params.")
        and column not in fixed
        and not column.startswith(BOOKKEEPING_PREFIXES)
        and frame[column].dropna().nunique() > 1
    ]


def setting(param: str, value: object) -> str:
    """'params.data.n_components', 30.0 -> 'n_components=30'."""
    name = param.rsplit(".", 1)[-1]
    return f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"


def run_labels(frame: pd.DataFrame, params: list[str]) -> pd.Series:
    """Run names; a name shared by several runs (a PCA sweep's trials are all ffnn-adam-lr0.001) is completed
    with the params that differ between them, then with the run id if that is not enough."""
    labels = frame["run_name"].astype(str)
    for _, group in frame.groupby("run_name"):
        if len(group) > 1:
            differing = [p for p in params if group[p].dropna().nunique() > 1]
            for index, row in group[differing].iterrows():
                labels[index] = " ".join([labels[index], *(setting(k, v) for k, v in row.dropna().items())])
    if labels.duplicated(keep=False).any():
        labels = labels + " " + frame["run_id"].str[:6]
    return labels


def rank(frame: pd.DataFrame, target: float = 0.99) -> pd.DataFrame:
    """The ranking table, best first: one row per run with its model, optimizer, lr, swept params, size,
    test results, training effort and batch-1 latency. Column names are the MLflow param and metric names."""
    params = swept_params(frame)
    ordered = frame.sort_values(list(ORDER), kind="stable").reset_index(drop=True)
    epochs_col, seconds_col = target_columns(target)
    table = pd.DataFrame({"rank": np.arange(1, len(ordered) + 1), "run": run_labels(ordered, params)})
    for param, name in FIXED_PARAMS.items():
        table[name] = ordered.get(f"params.{param}")
    for param in params:
        table[param.removeprefix("params.")] = ordered[param]
    for metric in METRICS:
        table[metric] = ordered.get(f"metrics.{metric}")
    table[epochs_col] = ordered["epochs_to_target"]
    table[seconds_col] = ordered["seconds_to_target"]
    table[LATENCY] = ordered.get(f"metrics.{LATENCY}")
    table["run_id"] = ordered["run_id"]
    return table


def format_value(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float | np.floating):
        return f"{int(value):,}" if float(value).is_integer() and abs(value) >= 1 else f"{value:.4g}"
    return str(value)


def display(table: pd.DataFrame) -> pd.DataFrame:
    """The table as text, for the terminal and Markdown: short run ids, numbers rounded, '—' for none."""
    shown = table.assign(run_id=table["run_id"].str[:8]) if "run_id" in table else table
    shown = shown.astype(object)
    return shown.apply(lambda column: column.map(format_value))


def markdown(table: pd.DataFrame) -> str:
    shown = display(table)
    lines = ["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in shown.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def pca_points(frame: pd.DataFrame) -> pd.DataFrame:
    """Test zero-one loss per number of principal components (the mean where several runs share a count)."""
    if COMPONENTS not in frame:  # no PCA run among them
        return pd.DataFrame({"n_components": [], "test_zero_one_loss": [], "runs": []})
    runs = frame.dropna(subset=[COMPONENTS])
    return (
        runs.groupby(COMPONENTS)["metrics.test_zero_one_loss"]
        .agg(test_zero_one_loss="mean", runs="size")
        .rename_axis("n_components")
        .reset_index()
    )


def pca_curve(points: pd.DataFrame) -> Figure:
    """The seed paper's curve: test zero-one loss of the PCA → FFNN baseline against the component count."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(points["n_components"], points["test_zero_one_loss"], marker="o")
    best = points.loc[points["test_zero_one_loss"].idxmin()]
    ax.annotate(
        f"best: {best['n_components']:g} components, {best['test_zero_one_loss']:.4f}",
        (best["n_components"], best["test_zero_one_loss"]),
        textcoords="offset points",
        xytext=(0, 12),
        ha="center",
        fontsize=8,
    )
    ax.set_xlabel("principal components (grayscale, standardised pixels)")
    ax.set_ylabel("test zero-one loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
