"""The command line as a user meets it: help, composed config, one-line errors."""

from conftest import run_cli


def test_help_lists_the_config_groups_and_their_options() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for line in (
        "data: cifar10, cifar100, fruits360",
        "model: ffnn, lenet, mobilenet_v2, mobilenet_v2_slim, resnet34, vgg1",
        "optim: adadelta, adam, adamw",
        "scheduler: cosine",
    ):
        assert line in result.stdout


def test_cfg_job_prints_the_composed_config() -> None:
    result = run_cli("model=vgg1", "lr=0.01", "--cfg", "job")
    assert result.returncode == 0
    assert "name: vgg1" in result.stdout and "lr: 0.01" in result.stdout


def test_unknown_option_names_the_value_and_lists_the_valid_ones() -> None:
    result = run_cli("model=vgg99")
    assert result.returncode != 0
    assert "vgg99" in result.stderr and "vgg3_bn" in result.stderr


def test_missing_data_root_is_one_clear_line(tmp_path) -> None:
    result = run_cli(f"data.root={tmp_path}/missing", f"tracking.uri=sqlite:///{tmp_path}/m.db")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("fruitlab: error: dataset folder not found")
    assert "Traceback" not in result.stderr
