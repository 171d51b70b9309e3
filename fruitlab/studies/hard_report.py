"""The Fruits-360 hard study's report, read from its store: the baselines and the retrained best configuration
as mean ± std over seeds, the search strategies' best-so-far validation and test zero-one loss against wall
time (one figure), a ranking, and the best model's confusion matrix, most confused class pairs and Grad-CAM of
those confusions (drawn by the caller). Written to a folder: summary.md, ranking.{csv,png},
best_so_far.{csv,png}, confusion_matrix.png, confused_pairs.csv, gradcam_confusions.png."""

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from fruitlab.plotting import confusion_matrix_figure
from fruitlab.reporting.ranking import markdown
from fruitlab.tracking.query import SWEEP_PARENT_TAG, RunRecord, StoreReader, descendants, runs_tagged

RUN_ID_COLUMN = "user_attrs_mlflow_run_id"  # the trial's MLflow run in the sweep's trials.csv
RESULT = "test_zero_one_loss"
SELECTION = "best_val_acc"  # trials and checkpoints are chosen by validation accuracy, never by a test metric


@dataclass(frozen=True)
class StudyParts:
    """The study names of each part of the study, as given to the sweeper (hydra.sweeper.study_name)."""

    baselines: dict[str, str]  # label -> study name
    strategies: dict[str, str]
    retrained: str


@dataclass(frozen=True)
class HardReport:
    folder: Path
    ranking: pd.DataFrame
    best_run_id: str | None  # the retrained best configuration's first finished run
    retrained_parent_id: str | None  # the parent run of the retrained best configuration's sweep


def sweep_parent(reader: StoreReader, experiment_id: str, study_name: str) -> RunRecord | None:
    runs = runs_tagged(reader.store, experiment_id, SWEEP_PARENT_TAG, study_name, limit=1)
    return runs[0] if runs else None


def finished_trials(runs: list[RunRecord], parent: RunRecord | None) -> list[RunRecord]:
    """The parent's trials that finished with a test result."""
    return [run for run in descendants(runs, parent.run_id) if run.is_training_result] if parent else []


def trials_table(reader: StoreReader, parent: RunRecord) -> pd.DataFrame:
    """The sweep's trials.csv (Optuna's trials with their state, value, duration and MLflow run), or empty."""
    with tempfile.TemporaryDirectory() as folder:
        try:
            path = reader.store.download_artifact(parent.run_id, "trials.csv", Path(folder))
        except Exception:  # no table yet: the sweep never reached its report
            return pd.DataFrame()
        return pd.read_csv(path)


def best_so_far(trials: pd.DataFrame, results: dict[str, RunRecord]) -> pd.DataFrame:
    """After each finished trial (in completion order, time = the trials' summed durations): the validation and
    test zero-one loss of the trial a practitioner would pick so far, the best by validation accuracy."""
    columns = ["minutes", "trial", "best_trial", "val_zero_one_loss", "test_zero_one_loss", "run_id"]
    if trials.empty:
        return pd.DataFrame(columns=columns)
    done = trials.dropna(subset=["datetime_complete"]).sort_values("datetime_complete")
    minutes = pd.to_timedelta(done["duration"]).dt.total_seconds().cumsum() / 60
    rows, best, best_number = [], None, None
    for (_, trial), elapsed in zip(done.iterrows(), minutes, strict=True):
        run = results.get(str(trial.get(RUN_ID_COLUMN)))
        better = run is not None and (best is None or run.metrics[SELECTION] > best.metrics[SELECTION])
        if trial["state"] == "COMPLETE" and better:
            best, best_number = run, trial["number"]
        if best is not None:
            val_loss = 1 - best.metrics[SELECTION]
            rows.append((elapsed, trial["number"], best_number, val_loss, best.metrics[RESULT], best.run_id))
    return pd.DataFrame(rows, columns=columns)


def best_so_far_figure(curves: dict[str, pd.DataFrame]) -> Figure:
    """Best-so-far validation (left) and test (right) zero-one loss against wall time, one line per strategy."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, column, title in zip(
        axes, ("val_zero_one_loss", "test_zero_one_loss"), ("validation", "test"), strict=True
    ):
        for label, curve in curves.items():
            if not curve.empty:
                ax.step(curve["minutes"], curve[column], where="post", marker="o", markersize=3, label=label)
        ax.set_title(f"{title} zero-one loss of the best trial so far (chosen on validation)", fontsize=9)
        ax.set_xlabel("wall time of the strategy's trials (min)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("zero-one loss")
    axes[0].legend()
    fig.tight_layout()
    return fig


def seed_row(label: str, runs: list[RunRecord]) -> dict[str, object]:
    losses = np.array([run.metrics[RESULT] for run in runs])
    return {
        "configuration": label,
        "runs": len(runs),
        "test_zero_one_loss_mean": losses.mean() if len(losses) else np.nan,
        "test_zero_one_loss_std": losses.std(ddof=1) if len(losses) > 1 else np.nan,
        "val_zero_one_loss_mean": np.mean([1 - run.metrics[SELECTION] for run in runs]) if runs else np.nan,
    }


def by_model(runs: list[RunRecord]) -> dict[str, list[RunRecord]]:
    groups: dict[str, list[RunRecord]] = {}
    for run in runs:
        groups.setdefault(run.params.get("model.name", "?"), []).append(run)
    return groups


def ranking_figure(table: pd.DataFrame) -> Figure:
    positions = np.arange(len(table))
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.35 * len(table)))
    ax.barh(positions, table["test_zero_one_loss_mean"], xerr=table["test_zero_one_loss_std"].fillna(0))
    ax.set_yticks(positions, table["configuration"], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("test zero-one loss (mean ± std over seeds; a strategy: its validation-chosen trial)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def read_confusion(reader: StoreReader, run_id: str) -> pd.DataFrame:
    """The run's test confusion matrix (rows true, columns predicted), as fit() logged it."""
    with tempfile.TemporaryDirectory() as folder:
        path = reader.store.download_artifact(run_id, "metrics/confusion_matrix.csv", Path(folder))
        return pd.read_csv(path, index_col=0)


