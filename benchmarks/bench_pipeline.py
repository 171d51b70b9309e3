"""Pipeline speed, measured side by side in one run on real data; compared variants are interleaved and
repeated, and each is reported by its minimum and median.

(a) Lightning epoch throughput (fruitlab's ClassifierModule) / the best plain PyTorch loop for the same model,
    data and batch: channels_last, plus bf16 autocast where the CPU has bf16 instructions       (goal >= 0.9)
(b) wall time of a 1-epoch `python -m fruitlab` run / its fit_time_s                                (goal <= 1.6)
data cache: per-epoch ImageFolder + DataLoader decoding / the tensor cache                          (goal >= 10)
logging:    MLflow per-epoch logging as a share of epoch time                                       (goal <= 2 %)
help:       wall time of `python -m fruitlab --help`                                                (goal <= 1.5 s)

Usage: python benchmarks/bench_pipeline.py [--data PATH] [--model vgg3_bn] [--repeats 3] [--threads N]
       [--batches N] [--run-repeats N]      (a) on N batches per epoch, (b) with N runs: for a loaded machine
"""

import argparse
import itertools
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import lightning.pytorch as pl
import mlflow
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchmetrics.classification import MulticlassAccuracy
from torchvision import transforms
from torchvision.datasets import ImageFolder

from fruitlab.data.imagefolder import TRAIN_DIR, ImageFolderDataModule
from fruitlab.models import ImageClassifier, get_model, to_unit_float
from fruitlab.tracking.epoch_logger import EpochMetricsLogger
from fruitlab.tracking.runs import RunRecorder, tracked_run
from fruitlab.tracking.store import Store
from fruitlab.training.module import ClassifierModule
from fruitlab.training.speed import available_cores, set_threads

REPO = Path(__file__).resolve().parents[1]
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def describe_machine(threads: int) -> str:
    flags = cpu_flags()
    shown = [f for f in ("avx2", "avx512f", *BF16_FLAGS, "amx_tile") if f in flags]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores ({available_cores()} "
        f"available), flags {' '.join(shown) or 'none of ' + ' '.join(BF16_FLAGS)}; torch {torch.__version__}, "
        f"{threads} torch threads; load average {load}"
    )


def summary(values: list[float], unit: str, digits: int = 2) -> str:
    return f"min {min(values):.{digits}f} / median {statistics.median(values):.{digits}f} {unit}"


class TimedEpochs(EpochMetricsLogger):
    """Per-epoch wall times, and the time spent in the MLflow logging call."""

    def __init__(self, recorder: RunRecorder) -> None:
        super().__init__(recorder)
        self.epoch_times: list[float] = []
        self.logging_times: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        started = time.perf_counter()
        super().on_train_epoch_end(trainer, pl_module)
        self.logging_times.append(time.perf_counter() - started)
        self.epoch_times.append(time.perf_counter() - self._start)


def build_classifier(dm: ImageFolderDataModule, model: str, seed: int) -> ImageClassifier:
    torch.manual_seed(seed)
    backbone = get_model(model, dm.num_classes, dm.model_input_shape)
    return ImageClassifier(dm.input_transform(), backbone)


def lightning_epoch(
    dm: ImageFolderDataModule, model: str, precision: str, store: Store, batches: int | None
) -> TimedEpochs:
    """One warm-up epoch, then one timed epoch (of `batches` batches, or all), as fruitlab trains:
    ClassifierModule, channels_last."""
    classifier = build_classifier(dm, model, 0)
    module = ClassifierModule(classifier, dm.num_classes, 1e-3, {"name": "adam"}, {"name": "none"}, channels_last=True)
    with tracked_run(store, store.ensure_experiment("bench")) as recorder:
        timer = TimedEpochs(recorder)
        trainer = pl.Trainer(
            max_epochs=2, accelerator="cpu", precision=precision, logger=False, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
            limit_train_batches=batches, callbacks=[timer],
        )  # fmt: skip
        trainer.fit(module, train_dataloaders=dm.train_dataloader())
    return timer


