"""A sweep's search space, read from Hydra's override syntax.

- `a=x,y,z` (a comma list) is a grid axis: a sweep made only of comma lists is a grid study, every point of the
  cartesian product once;
- `choice(x,y)`, `range(10,211,20)`, `interval(0,1)`, `tag(log, interval(1e-4, 1e-1))`,
  `int(interval(1, 64))` (or `tag(int, interval(1, 64))`) and `tag(log, int(interval(8, 256)))` are
  distributions for a sampler (TPE by default); `shuffle(range(1,4))` is a categorical of the range's values.
  `sampler=grid` enumerates choices and ranges too. A range excludes its stop, as in Hydra's basic sweeper.
"""

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import optuna
from hydra.core.override_parser.types import IntervalSweep, Override, QuotedString, RangeSweep
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from fruitlab.errors import ConfigError

Value = str | int | float | bool | None
Point = dict[str, Value]


def _same(a: object, b: object) -> bool:
    """Equality that keeps 1, 1.0 and True apart (Optuna returns the exact choice object)."""
    return type(a) is type(b) and a == b


@dataclass(frozen=True)
class Parameter:
    key: str  # as written in an override, e.g. "lr", "+trainer.limit_train_batches"
    spec: str  # the sweep as written, e.g. "tag(log, interval(1e-4, 1e-1))"
    distribution: BaseDistribution
    labels: tuple[str, ...] | None = None  # how each categorical choice is written in an override
    comma_list: bool = False

    @property
    def name(self) -> str:
        """The parameter's name in the study: the config key without '+' / '++'."""
        return self.key.lstrip("+")

    @property
    def values(self) -> tuple[Value, ...] | None:
        """The values a grid enumerates; None for a continuous distribution."""
        if isinstance(self.distribution, CategoricalDistribution):
            return tuple(self.distribution.choices)
        if isinstance(self.distribution, IntDistribution | FloatDistribution) and self.distribution.step is not None:
            low, high, step = self.distribution.low, self.distribution.high, self.distribution.step
            count = round((high - low) / step) + 1
            return tuple(type(low)(low + i * step) for i in range(count))
        return None

    def override(self, value: Value) -> str:
        """`key=value` for one trial, written the way Hydra reads it back."""
        if self.labels is not None:
            choices = self.distribution.choices
            index = next(i for i, choice in enumerate(choices) if _same(choice, value))
            return f"{self.key}={self.labels[index]}"
        return f"{self.key}={value!r}"

    def value_of(self, given: object) -> Value:
        """`given` (a value, or its text as MLflow records params) as this parameter's value in the study, or
        None when it lies outside the distribution (a value on a step's grid is snapped to it exactly)."""
        d = self.distribution
        if isinstance(d, CategoricalDistribution):
            text = str(given)
            return next(
                (c for i, c in enumerate(d.choices) if _same(c, given) or text in (str(c), self.labels[i])), None
            )
        number = _number(given)
        if number is None or not d.low <= number <= d.high:
            return None
        if isinstance(d, IntDistribution):
            whole = number == int(number) and (int(number) - d.low) % d.step == 0
            return int(number) if whole else None
        if d.step is None:
            return float(number)
        snapped = d.low + round((number - d.low) / d.step) * d.step
        return snapped if math.isclose(snapped, number, rel_tol=1e-9, abs_tol=1e-12) else None

    def suggest(self, trial: optuna.Trial) -> Value:
        d = self.distribution
        if isinstance(d, CategoricalDistribution):
            return trial.suggest_categorical(self.name, d.choices)
        if isinstance(d, IntDistribution):
            return trial.suggest_int(self.name, d.low, d.high, step=d.step, log=d.log)
        step = None if d.log else d.step
        return trial.suggest_float(self.name, d.low, d.high, step=step, log=d.log)


def _number(given: object) -> float | None:
    """A number given as a number or as text; None for anything else (booleans included)."""
    if isinstance(given, bool):
        return None
    try:
        number = float(given)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _native(element: object) -> object:
    return element.text if isinstance(element, QuotedString) else element


