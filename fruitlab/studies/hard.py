"""`fruitlab hard-study [OVERRIDES] --budget MINUTES`: the Fruits-360 hard study (53 similar classes) in one
command, resumable, into one experiment (`fruits360-hard`).

The plan, sized for about 90 minutes on 2 CPU cores at the default --budget 90:

1. baselines: the seed paper's models (vgg1, vgg2, vgg3, vgg3_dropout, vgg3_bn, lenet, mobilenet_v2) and the
   PCA -> FFNN at its best component count (170), with the paper's settings (Adam, lr 1e-3, 32x32), 1 epoch
   (--baseline-epochs; the FFNN, whose epoch costs seconds, 10), 3 seeds each (--seeds);
2. three search strategies, each for --budget x 0.12 minutes of wall time (about 11 minutes at 90): TPE with
   Hyperband pruning over `sweep=hard_search`, random search over the same space without pruning, and the seed
   CIFAR paper's 3x2 grid (SGD, Adam, Adadelta x lr 0.1, 0.01) on vgg3_bn at 32x32. A trial trains for up to 4
   quarter epochs (--search-epochs; +trainer.limit_train_batches=0.25, validated on the whole validation split
   after each), so that a trial costs at most about one baseline run and Hyperband has 4 rungs to prune at.
   Each strategy stops claiming trials when its time is spent (hydra.sweeper.timeout_s; the trial running then
   finishes, and the figure shows the time each strategy really took);
3. the best configuration by validation accuracy over all three strategies, retrained with each seed with the
   search's settings;
4. the report (fruitlab/studies/hard_report.py): best-so-far validation and test zero-one loss against wall
   time for the three strategies, the ranking, the confusion matrix of the best model with its most confused
   class pairs and Grad-CAM of those confusions, in <out>/ and under report/ of the retrained part's parent run.

Every run selects checkpoints and trials on the frame-block validation split (validation accuracy); test metrics
are recorded for each finished run and never used to choose. Each part is one sweep with a fixed study name, run
in a process of its own: running the same command again skips the parts whose sweep finished, resumes an
interrupted one (a search strategy with the time it has left) and redraws the report. A larger --budget on a
store whose strategies finished does not extend them: use another experiment (tracking.experiment=NAME).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fruitlab.commands.common import command_parser, run_or_exit
from fruitlab.errors import ConfigError
from fruitlab.studies.seed import Stage, check_models, integer_list, names, run_stage

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

EXPERIMENT = "fruits360-hard"
MODELS = ("vgg1", "vgg2", "vgg3", "vgg3_dropout", "vgg3_bn", "lenet", "mobilenet_v2")
PCA_COMPONENTS = 170  # the seed paper's best component count
SEEDS = (1, 2, 3)
STRATEGY_SHARE = 0.12  # of --budget, for each of the three search strategies
BASELINE_EPOCHS = 1
SEARCH_EPOCHS = 4
# Measured at --budget 90 on 2 cores: 57 minutes in all, the baselines 21 (docs/fruits360-hard.md).
MAX_TRIALS = 10_000  # the time budget, not a trial count, ends a search
HARD = "data=fruits360_hard"
# Every run: selection on validation accuracy, no champion registered by a part of the study.
COMMON = (
    "objective.metric=val_acc",
    "objective.direction=maximize",
    "hydra.sweeper.register=false",
)
PAPER = ("optim=adam", "lr=0.001", "data.image_size=32")
STRATEGIES: dict[str, tuple[str, ...]] = {
    "TPE + Hyperband": ("sweep=hard_search",),
    "random search": (
        "sweep=hard_search",
        "hydra.sweeper.sampler=random",
        "hydra.sweeper.sampler_options=null",
        "hydra.sweeper.pruner=none",
        "hydra.sweeper.pruner_options=null",
    ),
    "optimizer x lr grid": (HARD, "model=vgg3_bn", "data.image_size=32", "optim=sgd,adam,adadelta", "lr=0.1,0.01"),
}
STUDY_KEYS = ("model", "seed", "optim", "lr", "sweep", "trainer.max_epochs", "data")
STORE_KEYS = ("tracking.uri", "tracking.experiment")  # resolved once, then given to every part


@dataclass(frozen=True)
class Plan:
    models: list[str]
    seeds: list[int]
    components: int | None  # PCA -> FFNN baseline; None: left out
    baseline_epochs: int
    search_epochs: int
    strategy_s: float
    max_trials: int
    pca_epochs: int = 10
    search_epoch_fraction: float = 0.25  # of the training split per search "epoch"; 1.0: whole epochs


@dataclass(frozen=True)
class Part:
    """One sweep of the study: its study name (which finds its parent run) and how to run it."""

    label: str
    study_name: str
    overrides: tuple[str, ...]
    budget_s: float | None = None  # a search strategy's wall-time budget


@dataclass(frozen=True)
class HardStudyResult:
    ran: dict[str, float]  # label -> seconds, for the parts run this time
    skipped: list[str]  # parts whose sweep had finished
    report_folder: Path
    wall_time_s: float


def study_name(experiment: str, label: str) -> str:
    return f"{experiment}-{label.lower().replace(' + ', '-').replace(' ', '-')}"


def baseline_parts(plan: Plan, experiment: str, common: list[str]) -> list[Part]:
    seeds = "seed=" + ",".join(map(str, plan.seeds))
    epochs = f"trainer.max_epochs={plan.baseline_epochs}"
    parts = []
    if plan.models:
        models = (HARD, f"model={','.join(plan.models)}")
        parts.append(Part("baselines", study_name(experiment, "baselines"), (*models, seeds, epochs, *PAPER, *common)))
    if plan.components:
        pca = ("data=fruits360_hard_pca", "model=ffnn", f"data.n_components={plan.components}")
        epochs = f"trainer.max_epochs={plan.pca_epochs}"
        parts.append(Part("PCA baseline", study_name(experiment, "pca"), (*pca, seeds, epochs, *PAPER, *common)))
    return parts


def strategy_parts(plan: Plan, experiment: str, common: list[str]) -> list[Part]:
    # quarter epochs by default: more rungs for Hyperband, and a trial costs at most about one baseline run
    search = [f"trainer.max_epochs={plan.search_epochs}", f"hydra.sweeper.n_trials={plan.max_trials}"]
    if plan.search_epoch_fraction < 1:
        search.append(f"+trainer.limit_train_batches={plan.search_epoch_fraction}")
    return [
        Part(label, study_name(experiment, label), (*overrides, *search, *common), plan.strategy_s)
        for label, overrides in STRATEGIES.items()
    ]


def check_overrides(overrides: list[str]) -> None:
    keys = {override.split("=", 1)[0].lstrip("+~") for override in overrides}
    if clash := sorted(keys & set(STUDY_KEYS)):
        raise ConfigError(f"{', '.join(clash)} is set by the study for each of its parts: see fruitlab hard-study -h")


def spent_seconds(reader, experiment_id: str, part: Part) -> tuple[bool, float]:
    """(whether the part's sweep finished, the summed wall time of its recorded trials)."""
    from fruitlab.studies.hard_report import sweep_parent
    from fruitlab.tracking.query import descendants

    parent = sweep_parent(reader, experiment_id, part.study_name)
    if parent is None:
        return False, 0.0
    if parent.status == "FINISHED" and not parent.metrics.get("trials_fail"):
        return True, 0.0
    trials = descendants(reader.experiment_runs(experiment_id), parent.run_id)
    return False, sum(run.metrics.get("fit_time_s", 0.0) for run in trials)


def run_part(reader, experiment_id: str, part: Part) -> float | None:
    """Run the part's sweep (a search strategy with the time it has left); None when it had finished."""
    finished, spent = spent_seconds(reader, experiment_id, part)
    if finished:
        print(f"\n== {part.label}: finished before, skipped", flush=True)
        return None
    overrides = [*part.overrides, f"hydra.sweeper.study_name={part.study_name}"]
    if part.budget_s is not None:
        overrides.append(f"hydra.sweeper.timeout_s={max(part.budget_s - spent, 0.0):.0f}")
    return run_stage(Stage(part.label, tuple(overrides)))


def best_checkpoint(folder: Path) -> Path:
    """The checkpoint Lightning kept as best, else the last one."""
    from fruitlab.training.resume import LAST_CHECKPOINT

    kept = sorted(path for path in folder.glob("*.ckpt") if path.name != LAST_CHECKPOINT)
    return kept[0] if kept else folder / LAST_CHECKPOINT


def confusion_gradcam(uri: str, run_id: str, pairs: pd.DataFrame, per_pair: int = 2) -> Figure | None:
    """Grad-CAM of the predicted class for up to `per_pair` test images of each confused pair, from the run's
    best checkpoint and its own config; None for a network without convolutions or without such images."""
    import torch

    from fruitlab.evaluation.gradcam import gradcam_figure, gradcam_maps, last_conv_layer
    from fruitlab.evaluation.held_out import predict
    from fruitlab.tracking.logged_models import load_run_config
    from fruitlab.tracking.store import checkpoint_dir
    from fruitlab.training.fit import build_module, prepare_data

    cfg = load_run_config(run_id)
    datamodule = prepare_data(cfg)
    module = build_module(cfg, datamodule)
    state = torch.load(best_checkpoint(checkpoint_dir(uri, run_id)), map_location="cpu", weights_only=True)
    module.load_state_dict(state["state_dict"])
    classifier = module.classifier.eval()
    if last_conv_layer(classifier) is None:
        return None
    probabilities, labels = predict(classifier, datamodule.test_dataloader())
    predictions = probabilities.argmax(dim=1)
    chosen: list[int] = []
    for true, predicted in zip(pairs["true_label"], pairs["predicted_label"], strict=True):
        chosen += ((labels == true) & (predictions == predicted)).nonzero().flatten()[:per_pair].tolist()
    if not chosen:
        return None
    index = torch.tensor(chosen)
    maps = gradcam_maps(classifier, datamodule.test.images[index], predictions[index])
    classes = datamodule.classes
    titles = [f"true: {classes[labels[i]]}\npred: {classes[predictions[i]]}" for i in chosen]
    return gradcam_figure(datamodule.test.images[index], maps, titles, torch.zeros(len(chosen), dtype=torch.bool))


def best_configuration(reader, experiment_id: str, strategies: list[Part]) -> list[str]:
    """The overrides of the best trial by validation accuracy over every strategy."""
    from fruitlab.studies.hard_report import SELECTION, sweep_parent

    best = None
    for part in strategies:
        parent = sweep_parent(reader, experiment_id, part.study_name)
        score = parent.metrics.get(SELECTION) if parent is not None else None
        if score is not None and (best is None or score > best[0].metrics[SELECTION]):
            best = (parent, part)
    if best is None:
        raise ConfigError("no search strategy finished a trial: raise --budget")
    parent, part = best
    chosen = [f"{key.removeprefix('best.')}={value}" for key, value in parent.tags.items() if key.startswith("best.")]
    print(f"\n== best configuration: {part.label}, {' '.join(chosen)}", flush=True)
    chosen_keys = {override.split("=", 1)[0] for override in chosen}
    # the strategy's fixed settings without its search space (a named sweep, a comma list, sweeper options)
    fixed = [
        o
        for o in part.overrides
        if not o.startswith(("hydra.sweeper.", "sweep=")) and "," not in o and o.split("=", 1)[0] not in chosen_keys
    ]
    return [HARD, *fixed, *chosen] if HARD not in fixed else [*fixed, *chosen]


def hard_study(overrides: list[str], plan: Plan, out: Path | None) -> HardStudyResult:
    """Every part of the study, then the report."""
    from fruitlab.config import compose_config
    from fruitlab.studies.hard_report import StudyParts, write_hard_report
    from fruitlab.tracking.query import Selection, StoreReader
    from fruitlab.tracking.store import ensure_experiment, slug, use_store

    started = time.perf_counter()
    check_overrides(overrides)
    check_models(plan.models)
    cfg = compose_config([HARD, *overrides])  # fails here, before any training, on a bad override
    experiment = cfg.tracking.experiment or EXPERIMENT
    uri = use_store(cfg.tracking.uri)
    others = [o for o in overrides if o.split("=", 1)[0] not in STORE_KEYS]
    common = [*COMMON, f"tracking.experiment={experiment}", f"tracking.uri={uri}", *others]
    reader = StoreReader(uri)
    experiment_id = ensure_experiment(experiment, uri)
    baselines = baseline_parts(plan, experiment, common)
    strategies = strategy_parts(plan, experiment, common)
    ran, skipped = {}, []
    for part in [*baselines, *strategies]:
        seconds = run_part(reader, experiment_id, part)
        ran.update({part.label: seconds} if seconds is not None else {})
        skipped += [part.label] if seconds is None else []
    retrain_name = study_name(experiment, "best retrained")
    retrain = Part("best configuration retrained", retrain_name, ())
    if not spent_seconds(reader, experiment_id, retrain)[0]:
        seeds = "seed=" + ",".join(map(str, plan.seeds))
        best = best_configuration(reader, experiment_id, strategies)
        retrain = Part(retrain.label, retrain_name, (*best, seeds))
    seconds = run_part(reader, experiment_id, retrain)
    ran.update({retrain.label: seconds} if seconds is not None else {})
    skipped += [retrain.label] if seconds is None else []
    print("\n== report", flush=True)
    parts = StudyParts(
        {part.label: part.study_name for part in baselines},
        {part.label: part.study_name for part in strategies},
        retrain_name,
    )
    folder = out or Path("reports") / slug(experiment)
    report = write_hard_report(
        reader, experiment, parts, folder, lambda run_id, pairs: confusion_gradcam(uri, run_id, pairs)
    )
    if report.retrained_parent_id:  # beside the study's last part, replaced on each redraw: no run is added
        reader.log_report(Selection(experiment_id, experiment, report.retrained_parent_id), folder)
    return HardStudyResult(ran, skipped, folder, time.perf_counter() - started)


def positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if value <= 0:
            raise argparse.ArgumentTypeError(f"'{text}': give a number above 0")
        return value

    return parse


seed_list = integer_list("seeds", "1,2,3")


def parser() -> argparse.ArgumentParser:
    p = command_parser(
        "hard-study",
        "The Fruits-360 hard study (53 classes): the seed paper's baselines, TPE + Hyperband against random "
        "search and the optimizer x lr grid at equal wall-clock budget, the best configuration retrained, and "
        "the report.\n\n" + __doc__.split("\n\n", 1)[1],
        "examples:\n"
        "  fruitlab hard-study data.root=PATH                          # the whole study at --budget 90\n"
        "  fruitlab hard-study data.root=PATH --budget 240             # longer searches\n"
        "  fruitlab hard-study --models lenet --seeds 1 --max-trials 2 --budget 10 data.root=PATH",
    )
    p.add_argument("overrides", nargs="*", help="Hydra overrides for every run (data.root=PATH, tracking.uri=...)")
    p.add_argument("--budget", type=positive(float), default=90.0, help="minutes the study is sized for (90)")
    p.add_argument("--models", type=names, default=list(MODELS), help=f"baseline models ({','.join(MODELS)})")
    p.add_argument("--seeds", type=seed_list, default=list(SEEDS), help="seeds of each baseline and the retrain")
    p.add_argument("--components", type=int, default=PCA_COMPONENTS, help="PCA baseline components, 0 for none")
    p.add_argument("--baseline-epochs", type=positive(int), default=BASELINE_EPOCHS)
    p.add_argument("--search-epochs", type=positive(int), default=SEARCH_EPOCHS, help="quarter epochs per trial")
    p.add_argument("--max-trials", type=positive(int), default=MAX_TRIALS, help="trials per strategy at most")
    p.add_argument("--out", type=Path, help="report folder (default: reports/<experiment>)")
    return p


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    if args.tracking_uri:
        args.overrides.append(f"tracking.uri={args.tracking_uri}")
    plan = Plan(
        args.models,
        args.seeds,
        args.components or None,
        args.baseline_epochs,
        args.search_epochs,
        args.budget * 60 * STRATEGY_SHARE,
        args.max_trials,
    )
    result = run_or_exit(lambda: hard_study(args.overrides, plan, args.out), args.verbose)
    for label, seconds in result.ran.items():
        print(f"{label}: {seconds:.0f} s")
    if result.skipped:
        print(f"finished before, not run again: {', '.join(result.skipped)}")
    print(f"report: {result.report_folder}/summary.md")
    print(f"study wall time: {result.wall_time_s:.0f} s")
