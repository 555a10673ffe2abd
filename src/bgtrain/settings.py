"""Documented settings dataclasses, filled from keyword arguments, a TOML file and flags.

Each field carries its help text (``setting(default, "help")``), so the same text shows
in ``--help``, in the README and in errors. Precedence: flags > TOML file > defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from .errors import BgtrainError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

T = TypeVar("T")


class SettingsError(BgtrainError):
    """A settings file or value that cannot be used."""


def setting(default: Any, help: str) -> Any:
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(
            default_factory=lambda: type(default)(default), metadata={"help": help}
        )
    return dataclasses.field(default=default, metadata={"help": help})


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _base_type(tp: Any) -> tuple[Any, bool]:
    """``int | None`` -> ``(int, True)``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], len(args) != len(typing.get_args(tp))
    return tp, False


#: How "no value" is written for an optional setting in a flag or a TOML file.
NONE = "none"


def _convert(name: str, tp: Any, value: Any) -> Any:
    base, optional = _base_type(tp)
    if optional and isinstance(value, str) and value.lower() == NONE:
        value = None
    if value is None:
        if optional:
            return None
        raise SettingsError(f"setting {name!r} cannot be empty")
    if typing.get_origin(base) is tuple:
        if not isinstance(value, (list, tuple)):
            raise SettingsError(f"setting {name!r} must be a list, got {value!r}")
        (item,) = set(typing.get_args(base)) - {Ellipsis}
        return tuple(_convert(name, item, v) for v in value)
    if base is bool:
        if isinstance(value, bool):
            return value
        raise SettingsError(f"setting {name!r} must be true or false, got {value!r}")
    if base in (int, float, str, Path):
        if isinstance(value, bool) and base is not str:
            raise SettingsError(f"setting {name!r} must be {base.__name__}, got {value!r}")
        if base is int and isinstance(value, float) and not value.is_integer():
            raise SettingsError(f"setting {name!r} must be a whole number, got {value!r}")
        try:
            return base(value)
        except (TypeError, ValueError):
            raise SettingsError(
                f"setting {name!r} must be {base.__name__}, got {value!r}"
            ) from None
    return value


def build_settings(cls: type[T], values: Mapping[str, Any]) -> T:
    """An instance of ``cls`` from ``values`` (names with - or _), each converted and checked."""
    types_ = _field_types(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    converted = {}
    for raw_name, value in values.items():
        name = raw_name.replace("-", "_")
        if name not in known:
            raise SettingsError(
                f"unknown setting {raw_name!r} for {cls.__name__}; "
                f"known: {', '.join(sorted(known))}"
            )
        converted[name] = _convert(name, types_[name], value)
    return cls(**converted)


def read_toml(path: Path, section: str | None = None) -> dict[str, Any]:
    """The settings of a TOML file (its ``[section]`` table if it has one)."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise SettingsError(f"settings file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"settings file {path} is not valid TOML: {exc}") from None
    if section and isinstance(data.get(section), dict):
        return dict(data[section])
    return {k: v for k, v in data.items() if not isinstance(v, dict)}


def add_settings_arguments(
    parser: argparse.ArgumentParser, cls: type, exclude: tuple[str, ...] = ()
) -> None:
    """A ``--field-name`` flag per field of ``cls``; unset flags stay ``None`` (not given)."""
    types_ = _field_types(cls)
    group = parser.add_argument_group(f"{cls.__name__} (also from --config FILE)")
    for f in dataclasses.fields(cls):
        if f.name in exclude:
            continue
        base, optional = _base_type(types_[f.name])
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        help_text = f"{f.metadata.get('help', '')} (default: {default})".replace("%", "%%")
        if base is bool:
            group.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        elif typing.get_origin(base) is tuple:
            group.add_argument(
                flag,
                dest=f.name,
                nargs="+",
                default=None,
                help=help_text,
                type=typing.get_args(base)[0],
            )
        else:
            convert = base if base in (int, float, str, Path) else str
            group.add_argument(
                flag,
                dest=f.name,
                default=None,
                help=help_text,
                # An optional setting also takes "none" (e.g. --max-policy-lag none).
                type=_none_or(convert) if optional else convert,
            )


def _none_or(convert: Any) -> Any:
    """A flag type that also takes ``none`` (kept as the string: ``None`` means not given)."""

    def parse(text: str) -> Any:
        return NONE if text.lower() == NONE else convert(text)

    parse.__name__ = getattr(convert, "__name__", "value")
    return parse


def settings_from_args(
    cls: type[T],
    args: argparse.Namespace,
    config: Path | None,
    section: str | None = None,
    defaults: dict[str, Any] | None = None,
) -> T:
    """``defaults`` (else the class's), overridden by the TOML file, then by given flags."""
    values: dict[str, Any] = dict(defaults or {})
    if config:
        values.update(read_toml(config, section))
    for f in dataclasses.fields(cls):
        given = getattr(args, f.name, None)
        if given is not None:
            values[f.name] = given
    return build_settings(cls, values)


def describe(cls: type) -> list[tuple[str, Any, str]]:
    """``(name, default, help)`` of every field: for docs and tests."""
    out = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        out.append((f.name, default, f.metadata.get("help", "")))
    return out


def markdown_table(cls: type) -> str:
    """The settings of ``cls`` as a Markdown table (the README's, kept equal by a test)."""
    rows = ["| setting | default | |", "| --- | --- | --- |"]
    for name, default, help_text in describe(cls):
        if default is None:
            shown = "none"
        elif isinstance(default, tuple):
            shown = ", ".join(map(str, default))
        else:
            shown = str(default)
        rows.append(f"| `{name.replace('_', '-')}` | {shown} | {help_text} |")
    return "\n".join(rows)
