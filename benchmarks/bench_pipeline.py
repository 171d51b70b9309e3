"""Pipeline overheads, measured side by side in one run on real data.

(a) Lightning epoch time / the same model, data and batch size in a plain PyTorch loop   (goal <= 1.05)
(b) per-epoch data cost: ImageFolder + DataLoader decoding every epoch / the tensor cache (goal >= 10)
(c) MLflow per-epoch logging as a share of epoch time                                     (goal <= 2 %)
(d) wall time of `python -m fruitlab --help`                                              (goal <= 1.5 s)

Usage: python benchmarks/bench_pipeline.py [--data PATH] [--model vgg3_bn] [--epochs 3]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchmetrics.classification import MulticlassAccuracy
from torchvision import transforms
from torchvision.datasets import ImageFolder

from fruitlab.data.imagefolder import TRAIN_DIR, ImageFolderDataModule
from fruitlab.models import ImageClassifier, get_model, to_unit_float
from fruitlab.tracking.callbacks import EpochMetricsLogger
from fruitlab.tracking.runs import RunRecorder, tracked_run
from fruitlab.tracking.store import ensure_experiment, resolve_uri
from fruitlab.training.module import ClassifierModule

REPO = Path(__file__).resolve().parents[1]


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


def lightning_epochs(dm: ImageFolderDataModule, model: str, epochs: int, store: str) -> TimedEpochs:
    module = ClassifierModule(build_classifier(dm, model, 0), dm.num_classes, 1e-3, {"name": "adam"}, {"name": "none"})
    with tracked_run(store, ensure_experiment("bench", store)) as recorder:
        timer = TimedEpochs(recorder)
        trainer = pl.Trainer(
            max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
            callbacks=[timer],
        )
        trainer.fit(module, train_dataloaders=dm.train_dataloader())
    return timer


def plain_epochs(dm: ImageFolderDataModule, model: str, epochs: int) -> list[float]:
    """The same work as ClassifierModule.training_step, without Lightning."""
    classifier = build_classifier(dm, model, 0).train()
    optimizer = torch.optim.Adam(classifier.parameters(), lr=1e-3)
    accuracy = MulticlassAccuracy(dm.num_classes, average="micro")
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for images, labels in dm.train_dataloader():
            logits = classifier(to_unit_float(images))
            loss = F.cross_entropy(logits, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            accuracy.update(logits, labels)
        accuracy.compute()
        accuracy.reset()
        times.append(time.perf_counter() - start)
    return times


def epoch_of_batches(loader: DataLoader) -> float:
    start = time.perf_counter()
    for _batch in loader:
        pass
    return time.perf_counter() - start


def data_costs(dm: ImageFolderDataModule, root: Path, repeats: int) -> tuple[float, float]:
    """Median seconds per epoch: decoding with ImageFolder + DataLoader vs the cached tensors (same batch size,
    same worker count: the main process)."""
    decode = transforms.Compose([transforms.Resize((dm.image_size, dm.image_size)), transforms.PILToTensor()])
    folder = DataLoader(ImageFolder(root / TRAIN_DIR, transform=decode), batch_size=dm.batch_size, shuffle=True)
    decoded = statistics.median(epoch_of_batches(folder) for _ in range(repeats))
    cached = statistics.median(epoch_of_batches(dm.train_dataloader()) for _ in range(repeats))
    return decoded, cached


def help_time(repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "fruitlab", "--help"], cwd=REPO, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def row(name: str, value: str, goal: str, ok: bool) -> str:
    return f"| {name} | {value} | {goal} | {'met' if ok else 'MISSED'} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = os.environ.get("FRUITLAB_DATA", str(REPO.parent / "shared" / "data" / "fruits360"))
    parser.add_argument("--data", type=Path, default=Path(default_data))
    parser.add_argument("--model", default="vgg3_bn")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per loop (the first is warm-up)")
    args = parser.parse_args()

    dm = ImageFolderDataModule(root=args.data, batch_size=64)
    dm.setup()
    print(f"data: {args.data} ({len(dm.train.labels)} training images, 32x32), model {args.model}, "
          f"batch 64, {torch.get_num_threads()} torch threads")
    with tempfile.TemporaryDirectory() as tmp:
        store = resolve_uri(f"sqlite:///{tmp}/mlflow.db")
        # Alternate the two loops so that drift in machine load hits both alike.
        plain, timers = [], []
        for _ in range(2):
            plain += plain_epochs(dm, args.model, args.epochs)[1:]
            timers.append(lightning_epochs(dm, args.model, args.epochs, store))
    lightning = [t for timer in timers for t in timer.epoch_times[1:]]
    logging = [t for timer in timers for t in timer.logging_times[1:]]
    ratio_a = statistics.median(lightning) / statistics.median(plain)
    decoded, cached = data_costs(dm, args.data, repeats=3)
    share_c = statistics.median(logging) / statistics.median(lightning)
    help_s = help_time(repeats=5)

    print("| measure | value | goal | |")
    print("|---|---|---|---|")
    print(row("(a) Lightning / plain PyTorch epoch time",
              f"{ratio_a:.3f} ({statistics.median(lightning):.2f} s vs {statistics.median(plain):.2f} s)",
              "<= 1.05", ratio_a <= 1.05))
    print(row("(b) ImageFolder decode / tensor cache, per epoch",
              f"{decoded / cached:.0f}x ({decoded:.2f} s vs {cached:.3f} s)", ">= 10x", decoded / cached >= 10))
    print(row("(c) MLflow logging share of epoch time",
              f"{100 * share_c:.2f} % ({1000 * statistics.median(logging):.1f} ms per epoch)", "<= 2 %",
              share_c <= 0.02))
    print(row("(d) `python -m fruitlab --help` wall time", f"{help_s:.2f} s", "<= 1.5 s", help_s <= 1.5))


if __name__ == "__main__":
    main()
