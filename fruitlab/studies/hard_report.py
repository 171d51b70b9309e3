"""The Fruits-360 hard study's report, read from its store: one row per strategy and seed (strategies.csv), the
baselines and the strategies' final models as mean ± std over seeds (ranking), the mean best-so-far validation
and test zero-one loss against each strategy's wall time with a band over seeds (one figure), and the best final
model's confusion matrix, most confused class pairs and Grad-CAM of those confusions (drawn by the caller).
Written to a folder: summary.md, strategies.csv, ranking.{csv,png}, best_so_far.{csv,png},
confusion_matrix.png, confused_pairs.csv, gradcam_confusions.png."""

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
SEEDED_COLUMN = "user_attrs_warm_start_run_id"  # a warm-started trial's run, recorded by another sweep
PART_WALL = "part_wall_s"  # a part's wall time, on its sweep's parent run: what its strategy is charged
WARM = "warm_start_trials"
LOSS_FLOOR = 1e-3  # the best-so-far figure's lowest loss: about 9 test images of 9,188
STRATEGY_COLUMNS = [
    "strategy",
    "seed",
    "trials",
    "pruned",
    "search_s",
    "train_s",
    "val_zero_one_loss",
    "test_zero_one_loss",
]
RESULT = "test_zero_one_loss"
SELECTION = "best_val_acc"  # trials and checkpoints are chosen by validation accuracy, never by a test metric


@dataclass(frozen=True)
class StudyParts:
    """The study names of each part of the study, as given to the sweeper (hydra.sweeper.study_name)."""

    baselines: dict[str, str]  # label -> study name
    strategies: dict[tuple[str, int], tuple[str | None, str]]  # (strategy, seed) -> (search or None, final)


@dataclass(frozen=True)
class HardReport:
    folder: Path
    strategies: pd.DataFrame  # one row per strategy and seed
    ranking: pd.DataFrame
    best_run_id: str | None  # the final model with the best validation accuracy
    last_parent_id: str | None  # the parent run of the study's last part: where the report is logged


@dataclass(frozen=True)
class StrategyRecord:
    """What the store holds of one strategy with one seed."""

    strategy: str
    seed: int
    search: RunRecord | None  # the search's parent run
    trials: pd.DataFrame  # the search's trials.csv
    final: RunRecord | None  # the final training's finished run
    final_parent: RunRecord | None

    @property
    def search_s(self) -> float:
        return self.search.metrics.get(PART_WALL, np.nan) if self.search else 0.0

    @property
    def train_s(self) -> float:
        return self.final_parent.metrics.get(PART_WALL, np.nan) if self.final_parent else np.nan

    def row(self) -> dict[str, object]:
        """Its line of strategies.csv: trials run (warm starts left out) and pruned, time, final scores."""
        metrics = self.search.metrics if self.search else {}
        run = int(metrics.get("trials_complete", 0) + metrics.get("trials_pruned", 0) - metrics.get(WARM, 0))
        final = self.final.metrics if self.final else {}
        return {
            "strategy": self.strategy,
            "seed": self.seed,
            "trials": run,
            "pruned": int(metrics.get("trials_pruned", 0)),
            "search_s": round(self.search_s, 1),
            "train_s": round(self.train_s, 1),
            "val_zero_one_loss": 1 - final[SELECTION] if final else np.nan,
            "test_zero_one_loss": final.get(RESULT, np.nan),
        }


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


