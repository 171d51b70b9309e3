"""Running the Fruits-360 hard study's plan (hard_plan.py): each part's sweep in a process of its own, skipped
when it finished before; each strategy's winner read back from the store and trained on; then the report."""

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from omegaconf import DictConfig

from fruitlab.config import compose_config
from fruitlab.errors import FruitlabError
from fruitlab.studies.hard_plan import (
    EXPERIMENT,
    HARD,
    Part,
    Plan,
    Run,
    baseline_parts,
    check_overrides,
    check_strategies,
    common_overrides,
    final_part,
    recorded_overrides,
    run_overrides,
    study_runs,
)
from fruitlab.studies.hard_report import PART_WALL, StudyParts, sweep_parent, write_hard_report
from fruitlab.studies.seed import Stage, check_models, run_stage
from fruitlab.tracking.logged_models import load_run_config
from fruitlab.tracking.query import RunRecord, Selection, StoreReader, descendants
from fruitlab.tracking.runs import RunRecorder
from fruitlab.tracking.store import Store, slug
from fruitlab.training.resume import LAST_CHECKPOINT


@dataclass(frozen=True)
class HardStudyResult:
    ran: dict[str, float]  # label -> seconds, for the parts run this time
    skipped: list[str]  # parts whose sweep had finished
    report_folder: Path
    wall_time_s: float


@dataclass(frozen=True)
class StudyRecords:
    """The study's experiment in its store: the study's own reads and writes of the store, all in one place (the
    report reads through `reader`)."""

    reader: StoreReader
    experiment: str
    experiment_id: str

    @classmethod
    def open(cls, uri: str | None, experiment: str) -> "StudyRecords":
        store = Store.open(uri)
        return cls(StoreReader(store), experiment, store.ensure_experiment(experiment))

    @property
    def store(self) -> Store:
        return self.reader.store

    @property
    def uri(self) -> str:
        return self.store.uri

    def sweep_parent(self, study_name: str) -> RunRecord | None:
        return sweep_parent(self.reader, self.experiment_id, study_name)

    def trials(self, parent: RunRecord) -> list[RunRecord]:
        return descendants(self.reader.experiment_runs(self.experiment_id), parent.run_id)

    def run_config(self, run_id: str) -> DictConfig:
        return load_run_config(self.store, run_id)

    def checkpoint_folder(self, run_id: str) -> Path:
        return self.store.checkpoint_dir(run_id)

    def log_report(self, parent_run_id: str, folder: Path) -> None:
        self.reader.log_report(Selection(self.experiment_id, self.experiment, parent_run_id), folder)

    def record_wall_time(self, study_name: str, seconds: float) -> None:
        """The wall time a part has cost, on its sweep's parent run: what its strategy is charged."""
        parent = self.sweep_parent(study_name)
        if parent is not None:
            RunRecorder(parent.run_id, self.store).log_metrics({PART_WALL: seconds})


def spent_seconds(records: StudyRecords, study_name: str) -> tuple[bool, float]:
    """(whether the sweep finished, the summed wall time of its recorded trials)."""
    parent = records.sweep_parent(study_name)
    if parent is None:
        return False, 0.0
    if parent.status == "FINISHED" and not parent.metrics.get("trials_fail"):
        return True, 0.0
    return False, sum(run.metrics.get("fit_time_s", 0.0) for run in records.trials(parent))


def run_part(records: StudyRecords, part: Part) -> float | None:
    """Run the part's sweep (a search with the time it has left) and record its wall time; None when it had
    finished. A part run again after an interruption is charged its trials' time before and its new run's."""
    finished, spent = spent_seconds(records, part.study_name)
    if finished:
        print(f"\n== {part.label}: finished before, skipped", flush=True)
        return None
    seconds = run_stage(Stage(part.label, run_overrides(part, spent)))
    records.record_wall_time(part.study_name, spent + seconds)
    return seconds


