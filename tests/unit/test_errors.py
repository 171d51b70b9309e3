"""User-facing errors: one line naming the bad value and what is allowed; the closest valid names offered."""

import signal

import pytest

from fruitlab.commands.train import did_you_mean
from fruitlab.errors import (
    ConfigError,
    DataError,
    FruitlabError,
    ModelError,
    NonFiniteLossError,
    ReportError,
    RunInterrupted,
    SweepFailed,
    TrackingError,
    print_error,
    unknown,
)


def test_an_unknown_name_is_one_line_naming_it_and_every_valid_name_sorted() -> None:
    error = unknown("optimizer", "adamm", ["sgd", "adam", "adadelta"])
    assert isinstance(error, ConfigError)
    assert str(error) == "unknown optimizer 'adamm'; valid optimizers: adadelta, adam, sgd"


@pytest.mark.parametrize(
    "kind", [DataError, ConfigError, TrackingError, NonFiniteLossError, SweepFailed, ReportError, ModelError]
)
def test_every_user_error_is_one_the_commands_report_in_one_line(kind: type[Exception]) -> None:
    assert issubclass(kind, FruitlabError)


def test_the_error_line_is_all_the_user_reads(capsys: pytest.CaptureFixture[str]) -> None:
    print_error(ConfigError("batch_size=0 is out of range; allowed: an integer >= 1"))
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "fruitlab: error: batch_size=0 is out of range; allowed: an integer >= 1\n"


def test_verbose_puts_the_traceback_before_the_same_last_line(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        raise DataError("no images in /nowhere/Training")
    except DataError as error:
        print_error(error, verbose=True)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-1] == "fruitlab: error: no images in /nowhere/Training"


def test_an_interruption_names_its_signal_and_escapes_except_exception() -> None:
    interruption = RunInterrupted(signal.SIGTERM)
    assert (interruption.signum, interruption.signal_name) == (signal.SIGTERM, "SIGTERM")
    assert str(interruption) == "interrupted by SIGTERM"
    assert not isinstance(interruption, Exception)
    assert not isinstance(interruption, KeyboardInterrupt)  # Lightning would turn that into exit code 1


MODELS = ["ffnn", "lenet", "mobilenet_v2", "resnet34", "vgg1", "vgg2", "vgg3", "vgg3_bn"]


@pytest.mark.parametrize(
    ("typed", "valid", "offered"),
    [
        ("vgg9", MODELS, "did you mean vgg3 or vgg2 or vgg1? "),  # as the README shows it
        ("lenett", MODELS, "did you mean lenet? "),
        ("modle", ["data", "model", "optim"], "did you mean model? "),
        ("xyz", ["data", "model", "optim"], ""),
    ],
)
def test_the_closest_valid_names_are_offered(typed: str, valid: list[str], offered: str) -> None:
    assert did_you_mean(typed, valid) == offered


def test_at_most_three_names_are_offered() -> None:
    assert did_you_mean("vgg9", ["vgg1", "vgg2", "vgg3", "vgg4", "vgg5"]).count(" or ") == 2


def test_a_close_name_can_stand_for_its_full_paths() -> None:
    paths = {"max_epochs": ["trainer.max_epochs"], "lr": ["lr"]}
    assert did_you_mean("max_epoch", list(paths), paths.__getitem__) == "did you mean trainer.max_epochs? "