def confused_pairs(matrix: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    """The `top` (true, predicted) pairs of different classes with the most test images."""
    counts = matrix.to_numpy().copy()
    np.fill_diagonal(counts, 0)
    order = np.argsort(counts, axis=None)[::-1][:top]
    rows = [np.unravel_index(i, counts.shape) for i in order if counts.flat[i] > 0]
    support = matrix.to_numpy().sum(axis=1)
    return pd.DataFrame(
        [
            (matrix.index[t], matrix.columns[p], int(counts[t, p]), counts[t, p] / max(support[t], 1), t, p)
            for t, p in rows
        ],
        columns=["true", "predicted", "images", "share_of_true_class", "true_label", "predicted_label"],
    )


# (run id, confused pairs) -> a figure of Grad-CAM on those confusions, or None
ConfusionFigure = Callable[[str, pd.DataFrame], Figure | None]


def write_hard_report(
    reader: StoreReader, experiment: str, parts: StudyParts, out: Path, gradcam: ConfusionFigure | None = None
) -> HardReport:
    """Every table and figure of the study, from the store, into `out`; `gradcam` draws the Grad-CAM of the
    best model's most confused pairs (it needs the model, which this layer does not load)."""
    experiment_id = reader.select_experiment(experiment).experiment_id
    runs = reader.experiment_runs(experiment_id)
    parents = {
        name: sweep_parent(reader, experiment_id, name)
        for name in [*parts.baselines.values(), *parts.strategies.values(), parts.retrained]
    }
    rows = []
    for study in parts.baselines.values():
        rows += [seed_row(model, group) for model, group in by_model(finished_trials(runs, parents[study])).items()]
    curves, strategy_rows = {}, []
    for label, study in parts.strategies.items():
        parent = parents[study]
        trials = trials_table(reader, parent) if parent else pd.DataFrame()
        results = {run.run_id: run for run in finished_trials(runs, parent)}
        curves[label] = best_so_far(trials, results)
        if not curves[label].empty:
            last = curves[label].iloc[-1]
            row = seed_row(f"search: {label} (trial {int(last['best_trial'])})", [results[last["run_id"]]])
            strategy_rows.append({**row, "minutes": last["minutes"], "trials": len(trials)})
    retrained = sorted(finished_trials(runs, parents[parts.retrained]), key=lambda run: run.params.get("seed", ""))
    if retrained:
        rows.append(seed_row("best configuration, retrained", retrained))
    ranking = pd.DataFrame(rows + strategy_rows).sort_values("test_zero_one_loss_mean", kind="stable")
    ranking = ranking.reset_index(drop=True)
    out.mkdir(parents=True, exist_ok=True)
    ranking.to_csv(out / "ranking.csv", index=False)
    curve_table = pd.concat([c.assign(strategy=label) for label, c in curves.items()], ignore_index=True)
    curve_table.to_csv(out / "best_so_far.csv", index=False)
    figures = {"best_so_far.png": best_so_far_figure(curves), "ranking.png": ranking_figure(ranking)}
    pairs = pd.DataFrame()
    best_run_id = retrained[0].run_id if retrained else None
    if best_run_id:
        matrix = read_confusion(reader, best_run_id)
        pairs = confused_pairs(matrix)
        pairs.drop(columns=["true_label", "predicted_label"]).to_csv(out / "confused_pairs.csv", index=False)
        figures["confusion_matrix.png"] = confusion_matrix_figure(matrix.to_numpy(), list(matrix.index), True)
        confusions = gradcam(best_run_id, pairs.head(4)) if gradcam and not pairs.empty else None
        if confusions is not None:
            figures["gradcam_confusions.png"] = confusions
    for name, figure in figures.items():
        figure.savefig(out / name, dpi=110)
        plt.close(figure)
    lines = [
        f"# Fruits-360 hard study: `{experiment}`",
        "",
        "Test zero-one loss, best first: each baseline and the retrained best configuration over their seeds, "
        "each search strategy's trial chosen on validation accuracy.",
        "",
        markdown(ranking),
    ]
    if not pairs.empty:
        lines += ["Most confused class pairs of the best configuration (first seed):", ""]
        lines += [markdown(pairs.drop(columns=["true_label", "predicted_label"]))]
    lines += [f"![{name}]({name})" for name in figures]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    retrained_parent = parents[parts.retrained]
    return HardReport(out, ranking, best_run_id, retrained_parent.run_id if retrained_parent else None)