def winner(records: StudyRecords, parent: RunRecord) -> tuple[list[str], str]:
    """The search's best trial (a warm-start run may be it) as overrides of its searched settings, as its run
    recorded them, and its best checkpoint, which the final training starts from."""
    run_id = parent.tags.get("best_run_id")
    if not run_id:
        raise FruitlabError(f"the search {parent.run_name} finished no trial in its time: raise --budget")
    searched = sorted(key.removeprefix("best.") for key in parent.tags if key.startswith("best."))
    chosen = recorded_overrides(records.run_config(run_id), searched)
    return chosen, str(best_checkpoint(records.checkpoint_folder(run_id)))


def run_strategy(records: StudyRecords, plan: Plan, common: list[str], run: Run) -> dict[str, float | None]:
    """One strategy with one seed: its search, then its winner (train_longer: the paper's configuration)
    trained for what is left of the budget."""
    seconds: dict[str, float | None] = {}
    chosen: list[str] = []
    start_from, spent = None, 0.0
    if run.search:
        seconds[run.search.label] = run_part(records, run.search)
        parent = records.sweep_parent(run.search.study_name)
        if parent is None:
            raise FruitlabError(f"the search {run.search.study_name} left no parent run in the store")
        spent = parent.metrics.get(PART_WALL, 0.0)
        chosen, start_from = winner(records, parent)
        print(f"\n== {run.label}: winner {' '.join(chosen)} after {spent:.0f} s of search", flush=True)
    final = final_part(plan, common, run, chosen, start_from, spent)
    seconds[final.label] = run_part(records, final)
    return seconds


def best_checkpoint(folder: Path) -> Path:
    """The checkpoint Lightning kept as best, else the last one."""
    kept = sorted(path for path in folder.glob("*.ckpt") if path.name != LAST_CHECKPOINT)
    return kept[0] if kept else folder / LAST_CHECKPOINT


def confusions_figure(records: StudyRecords, run_id: str, pairs: pd.DataFrame) -> Figure | None:
    """Grad-CAM of the run's most confused pairs, from its best checkpoint and the config it recorded."""
    # torch's training stack and Lightning only here, once the parts have run: bad arguments are refused sooner
    import torch

    from fruitlab.evaluation.gradcam import confusion_gradcam
    from fruitlab.training.loop import build_module, prepare_data

    cfg = records.run_config(run_id)
    datamodule = prepare_data(cfg)
    module = build_module(cfg, datamodule)
    state = torch.load(best_checkpoint(records.checkpoint_folder(run_id)), map_location="cpu", weights_only=True)
    module.load_state_dict(state["state_dict"])
    confused = list(zip(pairs["true_label"], pairs["predicted_label"], strict=True))
    return confusion_gradcam(module.classifier, datamodule, confused)


def hard_study(overrides: list[str], plan: Plan, out: Path | None) -> HardStudyResult:
    """Every part of the study, then the report."""
    started = time.perf_counter()
    check_overrides(overrides)
    check_models(plan.models)
    check_strategies(plan.strategies)
    cfg = compose_config([HARD, *overrides])  # fails here, before any training, on a bad override
    records = StudyRecords.open(cfg.tracking.uri, cfg.tracking.experiment or EXPERIMENT)
    common = common_overrides(overrides, records.experiment, records.uri)
    baselines = baseline_parts(plan, records.experiment, common)
    seconds = {part.label: run_part(records, part) for part in baselines}
    runs = study_runs(plan, records.experiment, common)
    for run in runs:
        seconds |= run_strategy(records, plan, common, run)
    print("\n== report", flush=True)
    parts = StudyParts(
        {part.label: part.study_name for part in baselines},
        {
            (run.strategy, run.seed): (run.search.study_name if run.search else None, run.final_study)
            for run in sorted(runs, key=lambda run: (plan.strategies.index(run.strategy), run.seed))
        },
    )
    folder = out or Path("reports") / slug(records.experiment)
    report = write_hard_report(
        records.reader,
        records.experiment,
        parts,
        folder,
        lambda run_id, pairs: confusions_figure(records, run_id, pairs),
    )
    if report.last_parent_id:  # beside the study's last part, replaced on each redraw: no run is added
        records.log_report(report.last_parent_id, folder)
    ran = {label: spent for label, spent in seconds.items() if spent is not None}
    skipped = [label for label, spent in seconds.items() if spent is None]
    return HardStudyResult(ran, skipped, folder, time.perf_counter() - started)
