"""The Fruits-360 hard study's plan (53 similar classes, one experiment: `fruits360-hard`): which sweeps it runs,
with which overrides. Pure: no store, no process, no training.

The question it answers: given B minutes on this machine (--budget, 5 by default), should a practitioner train
the paper's configuration for all of them, or search for part of them and train the winner for the rest?

1. baselines: the seed paper's models (vgg1, vgg2, vgg3, vgg3_dropout, vgg3_bn, lenet, mobilenet_v2) and the
   PCA -> FFNN at its best component count (170), with the paper's settings (Adam, lr 1e-3, 32x32), 1 epoch
   (--baseline-epochs; the FFNN, whose epoch costs seconds, 10), 3 seeds each (--seeds). They validate at the
   search's checks (4 per epoch), so that they can seed a search step for step (tpe_warm below);
2. five strategies, each run once per seed and charged its whole wall time, search and final training alike:
   - train_longer: the paper's configuration (vgg3_bn, Adam, lr 1e-3, 32x32) trained for all of B;
   - grid: the seed CIFAR paper's optimizer x lr grid (SGD, Adam, Adadelta x 0.1, 0.01) on vgg3_bn;
   - random: random search over sweeps/hard_search.yaml;
   - tpe: TPE with successive halving over the same space;
   - tpe_warm: tpe, warm-started from the baselines' runs, with the paper's configuration enqueued first.
   A search runs for --search-share of B (0.4) in two workers of one thread each; its trials train up to one
   epoch, validated 4 times. The winner (best validation accuracy; a warm-start run may win) then trains on from
   its trial's best checkpoint for what is left of B, with both threads, early stopping on the block validation
   split and Lightning's max_time;
3. the report (fruitlab/studies/hard_report.py): strategies.csv (one row per strategy and seed), the mean
   best-so-far validation and test zero-one loss against wall time with a band over seeds, the ranking, and the
   best final model's confusions with Grad-CAM, in <out>/ and under report/ of the last part's parent run.

Why 0.4 of B for the search: a trial's epoch costs about a fifth of a 5-minute budget on one thread, so 2
minutes in two workers run one epoch-long trial per worker at least and the pruned ones besides, while the
winner keeps most of B to train on. Its search time is not lost: it continues from its trial's weights.

Every run selects checkpoints and trials on the frame-block validation split (validation accuracy); test
metrics are recorded for each finished run and never used to choose. Each part is one sweep with a fixed study
name, run in a process of its own: running the same command again skips the parts whose sweep finished,
resumes an interrupted one (a search with the time it has left) and redraws the report.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from fruitlab.errors import ConfigError

EXPERIMENT = "fruits360-hard"
MODELS = ("vgg1", "vgg2", "vgg3", "vgg3_dropout", "vgg3_bn", "lenet", "mobilenet_v2")
PCA_COMPONENTS = 170  # the seed paper's best component count
SEEDS = (1, 2, 3)
BUDGET_MINUTES = 5.0  # B: each strategy's wall time, per seed
SEARCH_SHARE = 0.4  # of B, for a strategy's search; the rest trains its winner
BASELINE_EPOCHS = 1
SEARCH_EPOCHS = 1  # a search trial's most epochs
CHECKS_PER_EPOCH = 4  # validations per epoch: where successive halving may stop a trial
WORKERS = 2  # search trials side by side, one thread each (joblib launcher); 1: in the sweep's own process
# What a final training spends outside Lightning's max_time: the process's start, the data, the test and the
# records (measured: 20-30 s on 2 cores with the data cached).
FINAL_OVERHEAD_S = 25.0
FINAL_PATIENCE = 8  # checks without improvement (two epochs) before early stopping
MAX_TRIALS = 10_000  # the time budget, not a trial count, ends a search
HARD = "data=fruits360_hard"
SELECTION = ("objective.metric=val_acc", "objective.direction=maximize")  # every run chooses on validation accuracy
# No part registers a champion: the study compares strategies; its models are in the store by run.
NO_CHAMPION = "hydra.sweeper.register=false"
PAPER = ("optim=adam", "lr=0.001", "data.image_size=32")
# The paper's configuration as a point of sweeps/hard_search.yaml's space (its defaults for the other keys)
PAPER_POINT = {"model": "vgg3_bn", "optim": "adam", "lr": 0.001, "batch_size": 64, "augment": "none"}
STUDY_KEYS = ("model", "seed", "optim", "lr", "sweep", "trainer.max_epochs", "data", "objective.checks_per_epoch")
STORE_KEYS = ("tracking.uri", "tracking.experiment")  # resolved once, then given to every part
ABSENT = object()  # a key missing from a recorded config, told apart from a null value


@dataclass(frozen=True)
class Strategy:
    """A strategy: its search (space and sweeper settings; empty: none) and what its trials and its final
    training share."""

    search: tuple[str, ...]
    fixed: tuple[str, ...] = ()


def point_override(point: Mapping[str, object]) -> str:
    """A point as the value of hydra.sweeper.enqueue: [{model: vgg3_bn, lr: 0.001, ...}]."""
    return "[{" + ", ".join(f"{key}: {value}" for key, value in point.items()) + "}]"


def strategies(baselines_study: str) -> dict[str, Strategy]:
    """The five strategies; tpe_warm starts from the runs of the baselines' sweep `baselines_study`."""
    space = ("sweep=hard_search",)
    return {
        "train_longer": Strategy((), fixed=("model=vgg3_bn", *PAPER)),
        "grid": Strategy(
            ("optim=sgd,adam,adadelta", "lr=0.1,0.01", "hydra.sweeper.pruner=none"), fixed=("model=vgg3_bn",)
        ),
        "random": Strategy(
            (
                *space,
                "hydra.sweeper.sampler=random",
                "hydra.sweeper.sampler_options=null",  # the space's are TPE's
                "hydra.sweeper.pruner=none",
                "hydra.sweeper.pruner_options=null",
            )
        ),
        "tpe": Strategy(space),
        "tpe_warm": Strategy(
            (
                *space,
                f"hydra.sweeper.warm_start=[{baselines_study}]",
                f"hydra.sweeper.enqueue={point_override(PAPER_POINT)}",
            )
        ),
    }


