"""Sweep speed-ups, measured side by side in one run on real data.

(a) PCA preprocessing of the 11-trial pca_components sweep (K = 10, 30, ..., 210):
    a PCA fitted per trial / one fit for 210 components shared through the disk cache      (goal >= 5)
(b) wall time of a TPE learning-rate sweep with the median pruner / the same sweep unpruned,
    both reaching the same best value                                                      (goal <= 0.5)
    Up to 10 trials, TPE draws its seeded random start-up points (n_startup_trials=10 is given), so both
    sweeps try the same learning rates and pruning is the only difference between them.
(c) sweep overhead per trial: (wall - sum of the trials' fit_time_s) / trials of an 8-trial 1-epoch grid
    (vgg1, 32 px, 8 learning rates), the whole `python -m fruitlab -m` process timed; interleaved and repeated
    for each variant: the defaults (a trailing trial records its scores and curves only), `report.trials=all`
    (every trial gets the figures, Grad-CAM, latency and the model) and, with --baseline, another checkout of
    fruitlab (e.g. one before a change) at its defaults                                     (goal <= 2 s)
(d) peak RSS of the sweep worker after trial 20 / after trial 2 of a 20-trial 1-epoch lenet sweep (10 batches
    a trial), for this checkout and the --baseline one                                     (goal <= 1.05)

(e) with --parallel only: wall time of a 4-trial grid (lenet, 2 epochs) on the joblib launcher with
    hydra.sweeper.n_jobs=2 / the same grid with n_jobs=1; both use every core (torch threads are divided
    among the trials in flight)                                                             (goal <= 0.8)

Usage: python benchmarks/bench_sweeps.py [--data PATH] [--trials 10] [--epochs 10] [--repeats 3] [--parts abcd]
       python benchmarks/bench_sweeps.py --parts cd [--repeats 2] [--baseline PATH]    # overhead and memory
       python benchmarks/bench_sweeps.py --parallel [--data PATH] [--repeats 1]      # the same as --parts e
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import optuna
from bench_pipeline import describe_machine
from optuna.trial import TrialState

from fruitlab.data.pca import PCADataModule
from fruitlab.training.speed import available_cores

REPO = Path(__file__).resolve().parents[1]
COMPONENTS = range(10, 211, 20)


def pca_seconds(root: Path, cache: Path, shared_fit: int | None) -> float:
    """Seconds spent preparing the PCA input over the sweep's trials; each trial fits `shared_fit`
    components (loaded from the cache after the first trial), or only its own K when None."""
    for old in cache.glob("pca-*"):
        old.unlink()
    total = 0.0
    for k in COMPONENTS:
        data = PCADataModule(n_components=k, fit_components=shared_fit or k, root=root, cache_dir=cache)
        data.setup("fit")  # images: from the decode cache, not timed
        started = time.perf_counter()
        data.input_transform()
        total += time.perf_counter() - started
    return total


def sweep(root: Path, store: Path, pruner: str, trials: int, epochs: int) -> tuple[float, optuna.Study]:
    """Wall time of one `python -m fruitlab -m` TPE sweep over a log-uniform lr, and its study."""
    command = [
        sys.executable, "-m", "fruitlab", "-m", "model=vgg1", "optim=sgd", "data.image_size=16",
        "lr=tag(log,interval(1e-4,10))", f"trainer.max_epochs={epochs}", "trainer.enable_progress_bar=false",
        "tracking.log_model=false", f"data.root={root}", f"tracking.uri=sqlite:///{store}/mlflow.db",
        "hydra.sweeper.sampler=tpe", "hydra.sweeper.sampler_options={n_startup_trials:10}",
        f"hydra.sweeper.n_trials={trials}", f"hydra.sweeper.pruner={pruner}",
        "hydra.sweeper.pruner_options={n_startup_trials:2,n_warmup_steps:0}" if pruner != "none" else "",
    ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run([c for c in command if c], cwd=REPO, check=True, capture_output=True)
    elapsed = time.perf_counter() - started
    storage = f"sqlite:///{store}/optuna.db"
    (summary,) = optuna.get_all_study_summaries(storage)
    return elapsed, optuna.load_study(study_name=summary.study_name, storage=storage)


@dataclass
class TrialRun:
    metrics: dict[str, float]
    seconds: float  # from the start to the end of its MLflow run
    logged_model: bool


def trial_runs(store: Path) -> list[TrialRun]:
    """The trial runs of a finished sweep (its parent run aside), in the order they ran."""
    client = mlflow.MlflowClient(f"sqlite:///{store}/mlflow.db")
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, order_by=["start_time ASC"])
    with_model = {m.source_run_id for m in client.search_logged_models(experiment_ids=experiments, max_results=1000)}
    return [
        TrialRun(r.data.metrics, (r.info.end_time - r.info.start_time) / 1000, r.info.run_id in with_model)
        for r in runs
        if "fit_time_s" in r.data.metrics
    ]


def timed_sweep(root: Path, store: Path, *overrides: str, checkout: Path = REPO) -> float:
    """Wall time of one `python -m fruitlab -m` sweep on `root` into `store`, its process start included, run
    from `checkout` (this one, or a baseline's)."""
    command = [
        sys.executable, "-m", "fruitlab", "-m", "trainer.enable_progress_bar=false", f"data.root={root}",
        f"tracking.uri=sqlite:///{store}/mlflow.db", f"hydra.sweep.dir={store}/multirun", *overrides,
    ]  # fmt: skip
    env = os.environ if checkout == REPO else {**os.environ, "PYTHONPATH": str(checkout)}
    started = time.perf_counter()
    subprocess.run(command, cwd=checkout, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def grid_sweep(root: Path, store: Path, model: str, lrs: list[str], *extra: str, checkout: Path = REPO) -> float:
    """Wall time of a 1-epoch grid sweep of `model` over `lrs`."""
    lr = f"lr={','.join(lrs)}"
    return timed_sweep(root, store, f"model={model}", lr, "trainer.max_epochs=1", *extra, checkout=checkout)


@dataclass
class SweepCost:
    wall: float
    trials: list[TrialRun]

    @property
    def per_trial(self) -> float:
        """(wall - sum of fit_time_s) / trials: what the sweep costs beyond training, per trial."""
        return (self.wall - sum(t.metrics["fit_time_s"] for t in self.trials)) / len(self.trials)

    @property
    def in_runs_per_trial(self) -> float:
        """The part of `per_trial` spent inside the trials' MLflow runs (the rest: process start, Hydra's job
        set-up, claiming trials, the study's report)."""
        return sum(t.seconds - t.metrics["fit_time_s"] for t in self.trials) / len(self.trials)

    @property
    def leaders(self) -> int:
        """Trials that did the full work after training (the only ones that log a model)."""
        return sum(t.logged_model for t in self.trials)


def grid_cost(root: Path, model: str, lrs: list[str], *extra: str, checkout: Path = REPO) -> SweepCost:
    with tempfile.TemporaryDirectory() as store:
        wall = grid_sweep(root, Path(store), model, lrs, *extra, checkout=checkout)
        return SweepCost(wall, trial_runs(Path(store)))


def parallel_grid_seconds(root: Path, store: Path, n_jobs: int, epochs: int = 2) -> float:
    """Wall time of a 4-trial grid sweep on the joblib launcher with `n_jobs` trials in flight."""
    grid = ["model=lenet", "optim=sgd,adam", "lr=0.1,0.01", f"trainer.max_epochs={epochs}", "tracking.log_model=false"]
    return timed_sweep(root, store, *grid, "hydra/launcher=joblib", f"hydra.sweeper.n_jobs={n_jobs}")


OVERHEAD_LRS = ["0.003", "0.001", "0.01", "0.0003", "0.03", "0.0001", "0.002", "0.005"]
MEMORY_LRS = [f"{1e-4 * 10 ** (3 * i / 19):.2g}" for i in range(20)]  # 1e-4 to 1e-1


def variants(baseline: Path | None) -> dict[str, tuple[Path, tuple[str, ...]]]:
    """(checkout, extra overrides) of each compared variant of a sweep, the defaults first."""
    found = {"defaults": (REPO, ()), "report.trials=all": (REPO, ("report.trials=all",))}
    if baseline is not None:
        found[f"baseline {baseline.name}"] = (baseline, ())
    return found


def sweep_overhead(root: Path, repeats: int, baseline: Path | None) -> None:
    """(c): the sweep's cost beyond training, per trial, for each variant; alternated and repeated."""
    compared = variants(baseline)
    costs: dict[str, list[SweepCost]] = {name: [] for name in compared}
    for _ in range(repeats):
        for name, (checkout, extra) in compared.items():
            costs[name].append(grid_cost(root, "vgg1", OVERHEAD_LRS, *extra, checkout=checkout))
    print(f"(c) {len(OVERHEAD_LRS)}-trial 1-epoch grid sweep (vgg1, 32 px), {repeats} rounds alternated; "
          f"(wall - sum of fit_time_s) / trials:", flush=True)  # fmt: skip
    best = {name: min(runs, key=lambda c: c.per_trial) for name, runs in costs.items()}
    for name, runs in costs.items():
        cost = best[name]
        median = statistics.median(c.per_trial for c in runs)
        fits = sum(t.metrics["fit_time_s"] for t in cost.trials)
        peaks = [t.metrics["process_peak_rss_mb"] for t in cost.trials]
        print(f"    {name}: min {cost.per_trial:.2f} s / median {median:.2f} s per trial (of which "
              f"{cost.in_runs_per_trial:.2f} s inside the trials' runs; wall {cost.wall:.1f} s, fit_time_s sum "
              f"{fits:.1f} s, {cost.leaders} of {len(cost.trials)} trials logged a model); peak RSS after trial 2 "
              f"{peaks[1]:.0f} MiB, after trial {len(peaks)} {peaks[-1]:.0f} MiB", flush=True)  # fmt: skip
    default = best["defaults"].per_trial
    for name in list(compared)[1:]:
        print(f"    ratio {name} / defaults: {best[name].per_trial / default:.2f}")
    print(f"    defaults: {default:.2f} s per trial (goal <= 2 s)", flush=True)


def worker_memory(root: Path, baseline: Path | None) -> None:
    """(d): the sweep worker's peak RSS after its second and its twentieth trial (each run records the
    process's peak so far), for this checkout and the baseline's, one after the other."""
    checkouts = {name: checkout for name, (checkout, extra) in variants(baseline).items() if not extra}
    growth: dict[str, float] = {}
    for name, checkout in checkouts.items():
        cost = grid_cost(root, "lenet", MEMORY_LRS, "+trainer.limit_train_batches=10", checkout=checkout)
        peaks = [t.metrics["process_peak_rss_mb"] for t in cost.trials]
        growth[name] = peaks[-1] / peaks[1]
        print(f"(d) {name}: sweep worker peak RSS over {len(peaks)} trials (lenet, 10 batches each): after trial 2 "
              f"{peaks[1]:.0f} MiB, after trial {len(peaks)} {peaks[-1]:.0f} MiB, ratio {growth[name]:.3f} "
              "(goal <= 1.05)", flush=True)  # fmt: skip


def compare_parallel_grid(root: Path, repeats: int) -> None:
    """(e): n_jobs=2 against n_jobs=1, alternated; the fastest of each is the least disturbed."""
    times: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(repeats):
        for n_jobs in (1, 2):
            with tempfile.TemporaryDirectory() as store:
                times[n_jobs].append(parallel_grid_seconds(root, Path(store), n_jobs))
    serial, parallel = min(times[1]), min(times[2])
    print(f"(e) 4-trial grid, lenet, 2 epochs, joblib launcher, {len(os.sched_getaffinity(0))} cores "
          f"(fastest of {repeats}): n_jobs=1 {serial:.0f} s, n_jobs=2 {parallel:.0f} s, "
          f"ratio {parallel / serial:.2f} (goal <= 0.8)", flush=True)  # fmt: skip


def pca_sharing(root: Path, repeats: int) -> None:
    """(a): PCA refitted per trial against one cached fit, alternated and repeated."""
    with tempfile.TemporaryDirectory() as cache:
        cache = Path(cache)
        PCADataModule(root=root, cache_dir=cache).setup("fit")  # decode the images once, untimed
        # Alternated and repeated: the fastest of each is the least disturbed by other work on the machine.
        times = [(pca_seconds(root, cache, None), pca_seconds(root, cache, max(COMPONENTS))) for _ in range(repeats)]
    refit, shared = (min(column) for column in zip(*times, strict=True))
    print(f"(a) PCA for {len(COMPONENTS)} trials (fastest of {repeats}): refit per trial {refit:.2f} s, "
          f"shared cached fit {shared:.2f} s, ratio {refit / shared:.1f}x (goal >= 5x)", flush=True)  # fmt: skip


def pruning(root: Path, trials: int, epochs: int) -> None:
    """(b): the same TPE sweep with the median pruner and without."""
    with tempfile.TemporaryDirectory() as unpruned_store, tempfile.TemporaryDirectory() as pruned_store:
        unpruned_time, unpruned = sweep(root, Path(unpruned_store), "none", trials, epochs)
        pruned_time, pruned = sweep(root, Path(pruned_store), "median", trials, epochs)
    n_pruned = len(pruned.get_trials(states=(TrialState.PRUNED,)))
    print(f"(b) TPE sweep, {trials} trials of up to {epochs} epochs (vgg1, SGD, 16 px):")
    for name, seconds, study in (("unpruned", unpruned_time, unpruned), ("median pruner", pruned_time, pruned)):
        print(f"    {name}: {seconds:.0f} s, best val_loss {study.best_value:.4f} (lr {study.best_params['lr']:.3g})")
    print(f"    {n_pruned} of {trials} trials pruned")
    same = "the same best value" if pruned.best_value == unpruned.best_value else "DIFFERENT best values"
    print(f"    wall-time ratio pruned / unpruned {pruned_time / unpruned_time:.2f} (goal <= 0.5), {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = os.environ.get("FRUITLAB_DATA", str(REPO.parent / "shared" / "data" / "fruits360"))
    parser.add_argument("--data", type=Path, default=Path(default_data))
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", type=Path, default=None, help="another fruitlab checkout to compare in (c), (d)")
    parser.add_argument("--parts", default="abcd", help="which measures to run, e.g. cd or e (default: abcd)")
    parser.add_argument("--parallel", action="store_true", help="the same as --parts e")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(describe_machine(available_cores()), flush=True)
    parts = {
        "a": lambda: pca_sharing(args.data, args.repeats),
        "b": lambda: pruning(args.data, args.trials, args.epochs),
        "c": lambda: sweep_overhead(args.data, args.repeats, args.baseline),
        "d": lambda: worker_memory(args.data, args.baseline),
        "e": lambda: compare_parallel_grid(args.data, args.repeats),
    }
    for part in "e" if args.parallel else args.parts:
        parts[part]()
    print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
