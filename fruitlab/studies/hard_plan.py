"""The Fruits-360 hard study's plan (53 similar classes, one experiment: `fruits360-hard`): which sweeps it runs,
with which overrides. Pure: no store, no process, no training.

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

from collections.abc import Iterable
from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from fruitlab.errors import ConfigError

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
SELECTION = ("objective.metric=val_acc", "objective.direction=maximize")  # every run chooses on validation accuracy
# The baselines and the searches register no champion; the retrained best configuration, the study's own model,
# does (its best seed), as any sweep does.
NO_CHAMPION = "hydra.sweeper.register=false"
PAPER = ("optim=adam", "lr=0.001", "data.image_size=32")
STUDY_KEYS = ("model", "seed", "optim", "lr", "sweep", "trainer.max_epochs", "data")
STORE_KEYS = ("tracking.uri", "tracking.experiment")  # resolved once, then given to every part
RETRAINED = "best configuration retrained"
ABSENT = object()  # a key missing from a recorded config, told apart from a null value


@dataclass(frozen=True)
class Strategy:
    """A search strategy: its search space and sweeper settings, and the settings it keeps fixed."""

    space: tuple[str, ...]
    fixed: tuple[str, ...] = ()


STRATEGIES: dict[str, Strategy] = {
    "TPE + Hyperband": Strategy(("sweep=hard_search",)),
    "random search": Strategy(
        (
            "sweep=hard_search",
            "hydra.sweeper.sampler=random",
            "hydra.sweeper.sampler_options=null",
            "hydra.sweeper.pruner=none",
            "hydra.sweeper.pruner_options=null",
        )
    ),
    "optimizer x lr grid": Strategy(
        ("optim=sgd,adam,adadelta", "lr=0.1,0.01"), fixed=(HARD, "model=vgg3_bn", "data.image_size=32")
    ),
}


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


def strategy_seconds(budget_minutes: float) -> float:
    """Each search strategy's wall-time budget for a study sized for `budget_minutes`."""
    return budget_minutes * 60 * STRATEGY_SHARE


def study_name(experiment: str, label: str) -> str:
    return f"{experiment}-{label.lower().replace(' + ', '-').replace(' ', '-')}"


def retrained_study_name(experiment: str) -> str:
    return study_name(experiment, "best retrained")


def override_key(override: str) -> str:
    """'+trainer.limit_train_batches=0.25' -> 'trainer.limit_train_batches'."""
    return override.split("=", 1)[0].lstrip("+~")


def check_overrides(overrides: list[str]) -> None:
    if clash := sorted({override_key(override) for override in overrides} & set(STUDY_KEYS)):
        raise ConfigError(f"{', '.join(clash)} is set by the study for each of its parts: see fruitlab hard-study -h")


def common_overrides(overrides: list[str], experiment: str, uri: str) -> list[str]:
    """What every part runs with: selection on validation accuracy, the one store and experiment, the user's
    overrides."""
    others = [override for override in overrides if override_key(override) not in STORE_KEYS]
    return [*SELECTION, f"tracking.experiment={experiment}", f"tracking.uri={uri}", *others]


def seed_override(plan: Plan) -> str:
    return "seed=" + ",".join(map(str, plan.seeds))


def baseline_parts(plan: Plan, experiment: str, common: list[str]) -> list[Part]:
    seeds, settings = seed_override(plan), (*PAPER, *common, NO_CHAMPION)
    parts = []
    if plan.models:
        models = (HARD, f"model={','.join(plan.models)}", seeds, f"trainer.max_epochs={plan.baseline_epochs}")
        parts.append(Part("baselines", study_name(experiment, "baselines"), (*models, *settings)))
    if plan.components:
        pca = ("data=fruits360_hard_pca", "model=ffnn", f"data.n_components={plan.components}")
        epochs = f"trainer.max_epochs={plan.pca_epochs}"
        parts.append(Part("PCA baseline", study_name(experiment, "pca"), (*pca, seeds, epochs, *settings)))
    return parts


def search_settings(plan: Plan) -> list[str]:
    """How a search trial trains: quarter epochs by default, so that Hyperband has more rungs and a trial costs
    at most about one baseline run."""
    settings = [f"trainer.max_epochs={plan.search_epochs}"]
    if plan.search_epoch_fraction < 1:
        settings.append(f"+trainer.limit_train_batches={plan.search_epoch_fraction}")
    return settings


def strategy_parts(plan: Plan, experiment: str, common: list[str]) -> list[Part]:
    trials = f"hydra.sweeper.n_trials={plan.max_trials}"
    return [
        Part(
            label,
            study_name(experiment, label),
            (*strategy.fixed, *strategy.space, *search_settings(plan), trials, *common, NO_CHAMPION),
            plan.strategy_s,
        )
        for label, strategy in STRATEGIES.items()
    ]


def run_overrides(part: Part, spent_s: float) -> tuple[str, ...]:
    """The part's overrides for one run of its sweep: its study name and, for a search strategy, the wall time
    it has left after `spent_s` seconds of earlier runs."""
    overrides = (*part.overrides, f"hydra.sweeper.study_name={part.study_name}")
    if part.budget_s is None:
        return overrides
    return (*overrides, f"hydra.sweeper.timeout_s={max(part.budget_s - spent_s, 0.0):.0f}")


def best_strategy(scores: dict[str, float | None]) -> str:
    """The strategy whose best trial has the highest validation accuracy (the first of a tie); a score of None:
    that strategy finished no trial."""
    finished = {label: score for label, score in scores.items() if score is not None}
    if not finished:
        raise ConfigError("no search strategy finished a trial: raise --budget")
    return max(finished, key=finished.__getitem__)


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


def retrained_part(plan: Plan, experiment: str, common: list[str], strategy: Strategy, chosen: list[str]) -> Part:
    """The best configuration (`chosen`, key=value each) with each seed, trained as its strategy trained its
    trials: the strategy's fixed settings and the search's epochs, without its search space or sweeper settings."""
    replaced = {"data", *map(override_key, chosen)}
    kept = [o for o in (*strategy.fixed, *search_settings(plan), *common) if override_key(o) not in replaced]
    return Part(RETRAINED, retrained_study_name(experiment), (HARD, *kept, *chosen, seed_override(plan)))
