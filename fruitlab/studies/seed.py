"""`fruitlab study [OVERRIDES]`: the seed paper's Fruits-360 study in one command.

The PCA → FFNN baseline swept over 10, 30, ..., 210 components, the five VGGs, LeNet and MobileNetV2, all with
Adam and cross-entropy on 32x32 images, into one experiment (`fruits360-study`); then the data exploration run
and the report that ranks every run by test zero-one loss. Each group of models trained for the same number of
epochs is one sweep (`python -m fruitlab -m ...` in a process of its own), so running the same command again
resumes the study instead of repeating finished runs. Hydra overrides (`data.root=PATH`, `tracking.uri=URI`,
...) apply to every run and to the exploration.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

from fruitlab.commands.common import command_parser, run_or_exit
from fruitlab.commands.eda import ExplorationResult, eda
from fruitlab.commands.report import ReportResult, report
from fruitlab.errors import ConfigError, FruitlabError, unknown
from fruitlab.schema import GROUPS

EXPERIMENT = "fruits360-study"
PCA_MODEL = "ffnn"
COMPONENTS = tuple(range(10, 211, 20))
EDA_COMPONENTS = [10, 50, 170]  # reconstructions shown by the data exploration
MODELS = ("vgg1", "vgg2", "vgg3", "vgg3_dropout", "vgg3_bn", "lenet", "mobilenet_v2")
# Epochs per model, sized to finish the study within 30 minutes on 2 CPU cores (docs/fruits360.md): an FFNN or
# LeNet epoch costs about a second; the VGGs and MobileNetV2 cost 10-30 s an epoch and reach 99 % validation
# accuracy within 1-3 epochs.
EPOCHS = {
    PCA_MODEL: 40,
    "lenet": 20,
    "vgg1": 4,
    "vgg2": 4,
    "vgg3": 4,
    "vgg3_dropout": 4,
    "vgg3_bn": 4,
    "mobilenet_v2": 4,
}
DEFAULT_EPOCHS = 4  # any other image model
# Every run: the paper's optimiser; the study ranks all runs, so no sweep crowns a champion of its own part.
COMMON = ("optim=adam", "hydra.sweeper.register=false")
STUDY_KEYS = {
    "model": "--models",
    "data.n_components": "--components",
    "data.fit_components": "--components",
    "trainer.max_epochs": "--epochs",
    "sweep": "--models and --components",
}


@dataclass(frozen=True)
class Stage:
    label: str
    overrides: tuple[str, ...]

    def command(self) -> list[str]:
        return [sys.executable, "-m", "fruitlab", "-m", *self.overrides]


def check_models(models: list[str]) -> None:
    known = sorted(GROUPS["model"])
    for model in models:
        if model not in known:
            raise unknown("model", model, known)


def parse_epochs(entries: list[str], models: list[str]) -> dict[str, int]:
    """['2'] -> every model 2 epochs; ['ffnn=10', 'vgg3_bn=1'] -> these two changed, the others as EPOCHS."""
    epochs = {model: EPOCHS.get(model, DEFAULT_EPOCHS) for model in (PCA_MODEL, *models)}
    for entry in entries:
        model, _, count = entry.rpartition("=")
        if not count.isdigit() or int(count) < 1 or (model and model not in epochs):
            raise ConfigError(f"--epochs {entry}: give N or MODEL=N with N >= 1 and MODEL one of {', '.join(epochs)}")
        for name in [model] if model else list(epochs):
            epochs[name] = int(count)
    return epochs


def stages(models: list[str], components: list[int], epochs: dict[str, int], overrides: list[str]) -> list[Stage]:
    """The PCA sweep, then one sweep per group of models that train for the same number of epochs."""
    common = [*COMMON, *overrides]
    planned = []
    if components:
        counts = ",".join(map(str, components))
        planned.append(
            Stage(
                f"PCA -> FFNN, {len(components)} component counts, {epochs[PCA_MODEL]} epochs",
                (
                    "sweep=pca_components",
                    f"data.n_components={counts}",
                    f"data.fit_components={max(components)}",  # one PCA fit serves every count
                    f"trainer.max_epochs={epochs[PCA_MODEL]}",
                    *common,
                ),
            )
        )
    by_epochs = sorted(models, key=lambda model: epochs[model])
    for count, group in groupby(by_epochs, key=lambda model: epochs[model]):
        names = list(group)
        planned.append(
            Stage(
                f"{', '.join(names)}, {count} epochs",
                (f"model={','.join(names)}", f"trainer.max_epochs={count}", *common),
            )
        )
    return planned


def study_overrides(overrides: list[str]) -> list[str]:
    """The overrides, with tracking.experiment=fruits360-study unless they name an experiment. Keys that each
    sweep of the study sets are refused, with the option that sets them."""
    keys = {override.split("=", 1)[0].lstrip("+~") for override in overrides}
    for key, option in STUDY_KEYS.items():
        if key in keys:
            raise ConfigError(f"{key} is set by the study for each of its sweeps: use {option} instead")
    return overrides if "tracking.experiment" in keys else [f"tracking.experiment={EXPERIMENT}", *overrides]


def run_stage(stage: Stage) -> float:
    """Run one sweep in a process of its own; return its wall time in seconds."""
    print(f"\n== {stage.label}\n$ {' '.join(stage.command()[1:])}", flush=True)
    started = time.perf_counter()
    if subprocess.run(stage.command()).returncode != 0:
        raise FruitlabError(f"the sweep '{stage.label}' failed (see its output above); fix it and run again")
    return time.perf_counter() - started


def names(text: str) -> list[str]:
    """'vgg1,lenet' -> ['vgg1', 'lenet']; '' -> [] (skip that part of the study)."""
    return [name.strip() for name in text.split(",") if name.strip()]


def integer_list(what: str, example: str) -> Callable[[str], list[int]]:
    """An argparse type: '10,50' -> [10, 50]; anything else is refused, naming `what` and an `example`."""

    def parse(text: str) -> list[int]:
        try:
            return [int(name) for name in names(text)]
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}': give {what} as integers, e.g. {example}") from None

    return parse


counts = integer_list("component counts", "10,50,170")


def parser() -> argparse.ArgumentParser:
    p = command_parser(
        "study",
        "Reproduce the seed paper's Fruits-360 study: PCA -> FFNN sweep, VGG ladder, LeNet and MobileNetV2 with "
        "Adam, then the data exploration and the ranking report, in one experiment.",
        "examples:\n"
        "  fruitlab study data.root=PATH                        # the full study (fruits360-study)\n"
        "  fruitlab study data.root=PATH tracking.uri=sqlite:////tmp/study/mlflow.db --epochs vgg3_bn=2\n"
        "  fruitlab study --models lenet,vgg1 --components 10,50 --epochs 1 data.image_size=16",
    )
    p.add_argument("overrides", nargs="*", help="Hydra overrides for every run and the exploration")
    p.add_argument(
        "--models", type=names, default=list(MODELS), help=f"image models, '' for none (default: {','.join(MODELS)})"
    )
    p.add_argument(
        "--components", type=counts, default=list(COMPONENTS), help="PCA counts, '' for none (default: 10,30,...,210)"
    )
    p.add_argument(
        "--epochs",
        type=names,
        default=[],
        metavar="[MODEL=]N,...",
        help="epochs for every model, or per model (default: "
        + ", ".join(f"{m}={n}" for m, n in EPOCHS.items())
        + f", others {DEFAULT_EPOCHS})",
    )
    p.add_argument("--out", type=Path, help="output folder (default: reports/<experiment>): eda/ and report/")
    return p


@dataclass(frozen=True)
class StudyResult:
    seconds_per_sweep: dict[str, float]
    exploration: ExplorationResult
    report: ReportResult
    wall_time_s: float


def study(
    overrides: list[str], models: list[str], components: list[int], epoch_entries: list[str], out: Path | None
) -> StudyResult:
    """Every sweep of the study, then the data exploration and the report."""
    from fruitlab.config import compose_config
    from fruitlab.tracking.store import resolve_uri, slug

    started = time.perf_counter()
    overrides = study_overrides(overrides)
    check_models(models)
    epochs = parse_epochs(epoch_entries, models)
    cfg = compose_config(overrides)  # fails here, before any training, on a bad override
    out = out or Path("reports") / slug(cfg.tracking.experiment)
    times = {stage.label: run_stage(stage) for stage in stages(models, components, epochs, overrides)}
    print("\n== data exploration", flush=True)
    exploration = eda(overrides, EDA_COMPONENTS, out / "eda")
    print("\n== report", flush=True)
    ranking = report(resolve_uri(cfg.tracking.uri), cfg.tracking.experiment, out=out / "report", best_per_model=True)
    return StudyResult(times, exploration, ranking, time.perf_counter() - started)


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    if args.tracking_uri:
        args.overrides.append(f"tracking.uri={args.tracking_uri}")
    result = run_or_exit(
        lambda: study(args.overrides, args.models, args.components, args.epochs, args.out), args.verbose
    )
    print(f"data exploration: run {result.exploration.run_id}, {result.exploration.folder}/")
    print(f"report: {result.report.folder}/ (logged to run {result.report.logged_run_id})")
    times = result.seconds_per_sweep
    print("wall time per sweep: " + "; ".join(f"{label}: {seconds:.0f} s" for label, seconds in times.items()))
    print(f"study wall time: {result.wall_time_s:.0f} s")
