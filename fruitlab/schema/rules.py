"""What a config key allows: its type (from the schema's annotation) and the values beyond the type (`Allowed`, the
field's metadata), checked and said in words for the one-line error."""

import dataclasses
import math
import types
import typing
from dataclasses import Field, dataclass, field, fields, is_dataclass
from typing import Any

from omegaconf import MISSING


@dataclass(frozen=True)
class Allowed:
    """The values a setting allows beyond its type: a range, a list of choices, values outside the range."""

    low: float | None = None  # the smallest allowed value
    high: float | None = None  # the largest allowed value
    open_low: bool = False  # `low` itself is not allowed
    open_high: bool = False
    also: tuple = ()  # values allowed outside the range
    choices: tuple = ()
    length: int | None = None  # of a list: how many values (None: any number)
    example: Any = None  # a valid value shown in the error, when the default is none
    kind: type | None = None  # the type of a key typed Any (one that also takes values of another type)


FRACTION = {"low": 0, "high": 1, "open_low": True, "open_high": True}
RATE = {"low": 0, "high": 1, "open_high": True}  # momentum, dropout, betas: 1 would never forget


def setting(default: Any, **allowed: Any) -> Any:
    """A dataclass field with its default and what it allows (keyword arguments of `Allowed`)."""
    metadata = {"allowed": Allowed(**allowed)}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def group(schema: type | None = None) -> Any:
    """A field that a config group fills; `schema`: the group's keys, for an untyped (open) group."""
    return field(default=MISSING, metadata={"schema": schema} if schema else {})


@dataclass(frozen=True)
class Rule:
    """What one key allows: its type (from the annotation) and `Allowed`; `allowed()` says it in words."""

    kind: type | None  # int, float, bool or str; float accepts whole numbers too; None: not checked
    allowed: Allowed
    example: Any
    nullable: bool = False
    listed: bool = False  # a list of values, each checked

    def allows(self, value: object) -> bool:
        if value is None:
            return self.nullable
        if not self.listed:
            return self._one(value)
        length = self.allowed.length
        if not isinstance(value, list) or not value or len(value) != (length or len(value)):
            return False
        return all(map(self._one, value))

    def _one(self, value: object) -> bool:
        allowed = self.allowed
        if any(type(value) is type(other) and value == other for other in allowed.also):
            return True
        if not _is_a(value, self.kind):
            return False
        if allowed.choices:
            return value in allowed.choices
        above = allowed.low is None or (value > allowed.low if allowed.open_low else value >= allowed.low)
        below = allowed.high is None or (value < allowed.high if allowed.open_high else value <= allowed.high)
        return above and below

    def allowed_text(self) -> str:
        """What the key allows, in words: `a number in (0, 1)`, `a whole number >= 1`, `min or max`."""
        allowed = self.allowed
        if allowed.choices:
            text = " or ".join(map(str, allowed.choices))
        else:
            text = {int: "a whole number", float: "a number", bool: "true or false", str: "a text"}[self.kind]
            text += _range(allowed)
        text += "".join(f" or {shown(value)}" for value in allowed.also)
        if self.listed:
            text = f"a list of {allowed.length or 'one or more'} values, each {text}"
        return f"{text} or null" if self.nullable else text


def shown(value: object) -> str:
    """A value as the user writes it: 5 (not 5.0), true, [0.9, 1.5], 'abc' for a text where a number belongs."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return f"[{', '.join(map(shown, value))}]"
    return repr(value)


def _range(allowed: Allowed) -> str:
    low, high = allowed.low, allowed.high
    if low is not None and high is not None:
        return f" in {'(' if allowed.open_low else '['}{low:g}, {high:g}{')' if allowed.open_high else ']'}"
    if low is not None:
        return f" {'>' if allowed.open_low else '>='} {low:g}"
    if high is not None:
        return f" {'<' if allowed.open_high else '<='} {high:g}"
    return ""


def _is_a(value: object, kind: type) -> bool:
    if isinstance(value, bool):
        return kind is bool
    if kind is float:
        return isinstance(value, int | float) and math.isfinite(value)
    return isinstance(value, kind)


def rule(schema: type, key: str) -> Rule | None:
    """The rule of `schema`'s field `key`; None for a key it lacks or a section (checked key by key)."""
    found = [f for f in fields(schema) if f.name == key]
    if not found or found[0].metadata.get("schema") is not None:
        return None
    hint = typing.get_type_hints(schema)[key]
    nullable = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)
    if nullable:
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    listed = typing.get_origin(hint) is list
    if listed:
        (hint,) = typing.get_args(hint)
    allowed = found[0].metadata.get("allowed", Allowed())
    kind = allowed.kind or (hint if hint in (int, float, bool, str) else None)
    if kind is None and not allowed.choices:
        return None
    return Rule(kind, allowed, _example(found[0], allowed), nullable, listed)


def _example(spec: Field, allowed: Allowed) -> Any:
    if allowed.example is not None:
        return allowed.example
    default = spec.default_factory() if spec.default_factory is not dataclasses.MISSING else spec.default
    return None if default in (dataclasses.MISSING, MISSING) else default


def section_schema(schema: type, key: str) -> type | None:
    """The dataclass that describes `schema`'s section `key` when its node is untyped (an open group)."""
    found = [f for f in fields(schema) if f.name == key]
    if not found:
        return None
    declared = found[0].metadata.get("schema") or typing.get_type_hints(schema)[key]
    return declared if is_dataclass(declared) else None
