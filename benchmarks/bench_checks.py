"""What validation checks inside an epoch (`objective.checks_per_epoch`) cost, measured in one run on real data.

(a) seconds of one training epoch (train batches only), one validation pass over the whole split and one over
    the part the checks inside an epoch see (1/checks of it)
(b) fit time of one epoch with `checks` checks / with one check, for checks inside an epoch on the part (as
    shipped) and on the whole split; interleaved, the fastest of `--repeats` kept
(c) whether the part ranks models as the whole split does: the models of a few learning rates after a short fit,
    ordered by validation loss on each

Usage: python benchmarks/bench_checks.py [--data PATH] [--model lenet] [--checks 4] [--repeats 2]
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from fruitlab.config import compose_config
from fruitlab.training.loop import build_module, prepare_data, train

LEARNING_RATES = (3e-2, 3e-3, 1e-3, 3e-4, 1e-5)


def setup(data: str, model: str, checks: int, lr: float = 1e-3, extra: tuple[str, ...] = ()):
    overrides = [f"data.root={data}", f"model={model}", f"lr={lr}", "trainer.max_epochs=1"]
    cfg = compose_config(
        [*overrides, "trainer.enable_progress_bar=false", f"objective.checks_per_epoch={checks}", *extra]
    )
    datamodule = prepare_data(cfg)
    return cfg, datamodule, build_module(cfg, datamodule)


def fit_seconds(data: str, model: str, checks: int, whole_split: bool) -> float:
    cfg, datamodule, module = setup(data, model, checks)
    if whole_split:  # what the checks would cost without the part
        datamodule.validate_on_part = lambda fraction: None
    with tempfile.TemporaryDirectory() as folder:
        return train(cfg, module, datamodule, Path(folder), None).fit_time_s


def validation(module, datamodule, fraction: float | None) -> tuple[float, float]:
    """(seconds, mean loss) of one pass over the validation split, or the `fraction` of it the checks see."""
    loader = datamodule.val_dataloader()
    datamodule.validate_on_part(fraction)
    module.eval()
    started, total, count = time.perf_counter(), 0.0, 0
    with torch.no_grad():
        for images, labels in loader:
            total += torch.nn.functional.cross_entropy(module(images), labels, reduction="sum").item()
            count += len(labels)
    return time.perf_counter() - started, total / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("FRUITLAB_DATA"), required="FRUITLAB_DATA" not in os.environ)
    parser.add_argument("--model", default="lenet")
    parser.add_argument("--checks", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    cfg, datamodule, module = setup(args.data, args.model, 1)
    with tempfile.TemporaryDirectory() as folder:
        one_check = train(cfg, module, datamodule, Path(folder), None).fit_time_s
    whole, _ = validation(module, datamodule, None)
    part, _ = validation(module, datamodule, 1 / args.checks)
    print(f"(a) {args.model}: {len(datamodule.train.labels)} training, {len(datamodule.val.labels)} validation images; "
          f"epoch {one_check - whole:.2f} s, validation {whole:.3f} s whole, {part:.3f} s on 1/{args.checks}: "
          f"a whole pass is {whole / (one_check - whole):.1%} of an epoch")  # fmt: skip

    times: dict[tuple[int, bool], list[float]] = {}
    for _ in range(args.repeats):
        for key in ((1, False), (args.checks, False), (args.checks, True)):
            times.setdefault(key, []).append(fit_seconds(args.data, args.model, *key))
    base = min(times[(1, False)])
    on_part, on_whole = min(times[(args.checks, False)]), min(times[(args.checks, True)])
    print(
        f"(b) fit of one epoch: 1 check {base:.2f} s; {args.checks} checks {on_part:.2f} s on the part "
        f"(x{on_part / base:.3f}), {on_whole:.2f} s on the whole split (x{on_whole / base:.3f})"
    )

    losses = {}
    for lr in LEARNING_RATES:
        cfg, datamodule, module = setup(args.data, args.model, 1, lr, ("+trainer.limit_train_batches=0.25",))
        with tempfile.TemporaryDirectory() as folder:
            train(cfg, module, datamodule, Path(folder), None)
        losses[lr] = (validation(module, datamodule, None)[1], validation(module, datamodule, 1 / args.checks)[1])
    by_whole = sorted(losses, key=lambda lr: losses[lr][0])
    by_part = sorted(losses, key=lambda lr: losses[lr][1])
    shown = ", ".join(f"lr={lr:g}: {w:.3f} / {p:.3f}" for lr, (w, p) in losses.items())
    print(f"(c) validation loss after a quarter epoch, whole / part: {shown}; same ranking: {by_whole == by_part}")


if __name__ == "__main__":
    main()