def best_so_far(record: StrategyRecord, results: dict[str, RunRecord]) -> pd.DataFrame:
    """The validation and test zero-one loss of what the strategy would deliver so far, against its wall time (s):
    during the search the best trial by validation accuracy (warm starts known from the start; a trial at its
    end, timed from the first trial's start), then the final model once trained (at search_s + train_s)."""
    events: list[tuple[float, RunRecord]] = []
    trials = record.trials
    if not trials.empty:
        seeded = trials[SEEDED_COLUMN].notna() if SEEDED_COLUMN in trials else pd.Series(False, index=trials.index)
        own = trials[~seeded].dropna(subset=["datetime_complete"])
        start = pd.to_datetime(own["datetime_start"]).min()
        for _, trial in trials[seeded].iterrows():
            events.append((0.0, results.get(str(trial[SEEDED_COLUMN]))))
        for _, trial in own[own["state"] == "COMPLETE"].iterrows():
            elapsed = (pd.to_datetime(trial["datetime_complete"]) - start).total_seconds()
            events.append((elapsed, results.get(str(trial.get(RUN_ID_COLUMN)))))
    rows, best = [], None
    for elapsed, run in sorted((e for e in events if e[1] is not None), key=lambda e: e[0]):
        if best is None or run.metrics[SELECTION] > best.metrics[SELECTION]:
            best = run
            rows.append((elapsed, 1 - best.metrics[SELECTION], best.metrics[RESULT]))
    if record.final is not None:
        rows.append(
            (record.search_s + record.train_s, 1 - record.final.metrics[SELECTION], record.final.metrics[RESULT])
        )
    return pd.DataFrame(rows, columns=["seconds", "val_zero_one_loss", "test_zero_one_loss"])