STRATEGY_NAMES = tuple(strategies(""))


@dataclass(frozen=True)
class Plan:
    models: list[str]
    seeds: list[int]
    components: int | None  # PCA -> FFNN baseline; None: left out
    baseline_epochs: int
    budget_s: float  # B, each strategy's wall time per seed
    max_trials: int
    strategies: tuple[str, ...] = STRATEGY_NAMES
    search_share: float = SEARCH_SHARE
    pca_epochs: int = 10
    search_epochs: int = SEARCH_EPOCHS
    checks_per_epoch: int = CHECKS_PER_EPOCH
    final_overhead_s: float = FINAL_OVERHEAD_S
    workers: int = WORKERS

    @property
    def search_s(self) -> float:
        return self.budget_s * self.search_share


@dataclass(frozen=True)
class Part:
    """One sweep of the study: its study name (which finds its parent run) and how to run it."""

    label: str
    study_name: str
    overrides: tuple[str, ...]
    budget_s: float | None = None  # a search's wall-time budget


@dataclass(frozen=True)
class Run:
    """One strategy with one seed: its search (None for train_longer) and the name of its final training."""

    strategy: str
    seed: int
    search: Part | None
    final_study: str

    @property
    def label(self) -> str:
        return f"{self.strategy} seed {self.seed}"


def study_name(experiment: str, label: str) -> str:
    return f"{experiment}-{label.lower().replace(' + ', '-').replace(' ', '-')}"


def override_key(override: str) -> str:
    """'+trainer.limit_train_batches=0.25' -> 'trainer.limit_train_batches'."""
    return override.split("=", 1)[0].lstrip("+~")


def check_overrides(overrides: list[str]) -> None:
    if clash := sorted({override_key(override) for override in overrides} & set(STUDY_KEYS)):
        raise ConfigError(f"{', '.join(clash)} is set by the study for each of its parts: see fruitlab hard-study -h")


def check_strategies(names: Iterable[str]) -> None:
    if unknown := [name for name in names if name not in STRATEGY_NAMES]:
        raise ConfigError(f"--strategies {','.join(unknown)}: choose among {','.join(STRATEGY_NAMES)}")


def common_overrides(overrides: list[str], experiment: str, uri: str) -> list[str]:
    """What every part runs with: selection on validation accuracy, the one store and experiment, the user's
    overrides."""
    others = [override for override in overrides if override_key(override) not in STORE_KEYS]
    return [*SELECTION, f"tracking.experiment={experiment}", f"tracking.uri={uri}", *others]


def seed_override(seeds: Iterable[int]) -> str:
    return "seed=" + ",".join(map(str, seeds))


def checks(plan: Plan) -> str:
    return f"objective.checks_per_epoch={plan.checks_per_epoch}"


