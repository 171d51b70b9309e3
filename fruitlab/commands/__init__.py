"""The command surface: `fruitlab [OVERRIDES]` (or `python -m fruitlab`) trains, `fruitlab VERB ...` runs the
other commands. May import sweeping, serving, reporting and every layer below; never studies (the verbs
`study` and `hard-study` are found by module name, at run time).

Each command module has `main(argv)` for its parser and a function that does the work and returns a value,
which other commands (the studies) call directly."""

import sys
from importlib import import_module

# verb -> (module, one line of help); imported only when chosen, so that each command starts fast.
VERBS: dict[str, tuple[str, str]] = {
    "train": ("fruitlab.commands.train", "train one run, or sweep with -m (the default verb)"),
    "eda": ("fruitlab.commands.eda", "explore a dataset, recorded as an MLflow run"),
    "report": ("fruitlab.commands.report", "rank the runs of an experiment or a sweep"),
    "study": ("fruitlab.studies.seed", "reproduce the Fruits-360 seed study"),
    "hard-study": ("fruitlab.studies.hard", "the Fruits-360 hard study: baselines, search strategies, report"),
    "export": ("fruitlab.commands.export", "torch.export and ONNX files of a recorded model"),
    "quantize": ("fruitlab.commands.quantize", "int8 quantization of a recorded model"),
    "serve": ("fruitlab.commands.serve", "serve a recorded model over HTTP"),
}


def main(argv: list[str] | None = None) -> None:
    """`fruitlab VERB ARGS` runs VERB; anything else is Hydra overrides for training, exactly as before."""
    argv = sys.argv[1:] if argv is None else argv
    verb = argv[0] if argv and argv[0] in VERBS else "train"
    arguments = argv[1:] if argv and argv[0] == verb else argv
    import_module(VERBS[verb][0]).main(arguments)
