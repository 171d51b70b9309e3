"""`fruitlab eda [OVERRIDES]`: explore a dataset, recorded as an MLflow run of its own (fruitlab/exploration.py).

The data and the store come from the same Hydra config as training (`data=...`, `data.root=PATH`,
`tracking.uri=...`), so the PCA is the one the FFNN baseline sees.
"""

import argparse
from dataclasses import dataclass
from pathlib import Path

from fruitlab.commands.common import command_parser, run_or_exit


@dataclass(frozen=True)
class ExplorationResult:
    run_id: str
    run_name: str
    folder: Path


def parser() -> argparse.ArgumentParser:
    p = command_parser(
        "eda",
        "Explore a dataset: sample grid per class, class counts, PCA explained variance, eigenfruits and "
        "reconstructions; recorded as an MLflow run named eda-<data.name> and written to a folder.",
        "examples:\n"
        "  fruitlab eda                                  # the embedded Fruits-360 sample\n"
        "  fruitlab eda data.root=PATH                   # full Fruits-360\n"
        "  fruitlab eda data=imagefolder data.root=PATH data.name=my_data --components 5 20",
    )
    p.add_argument("overrides", nargs="*", help="Hydra overrides, as for training (data.*, tracking.*)")
    p.add_argument("--components", type=int, nargs="+", default=[10, 50, 170], help="reconstruct from these counts")
    p.add_argument("--out", type=Path, help="output folder (default: reports/eda-<data.name>)")
    return p


def eda(overrides: list[str], components: list[int], out: Path | None = None) -> ExplorationResult:
    from fruitlab.config import compose_config
    from fruitlab.exploration import explore

    cfg = compose_config(overrides)
    folder = out or Path("reports") / f"eda-{cfg.data.name}"
    return ExplorationResult(explore(cfg, components, folder), f"eda-{cfg.data.name}", folder)


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    overrides = [*args.overrides, *([f"tracking.uri={args.tracking_uri}"] if args.tracking_uri else [])]
    result = run_or_exit(lambda: eda(overrides, args.components, args.out), args.verbose)
    print(f"written: {result.folder}/ ({', '.join(sorted(p.name for p in result.folder.iterdir()))})")
    print(f"logged to MLflow run {result.run_id} ({result.run_name}) under eda/")