def mean_curve(curves: list[pd.DataFrame], column: str, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std over seeds of step curves (each holds its last value until the next), on a time grid; NaN
    where no seed has a value yet."""
    values = np.full((len(curves), len(grid)), np.nan)
    for row, curve in enumerate(curves):
        if curve.empty:
            continue
        index = np.searchsorted(curve["seconds"].to_numpy(), grid, side="right") - 1
        known = index >= 0
        values[row, known] = curve[column].to_numpy()[index[known]]
    counted = np.sum(~np.isnan(values), axis=0)
    with np.errstate(invalid="ignore"):
        mean = np.where(counted > 0, np.nansum(values, axis=0) / np.maximum(counted, 1), np.nan)
        std = np.array([np.nanstd(values[:, i], ddof=1) if counted[i] > 1 else 0.0 for i in range(len(grid))])
    return mean, std


def best_so_far_figure(curves: dict[str, list[pd.DataFrame]]) -> Figure:
    """Mean best-so-far validation (left) and test (right) zero-one loss against wall time, a band of ± one std
    over seeds, one colour per strategy."""
    end = max((c["seconds"].max() for runs in curves.values() for c in runs if not c.empty), default=1.0)
    grid = np.linspace(0, end, 400)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, column, title in zip(
        axes, ("val_zero_one_loss", "test_zero_one_loss"), ("validation", "test"), strict=True
    ):
        for label, runs in curves.items():
            mean, std = mean_curve(runs, column, grid)
            (line,) = ax.plot(grid / 60, mean, label=f"{label} ({len(runs)} seeds)", drawstyle="steps-post")
            low = np.maximum(mean - std, LOSS_FLOOR)  # a band below zero has no place on a log axis
            ax.fill_between(grid / 60, low, mean + std, step="post", alpha=0.2, color=line.get_color())
            ends = [(c["seconds"].iloc[-1] / 60, c[column].iloc[-1]) for c in runs if not c.empty]
            if ends:
                ax.plot(*zip(*ends, strict=True), "o", markersize=4, color=line.get_color())
        ax.set_title(f"{title} zero-one loss of what the strategy would deliver so far", fontsize=9)
        ax.set_xlabel("the strategy's wall time (min); dots: each seed's final model")
        ax.set_yscale("log")
        ax.set_ylim(bottom=LOSS_FLOOR)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel(f"zero-one loss (mean ± std over seeds, from {LOSS_FLOOR})")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def ranking_row(label: str, test_losses: list[float], val_losses: list[float]) -> dict[str, object]:
    """A ranking line: the test zero-one loss's mean ± std over seeds and the mean validation loss."""
    losses = np.array(test_losses)
    return {
        "configuration": label,
        "runs": len(losses),
        "test_zero_one_loss_mean": losses.mean() if len(losses) else np.nan,
        "test_zero_one_loss_std": losses.std(ddof=1) if len(losses) > 1 else np.nan,
        "val_zero_one_loss_mean": np.mean(val_losses) if val_losses else np.nan,
    }


def seed_row(label: str, runs: list[RunRecord]) -> dict[str, object]:
    return ranking_row(label, [run.metrics[RESULT] for run in runs], [1 - run.metrics[SELECTION] for run in runs])


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


def strategy_records(
    reader: StoreReader, experiment_id: str, runs: list[RunRecord], parts: StudyParts
) -> list[StrategyRecord]:
    records = []
    for (strategy, seed), (search_study, final_study) in parts.strategies.items():
        search = sweep_parent(reader, experiment_id, search_study) if search_study else None
        final_parent = sweep_parent(reader, experiment_id, final_study)
        finals = finished_trials(runs, final_parent)
        trials = trials_table(reader, search) if search else pd.DataFrame()
        records.append(StrategyRecord(strategy, seed, search, trials, finals[0] if finals else None, final_parent))
    return records


def strategy_ranking_row(strategy: str, rows: pd.DataFrame) -> dict[str, object]:
    finished = rows.dropna(subset=["test_zero_one_loss"])
    test, val = (finished[column].tolist() for column in ("test_zero_one_loss", "val_zero_one_loss"))
    return ranking_row(f"strategy: {strategy}", test, val)


def write_hard_report(
    reader: StoreReader, experiment: str, parts: StudyParts, out: Path, gradcam: ConfusionFigure | None = None
) -> HardReport:
    """Every table and figure of the study, from the store, into `out`; `gradcam` draws the Grad-CAM of the
    best final model's most confused pairs (it needs the model, which this layer does not load)."""
    experiment_id = reader.select_experiment(experiment).experiment_id
    runs = reader.experiment_runs(experiment_id)
    results = {run.run_id: run for run in runs if run.is_training_result}
    rows = []
    for study in parts.baselines.values():
        parent = sweep_parent(reader, experiment_id, study)
        rows += [seed_row(model, group) for model, group in by_model(finished_trials(runs, parent)).items()]
    records = strategy_records(reader, experiment_id, runs, parts)
    table = pd.DataFrame([record.row() for record in records], columns=STRATEGY_COLUMNS)
    record_curves = [best_so_far(record, results) for record in records]
    curves: dict[str, list[pd.DataFrame]] = {}
    for record, curve in zip(records, record_curves, strict=True):
        curves.setdefault(record.strategy, []).append(curve)
    rows += [strategy_ranking_row(name, group) for name, group in table.groupby("strategy", sort=False)]
    ranking = pd.DataFrame(rows).sort_values("test_zero_one_loss_mean", kind="stable").reset_index(drop=True)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "strategies.csv", index=False)
    ranking.to_csv(out / "ranking.csv", index=False)
    curve_table = pd.concat(
        [c.assign(strategy=r.strategy, seed=r.seed) for r, c in zip(records, record_curves, strict=True)],
        ignore_index=True,
    )
    curve_table.to_csv(out / "best_so_far.csv", index=False)
    figures = {"best_so_far.png": best_so_far_figure(curves), "ranking.png": ranking_figure(ranking)}
    finals = [record.final for record in records if record.final is not None]
    best_run_id = max(finals, key=lambda run: run.metrics[SELECTION]).run_id if finals else None
    pairs = pd.DataFrame()
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
        "Each strategy with each seed, charged its whole wall time (strategies.csv):",
        "",
        markdown(table),
        "Test zero-one loss, best first: each baseline over its seeds, each strategy's final model over its seeds.",
        "",
        markdown(ranking),
    ]
    if not pairs.empty:
        lines += ["Most confused class pairs of the final model with the best validation accuracy:", ""]
        lines += [markdown(pairs.drop(columns=["true_label", "predicted_label"]))]
    lines += [f"![{name}]({name})" for name in figures]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    last = records[-1].final_parent if records else None
    return HardReport(out, table, ranking, best_run_id, last.run_id if last else None)
