"""The command line as a user meets it: help, composed config, presets, one-line errors with suggestions."""

import pytest
from conftest import REPO, run_cli

PRESETS = [
    f"{group}={p.stem}" for group in ("experiment", "debug") for p in sorted((REPO / "conf" / group).glob("*.yaml"))
]


def test_help_lists_the_config_groups_and_their_options() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for line in (
        "data: cifar10, cifar100, fruits360",
        "model: ffnn, lenet, mobilenet_v2, mobilenet_v2_slim, resnet34, vgg1",
        "optim: adadelta, adam, adamw",
        "scheduler: cosine",
        "experiment: cifar10_quick, fruits360_pca_ffnn, fruits360_vgg3_bn",
        "debug: fast, limit, overfit, profile",
    ):
        assert line in result.stdout


def test_cfg_job_prints_the_composed_config() -> None:
    result = run_cli("model=vgg1", "lr=0.01", "--cfg", "job")
    assert result.returncode == 0
    assert "name: vgg1" in result.stdout and "lr: 0.01" in result.stdout


@pytest.mark.parametrize("preset", PRESETS)
def test_each_preset_composes(preset: str) -> None:
    result = run_cli(preset, "--cfg", "job")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "tracking:" in result.stdout


def test_presets_set_what_they_promise() -> None:
    assert len(PRESETS) >= 6
    vgg = run_cli("experiment=fruits360_vgg3_bn", "--cfg", "job").stdout
    assert "name: vgg3_bn" in vgg and "max_epochs: 4" in vgg
    cifar = run_cli("experiment=cifar10_quick", "debug=fast", "--cfg", "job").stdout
    assert "loader: cifar10" in cifar and "limit_train_batches: 2" in cifar  # debug comes last: it wins
    assert "experiment: debug" in cifar


def test_unknown_option_names_the_value_and_lists_the_valid_ones() -> None:
    result = run_cli("model=vgg99")
    assert result.returncode != 0
    assert "vgg99" in result.stderr and "vgg3_bn" in result.stderr


def error_line(*overrides: str) -> str:
    """The one line a bad command answers with (exit 2)."""
    result = run_cli(*overrides)
    assert result.returncode == 2, result.stderr[-2000:]
    (line,) = result.stderr.strip().splitlines()
    return line


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [
        ("model=vgg9", "did you mean vgg3 or vgg2 or vgg1?"),  # an option of a group
        ("modle=vgg1", "did you mean model?"),  # a group
        ("lrr=0.1", "did you mean lr?"),  # a top-level key
        ("trainer.max_epoch=1", "did you mean trainer.max_epochs?"),  # a nested key
        ("epochs=3", "did you mean trainer.max_epochs?"),  # a key of another section
        ("debug=fats", "did you mean fast?"),
    ],
)
def test_typos_are_answered_with_the_closest_valid_names(typo: str, suggestion: str) -> None:
    line = error_line(typo)
    assert line.startswith("fruitlab: error: ") and suggestion in line


def test_an_unknown_key_with_no_close_name_lists_the_keys_beside_it() -> None:
    line = error_line("trainer.zzzz=1")
    assert "no key trainer.zzzz" in line and "trainer.max_epochs" in line and "+trainer.zzzz=VALUE" in line


def test_missing_data_root_is_one_clear_line(tmp_path) -> None:
    result = run_cli(f"data.root={tmp_path}/missing", f"tracking.uri=sqlite:///{tmp_path}/m.db")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("fruitlab: error: dataset folder not found")
    assert "Traceback" not in result.stderr
