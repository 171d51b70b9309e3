"""User-facing errors: a mistake in the user's command or data, reported in one line without a traceback."""

import signal


class FruitlabError(Exception):
    """An error the user can fix; the message names the bad value and what to do."""


class DataError(FruitlabError):
    """A dataset is missing, empty or unreadable."""


class ConfigError(FruitlabError):
    """A configuration value is unknown or invalid."""


def unknown(kind: str, value: object, valid: list[str]) -> ConfigError:
    """The error for a name that is not one of `valid`."""
    return ConfigError(f"unknown {kind} '{value}'; valid {kind}s: {', '.join(sorted(valid))}")


class TrackingError(FruitlabError):
    """The MLflow tracking store or server cannot be reached or used."""


class NonFiniteLossError(FruitlabError):
    """Training diverged: the loss became NaN or infinite."""


class RunInterrupted(BaseException):
    """SIGINT or SIGTERM arrived during a run.

    A BaseException like KeyboardInterrupt, so that no `except Exception` swallows it, but not a
    KeyboardInterrupt: Lightning turns that into `sys.exit(1)`, which would hide the interruption."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        self.run_id: str | None = None  # set once the interrupted MLflow run is closed
        super().__init__(f"interrupted by {self.signal_name}")


class SweepFailed(FruitlabError):
    """A sweep ended because its trials failed: all of them, or more than hydra.sweeper.max_failure_rate."""


class ReportError(FruitlabError):
    """The store, experiment or sweep to report on is missing, or holds no finished training run."""


class ModelError(FruitlabError):
    """A recorded model cannot be found, loaded, exported or quantized."""


def print_error(error: BaseException, verbose: bool = False) -> None:
    """One line for the user on stderr; the traceback first only when asked for."""
    import sys

    if verbose:
        import traceback

        traceback.print_exception(error)
    print(f"fruitlab: error: {error}", file=sys.stderr)