def baseline_parts(plan: Plan, experiment: str, common: list[str]) -> list[Part]:
    seeds, settings = seed_override(plan.seeds), (*PAPER, checks(plan), *common, NO_CHAMPION)
    parts = []
    if plan.models:
        models = (HARD, f"model={','.join(plan.models)}", seeds, f"trainer.max_epochs={plan.baseline_epochs}")
        parts.append(Part("baselines", study_name(experiment, "baselines"), (*models, *settings)))
    if plan.components:
        pca = ("data=fruits360_hard_pca", "model=ffnn", f"data.n_components={plan.components}")
        epochs = f"trainer.max_epochs={plan.pca_epochs}"
        parts.append(Part("PCA baseline", study_name(experiment, "pca"), (*pca, seeds, epochs, *settings)))
    return parts


def search_part(plan: Plan, experiment: str, common: list[str], strategy: Strategy, label: str, seed: int) -> Part:
    """A strategy's search with one seed (sampler and training): up to `search_epochs` epochs per trial, validated
    at the study's checks, in `workers` processes of one thread each, for its share of the budget."""
    settings = (
        f"trainer.max_epochs={plan.search_epochs}",
        checks(plan),
        f"seed={seed}",
        f"hydra.sweeper.n_trials={plan.max_trials}",
    )
    if plan.workers > 1:
        settings += ("hydra/launcher=joblib", f"hydra.sweeper.n_jobs={plan.workers}", "threads=1")
    overrides = (HARD, *strategy.fixed, *strategy.search, *settings, *common, NO_CHAMPION)
    return Part(
        f"{label} search, seed {seed}", study_name(experiment, f"{label} search seed {seed}"), overrides, plan.search_s
    )


def study_runs(plan: Plan, experiment: str, common: list[str]) -> list[Run]:
    """Every strategy with every seed, seed by seed: a change in the machine's load over the study's hours then
    falls on every strategy alike, not on the ones that happen to run last."""
    known = strategies(study_name(experiment, "baselines"))
    runs = []
    for seed in plan.seeds:
        for label in plan.strategies:
            strategy = known[label]
            search = search_part(plan, experiment, common, strategy, label, seed) if strategy.search else None
            runs.append(Run(label, seed, search, study_name(experiment, f"{label} final seed {seed}")))
    return runs


def max_time(seconds: float) -> str:
    """Lightning's max_time (DD:HH:MM:SS) for a training of `seconds`, at least one second."""
    total = max(int(seconds), 1)
    return f"'00:{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}'"


def final_part(
    plan: Plan, common: list[str], run: Run, chosen: list[str], start_from: str | None, spent_s: float
) -> Part:
    """The final training of a strategy with one seed: `chosen` (key=value each; train_longer: the paper's
    configuration) from the weights `start_from` (the winner's best checkpoint), for what is left of the budget
    after `spent_s` seconds of search."""
    strategy = strategies("")[run.strategy]
    replaced = {"data", *map(override_key, chosen)}
    fixed = [override for override in strategy.fixed if override_key(override) not in replaced]
    left = plan.budget_s - spent_s - plan.final_overhead_s
    settings = [
        "trainer.max_epochs=1000",  # max_time ends it, or early stopping
        f"+trainer.max_time={max_time(left)}",
        checks(plan),
        "early_stopping.enabled=true",
        "early_stopping.monitor=val_acc",
        "early_stopping.mode=max",
        f"early_stopping.patience={FINAL_PATIENCE}",
    ]
    if start_from:
        settings.append(f"model.init_from='{start_from}'")
    overrides = (HARD, *fixed, *chosen, *settings, f"seed={run.seed}", *common, NO_CHAMPION)
    return Part(f"{run.label}, final training", run.final_study, overrides)


def run_overrides(part: Part, spent_s: float) -> tuple[str, ...]:
    """The part's overrides for one run of its sweep: its study name and, for a search, the wall time it has left
    after `spent_s` seconds of earlier runs."""
    overrides = (*part.overrides, f"hydra.sweeper.study_name={part.study_name}")
    if part.budget_s is None:
        return overrides
    return (*overrides, f"hydra.sweeper.timeout_s={max(part.budget_s - spent_s, 0.0):.0f}")


def recorded_value(cfg: DictConfig, key: str) -> str:
    """The value of `key` in a run's recorded config, written as an override's value: a config group (a node
    with a `name`) by its option's name."""
    node = OmegaConf.select(cfg, key, default=ABSENT)
    if node is ABSENT or (isinstance(node, DictConfig) and "name" not in node):
        raise ConfigError(f"{key}: the best trial's recorded config has no such setting to retrain with")
    if isinstance(node, DictConfig):
        return str(node.name)
    if node is None:
        return "null"
    return str(node).lower() if isinstance(node, bool) else str(node)


def recorded_overrides(cfg: DictConfig, keys: Iterable[str]) -> list[str]:
    """'key=value' for each of `keys` (a search's parameters), from the chosen trial's recorded config."""
    return [f"{key}={recorded_value(cfg, key)}" for key in keys]