def _categorical(override: Override) -> Parameter:
    natives = [_native(x) for x in override.sweep_iterator()]
    labels = list(override.sweep_string_iterator())
    primitive = all(isinstance(x, str | int | float | bool) or x is None for x in natives)
    # Lists and dicts cannot be Optuna choices: their override text stands for them.
    choices = natives if primitive else labels
    unique = [i for i, x in enumerate(choices) if not any(_same(x, y) for y in choices[:i])]
    return Parameter(
        key=override.get_key_element(),
        spec=override.get_value_string(),
        distribution=CategoricalDistribution([choices[i] for i in unique]),
        labels=tuple(labels[i] for i in unique),
        comma_list=override.is_choice_sweep() and override.value().simple_form,
    )


def _range(override: Override) -> Parameter:
    sweep: RangeSweep = override.value()
    values = list(sweep.range())
    if not values:
        raise ConfigError(f"{override.input_line}: the range is empty")
    if sweep.shuffle:  # upstream's spelling of "these values, in no order": a categorical
        return Parameter(
            key=override.get_key_element(),
            spec=override.get_value_string(),
            distribution=CategoricalDistribution(values),
            labels=tuple(str(v) for v in values),
        )
    low, high, step = min(values), max(values), abs(sweep.step)
    if all(isinstance(x, int) for x in (low, high, step)):
        distribution = IntDistribution(low, high, step=step)
    else:
        distribution = FloatDistribution(float(low), float(high), step=float(step))
    return Parameter(key=override.get_key_element(), spec=override.get_value_string(), distribution=distribution)


def _interval(override: Override) -> Parameter:
    sweep: IntervalSweep = override.value()
    log = "log" in sweep.tags
    # int(interval(..)) casts the bounds to int; tag(int, interval(..)) is fruitlab's older spelling.
    if "int" in sweep.tags or isinstance(sweep.start, int):
        distribution = IntDistribution(int(sweep.start), int(sweep.end), log=log)
    else:
        distribution = FloatDistribution(sweep.start, sweep.end, log=log)
    return Parameter(key=override.get_key_element(), spec=override.get_value_string(), distribution=distribution)


@dataclass(frozen=True)
class SearchSpace:
    parameters: tuple[Parameter, ...]

    @classmethod
    def from_overrides(cls, overrides: Sequence[Override]) -> "SearchSpace":
        """The sweep overrides (`is_sweep_override()`) of a command line, in order."""
        parameters = []
        for override in overrides:
            if override.is_choice_sweep():
                parameters.append(_categorical(override))
            elif override.is_range_sweep():
                parameters.append(_range(override))
            elif override.is_interval_sweep():
                parameters.append(_interval(override))
        return cls(tuple(parameters))

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    @property
    def is_comma_grid(self) -> bool:
        """Every swept key is a plain comma list: the sweep is a grid unless a sampler is named."""
        return all(p.comma_list for p in self.parameters)

    def as_text(self) -> str:
        return "; ".join(f"{p.key}={p.spec}" for p in self.parameters)

    def grid(self) -> list[Point]:
        """Every point of the cartesian product, in command-line order."""
        axes = []
        for p in self.parameters:
            if p.values is None:
                raise ConfigError(
                    f"{p.key}={p.spec} is continuous and cannot be a grid axis; use a comma list, choice() or "
                    "range(), or a sampler such as hydra.sweeper.sampler=tpe"
                )
            axes.append(p.values)
        return [dict(zip(self.names, combination, strict=True)) for combination in itertools.product(*axes)]

    def suggest(self, trial: optuna.Trial) -> Point:
        return {p.name: p.suggest(trial) for p in self.parameters}

    def overrides(self, point: Point) -> Iterator[str]:
        for p in self.parameters:
            yield p.override(point[p.name])


def point_key(point: Point) -> tuple:
    """A hashable identity of a point: equal parameters, equal key (types kept apart)."""
    return tuple(sorted((name, type(value).__name__, value) for name, value in point.items()))
