"""User-facing errors: a mistake in the user's command or data, reported in one line without a traceback."""


class FruitlabError(Exception):
    """An error the user can fix; the message names the bad value and what to do."""


class DataError(FruitlabError):
    """A dataset is missing, empty or unreadable."""


class ConfigError(FruitlabError):
    """A configuration value is unknown or invalid."""


def unknown(kind: str, value: object, valid: list[str]) -> ConfigError:
    """The error for a name that is not one of `valid`."""
    return ConfigError(f"unknown {kind} '{value}'; valid {kind}s: {', '.join(sorted(valid))}")


class ModelError(FruitlabError):
    """A recorded model cannot be found, loaded, exported or quantized."""