def plain_epoch(dm: ImageFolderDataModule, model: str, bf16: bool, batches: int | None) -> float:
    """The same work as ClassifierModule.training_step without Lightning, in the fastest form known here:
    channels_last, and bf16 autocast when `bf16`. One warm-up epoch, then one timed epoch (of `batches`)."""
    classifier = build_classifier(dm, model, 0).train().to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=1e-3)
    accuracy = MulticlassAccuracy(dm.num_classes, average="micro")
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
    elapsed = 0.0
    for _ in range(2):
        start = time.perf_counter()
        for images, labels in itertools.islice(dm.train_dataloader(), batches):
            with autocast:
                logits = classifier(to_unit_float(images).contiguous(memory_format=torch.channels_last))
                loss = F.cross_entropy(logits, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            accuracy.update(logits, labels)
        accuracy.compute()
        accuracy.reset()
        elapsed = time.perf_counter() - start
    return elapsed


def interleaved(variants: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Run the variants in turn, `repeats` rounds, so that drift in machine load hits all alike."""
    results: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, measure in variants.items():
            results[name].append(measure())
    return results


def epoch_of_batches(loader: DataLoader) -> float:
    start = time.perf_counter()
    for _batch in loader:
        pass
    return time.perf_counter() - start


def data_costs(dm: ImageFolderDataModule, root: Path, repeats: int) -> dict[str, list[float]]:
    """Seconds per epoch: decoding with ImageFolder + DataLoader vs the cached tensors (same batch size,
    same worker count: the main process)."""
    decode = transforms.Compose([transforms.Resize((dm.image_size, dm.image_size)), transforms.PILToTensor()])
    folder = DataLoader(ImageFolder(root / TRAIN_DIR, transform=decode), batch_size=dm.batch_size, shuffle=True)
    variants = {"decoded": lambda: epoch_of_batches(folder), "cached": lambda: epoch_of_batches(dm.train_dataloader())}
    return interleaved(variants, repeats)


def one_epoch_run(root: Path, model: str, threads: int) -> tuple[float, float]:
    """(wall seconds, fit_time_s) of one 1-epoch `python -m fruitlab` run into a fresh store."""
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        command = [
            sys.executable, "-m", "fruitlab", f"model={model}", "trainer.max_epochs=1", f"data.root={root}",
            f"tracking.uri={uri}", "trainer.enable_progress_bar=false", f"threads={threads}",
        ]  # fmt: skip
        started = time.perf_counter()
        subprocess.run(command, cwd=REPO, check=True, capture_output=True)
        wall = time.perf_counter() - started
        client = mlflow.MlflowClient(uri)
        (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
        return wall, run.data.metrics["fit_time_s"]


def help_time() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "fruitlab", "--help"], cwd=REPO, check=True, capture_output=True)
    return time.perf_counter() - start


def row(name: str, value: str, goal: str, ok: bool) -> str:
    return f"| {name} | {value} | {goal} | {'met' if ok else 'MISSED'} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = os.environ.get("FRUITLAB_DATA", str(REPO.parent / "shared" / "data" / "fruits360"))
    parser.add_argument("--data", type=Path, default=Path(default_data))
    parser.add_argument("--model", default="vgg3_bn")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of each interleaved comparison (>= 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: every available core)")
    parser.add_argument("--batches", type=int, default=None, help="batches per timed epoch in (a) (default: all)")
    parser.add_argument(
        "--run-repeats", type=int, default=None, help="1-epoch runs in (b) (default: --repeats; 0: skip)"
    )
    args = parser.parse_args()
    threads = set_threads(args.threads)
    bf16 = bool(cpu_flags() & set(BF16_FLAGS))

    dm = ImageFolderDataModule(root=args.data, batch_size=64)
    dm.setup()
    images = len(dm.train.labels)
    print(describe_machine(threads))
    print(f"data: {args.data} ({images} training images, 32x32), model {args.model}, batch 64, "
          f"{args.repeats} interleaved rounds", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{tmp}/mlflow.db")
        timers: dict[str, list[TimedEpochs]] = {"32-true": [], "bf16-mixed": []}

        def lightning(precision: str) -> float:
            timers[precision].append(lightning_epoch(dm, args.model, precision, store, args.batches))
            return timers[precision][-1].epoch_times[-1]

        variants = {
            "plain best": lambda: plain_epoch(dm, args.model, bf16, args.batches),
            "Lightning fp32": lambda: lightning("32-true"),
        }
        if bf16:
            variants["Lightning bf16-mixed"] = lambda: lightning("bf16-mixed")
        epochs = interleaved(variants, args.repeats)
    timed = min(images, args.batches * dm.batch_size) if args.batches else images
    throughput = {name: [timed / s for s in seconds] for name, seconds in epochs.items()}
    for name, values in throughput.items():
        print(f"    {name}: {summary(values, 'images/s', 0)}")
    best_plain = max(throughput["plain best"])
    best_lightning = max(throughput.get("Lightning bf16-mixed", throughput["Lightning fp32"]))
    ratio_a = best_lightning / best_plain
    print(f"    Lightning fp32 / plain best: {max(throughput['Lightning fp32']) / best_plain:.2f}")
    logging = [t.logging_times[-1] / t.epoch_times[-1] for ts in timers.values() for t in ts]

    run_repeats = args.repeats if args.run_repeats is None else args.run_repeats
    runs = [one_epoch_run(args.data, args.model, threads) for _ in range(run_repeats)]
    ratios_b = [wall / fit for wall, fit in runs]
    data = data_costs(dm, args.data, args.repeats)
    decoded, cached = min(data["decoded"]), min(data["cached"])
    helps = [help_time() for _ in range(max(args.repeats, 5))]
    if runs:
        walls, fits = [w for w, _ in runs], [f for _, f in runs]
        print(f"    1-epoch runs: wall {summary(walls, 's', 1)}, fit_time_s {summary(fits, 's', 1)}")
    print(f"    load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")

    lightning_name = "bf16-mixed" if bf16 else "fp32"
    print("| measure | value | goal | |")
    print("|---|---|---|---|")
    print(
        row(
            f"(a) Lightning {lightning_name} / plain best epoch throughput (best of each)",
            f"{ratio_a:.2f} ({best_lightning:.0f} vs {best_plain:.0f} images/s)",
            ">= 0.9",
            ratio_a >= 0.9,
        )
    )
    if runs:
        b_value = f"{summary(ratios_b, '', 2).strip()}"
        print(row("(b) 1-epoch `python -m fruitlab` wall / fit_time_s", b_value, "<= 1.6", min(ratios_b) <= 1.6))
    print(
        row(
            "data cache: ImageFolder decode / tensor cache, per epoch",
            f"{decoded / cached:.0f}x ({decoded:.2f} s vs {cached:.3f} s)",
            ">= 10x",
            decoded / cached >= 10,
        )
    )
    print(
        row(
            "logging: MLflow share of epoch time",
            f"{100 * statistics.median(logging):.2f} % (median)",
            "<= 2 %",
            statistics.median(logging) <= 0.02,
        )
    )
    print(row("help: `python -m fruitlab --help` wall time", summary(helps, "s"), "<= 1.5 s", min(helps) <= 1.5))


if __name__ == "__main__":
    main()
