"""Documented settings dataclasses, filled from keyword arguments, a TOML file and flags.

Each field carries its help text and its allowed values (``setting(default, "help",
at_least(1))``), declared once beside the field. The same text shows in ``--help``, in
the README and in errors, and the same range is checked however a value arrives: a flag
(at parse time: a usage error), a TOML file, or a keyword argument (each settings class
checks itself in ``__post_init__`` with :func:`check_settings`). A bad value is refused
before anything starts, with the setting, the value and what is allowed.
Precedence: flags > TOML file > defaults.

A settings class may *hold* another (``held(PPOSettings, "...")``: the learner holds the
algorithm's settings). Held settings keep their own names everywhere a person writes or
reads them: one flag each, one TOML key each under the holder's table, one README row
each, one did-you-mean list; they are gathered into the held object when the holder is
built. A holder decorated with :func:`flat_settings` also takes and reads them as
keyword arguments and attributes of its own.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import functools
import math
import numbers
import os
import re
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from bgtrain.errors import SettingsError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

T = TypeVar("T")

__all__ = [
    "Allowed",
    "SettingsError",
    "at_least",
    "between",
    "build_settings",
    "check_settings",
    "checked",
    "did_you_mean",
    "documented_settings",
    "flag_help",
    "flag_type",
    "flat_settings",
    "flat_values",
    "greater_than",
    "held",
    "non_empty",
    "one_of",
    "read_toml",
    "replace_settings",
    "setting",
    "setting_names",
    "shown_default",
]

#: How "no value" is written for an optional setting in a flag or a TOML file.
NONE = "none"
#: The tables a ``--config`` file may hold: ``bgtrain run`` reads both, ``bgtrain learn``
#: the learner's. In a file without tables, the keys are the learner's settings.
CONFIG_TABLES = ("learner", "run")
FLAT_TABLE = "learner"


# --------------------------------------------------------------------------- allowed values


def _number(x: float) -> str:
    """A bound as a person writes it: ``1.0`` -> ``1``, ``0.5`` -> ``0.5``."""
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x)


@dataclasses.dataclass(frozen=True)
class Allowed:
    """The values one setting may take: a numeric range (each bound inclusive or not),
    a set of words, or any non-empty text. Numbers must also be finite. For a list
    setting, the rule applies to each item."""

    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    choices: tuple[str, ...] = ()
    non_empty: bool = False

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.non_empty:
            return "a non-empty text"
        lower = upper = ""
        if self.low is not None:
            lower = ("at least " if self.low_inclusive else "greater than ") + _number(self.low)
        if self.high is not None:
            upper = ("at most " if self.high_inclusive else "less than ") + _number(self.high)
        if lower and upper and self.low_inclusive and self.high_inclusive:
            return f"from {_number(self.low or 0)} to {_number(self.high or 0)}"
        return " and ".join(part for part in (lower, upper) if part) or "any value"

    def admits(self, value: Any) -> bool:
        if self.choices:
            return value in self.choices
        if self.non_empty:
            return isinstance(value, str) and bool(value.strip())
        if isinstance(value, numbers.Real) and not math.isfinite(value):
            return False
        if self.low is not None and not (
            value >= self.low if self.low_inclusive else value > self.low
        ):
            return False
        return self.high is None or (
            value <= self.high if self.high_inclusive else value < self.high
        )

    def hint(self, value: Any) -> str:
        """`` (did you mean 'relu'?)`` for a near miss of a word, else nothing."""
        if self.choices and isinstance(value, str):
            return did_you_mean(value, self.choices)
        return ""


def at_least(low: float, high: float | None = None) -> Allowed:
    return Allowed(low=low, high=high)


def greater_than(low: float, high: float | None = None) -> Allowed:
    return Allowed(low=low, high=high, low_inclusive=False)


def between(low: float, high: float) -> Allowed:
    return Allowed(low=low, high=high)


def one_of(*choices: str) -> Allowed:
    return Allowed(choices=choices)


def non_empty() -> Allowed:
    return Allowed(non_empty=True)


def did_you_mean(name: str, known: Iterable[str], quote: Callable[[str], str] = repr) -> str:
    """`` (did you mean 'learning_rate'?)`` when ``name`` is a near miss of a known name."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {quote(close[0])}?)" if close else ""


# --------------------------------------------------------------------------- fields


def setting(default: Any, help: str, allowed: Allowed | None = None) -> Any:
    """A documented field: its default, its help text and the values it allows."""
    metadata = {"help": help, "allowed": allowed}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def checked(default: Any, allowed: Allowed) -> Any:
    """A field documented elsewhere (a ``#:`` comment) whose values are checked."""
    return dataclasses.field(default=default, metadata={"allowed": allowed})


def held(cls: type, help: str) -> Any:
    """A field holding a settings object of class ``cls`` (made with its defaults unless
    given) whose settings are named flat, as the holder's own (see the module's docstring)."""
    return dataclasses.field(default_factory=cls, metadata={"help": help, "held": True})


def allowed_values(f: dataclasses.Field) -> Allowed | None:
    return f.metadata.get("allowed")


def _is_held(f: dataclasses.Field) -> bool:
    return bool(f.metadata.get("held"))


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


class FlatSetting(NamedTuple):
    """One setting as a person names it: ``learning_rate``, wherever it is held."""

    name: str
    #: The held fields from the outer class to the one that declares the setting.
    path: tuple[str, ...]
    #: The dataclass that declares it, and its field there.
    owner: type
    field: dataclasses.Field

    @property
    def type(self) -> Any:
        return _field_types(self.owner)[self.name]

    @property
    def default(self) -> Any:
        f = self.field
        return f.default if f.default is not dataclasses.MISSING else f.default_factory()


@functools.cache
def _flat_settings(cls: type) -> dict[str, FlatSetting]:
    """Every setting of ``cls`` by its flat name, held ones in place of their holding
    field, in declaration order. Two settings of one name are a programming error."""
    found: dict[str, FlatSetting] = {}
    for f in dataclasses.fields(cls):
        if _is_held(f):
            inner = _flat_settings(_field_types(cls)[f.name]).values()
            items = [item._replace(path=(f.name, *item.path)) for item in inner]
        else:
            items = [FlatSetting(f.name, (), cls, f)]
        for item in items:
            if item.name in found:
                raise TypeError(f"{cls.__name__} has two settings named {item.name!r}")
            found[item.name] = item
    return found


def setting_names(cls: type) -> list[str]:
    """The names of the settings of ``cls``, held ones included, in declaration order:
    the names of its flags (``_`` as ``-``), TOML keys and README rows."""
    return list(_flat_settings(cls))


def _value(obj: Any, item: FlatSetting) -> Any:
    """The value of setting ``item`` in ``obj``, through the held objects on its path."""
    owner = obj
    for part in item.path:
        owner = getattr(owner, part)
    return getattr(owner, item.name)


def flat_values(obj: Any) -> dict[str, Any]:
    """``{name: value}`` of every setting of ``obj`` by its flat name (held ones included)."""
    return {item.name: _value(obj, item) for item in _flat_settings(type(obj)).values()}


def _nest(cls: type, values: Mapping[str, Any], current: Any = None) -> dict[str, Any]:
    """Keyword arguments of ``cls`` from ``values`` named flat: each held setting given
    goes into its held object, made from the one given by its field's name, else from
    ``current``'s (a replace), else from the held class's defaults."""
    kwargs = dict(values)
    types_ = _field_types(cls)
    for f in dataclasses.fields(cls):
        if not _is_held(f):
            continue
        inner = types_[f.name]
        mine = set(_flat_settings(inner))
        given = {name: kwargs.pop(name) for name in list(kwargs) if name in mine}
        if not given:
            continue
        base = kwargs.get(f.name, getattr(current, f.name, None))
        if isinstance(base, inner):
            kwargs[f.name] = dataclasses.replace(base, **_nest(inner, given, base))
        elif base is None:
            kwargs[f.name] = inner(**_nest(inner, given))
        # else: a wrong object where the held one goes; the class's check names it
    return kwargs


def flat_settings(cls: type[T]) -> type[T]:
    """Class decorator, above ``@dataclass``, for a settings class with :func:`held` fields:
    its held settings are also keyword arguments and attributes of its own, as they were
    before they were held (``LearnerSettings(learning_rate=1e-3).learning_rate``, and so
    ``dataclasses.replace(settings, seed=1)`` too)."""
    made = cls.__init__

    @functools.wraps(made)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **_nest(cls, kwargs))

    def __getattr__(self: Any, name: str) -> Any:
        # Called only for a name the object lacks: a held setting's, or a true miss.
        item = _flat_settings(type(self)).get(name)
        if item is None or not item.path:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return _value(self, item)

    cls.__init__ = __init__  # type: ignore[misc]
    cls.__getattr__ = __getattr__  # type: ignore[attr-defined]
    return cls


def _base_type(tp: Any) -> tuple[Any, bool]:
    """``int | None`` -> ``(int, True)``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], len(args) != len(typing.get_args(tp))
    return tp, False


def _type_name(base: Any) -> str:
    return {int: "int", float: "float", str: "str", Path: "a path"}.get(
        base, getattr(base, "__name__", str(base))
    )


# --------------------------------------------------------------------------- checks


def _rule_text(allowed: Allowed, optional: bool, is_list: bool) -> str:
    text = allowed.describe()
    if is_list:
        text = f"a list of {'words' if allowed.choices else 'numbers'} each {text}"
    return f"{text} (or none)" if optional else text


def _out_of_range(name: str, value: Any, allowed: Allowed, optional: bool, is_list: bool) -> str:
    hint = allowed.hint(value)
    shown = list(value) if is_list else value
    return f"setting {name!r} must be {_rule_text(allowed, optional, is_list)}, got {shown!r}{hint}"


def _check_scalar(name: str, base: Any, value: Any) -> None:
    """Refuse a value of the wrong type (``True`` is not a number, ``2.5`` not an int)."""
    if base is bool:
        if not isinstance(value, bool):
            raise SettingsError(f"setting {name!r} must be true or false, got {value!r}")
    elif base is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise SettingsError(f"setting {name!r} must be int, got {value!r}")
    elif base is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise SettingsError(f"setting {name!r} must be float, got {value!r}")
    elif base is str:
        if not isinstance(value, str):
            raise SettingsError(f"setting {name!r} must be str, got {value!r}")
    elif base is Path:
        if not isinstance(value, (str, os.PathLike)):
            raise SettingsError(f"setting {name!r} must be a path, got {value!r}")
    elif isinstance(base, type) and not isinstance(value, base):
        raise SettingsError(f"setting {name!r} must be {_type_name(base)}, got {value!r}")


def _is_empty(name: str, optional: bool, value: Any) -> bool:
    """``True`` for ``None`` where the setting is optional; :class:`SettingsError` for
    ``None`` where it is not."""
    if value is not None:
        return False
    if optional:
        return True
    raise SettingsError(f"setting {name!r} cannot be empty")


def _list_item_type(name: str, base: Any, value: Any) -> Any:
    """The item type of a list setting (``tuple[int, ...]``: ``int``) once ``value`` is
    found to be a list; ``None`` for a setting that is not a list."""
    if typing.get_origin(base) is not tuple:
        return None
    if not isinstance(value, (list, tuple)):
        raise SettingsError(f"setting {name!r} must be a list, got {value!r}")
    (item,) = set(typing.get_args(base)) - {Ellipsis}
    return item


def check_value(name: str, tp: Any, allowed: Allowed | None, value: Any) -> Any:
    """``value`` if setting ``name`` (of type ``tp``) allows it, else :class:`SettingsError`
    naming the setting, the value and what is allowed. A list becomes a tuple."""
    base, optional = _base_type(tp)
    if _is_empty(name, optional, value):
        return None
    item = _list_item_type(name, base, value)
    if item is not None:
        value = tuple(value)
        for v in value:
            _check_scalar(name, item, v)
        if allowed is not None and not all(allowed.admits(v) for v in value):
            raise SettingsError(_out_of_range(name, value, allowed, optional, is_list=True))
        return value
    _check_scalar(name, base, value)
    if allowed is not None and not allowed.admits(value):
        raise SettingsError(_out_of_range(name, value, allowed, optional, is_list=False))
    return value


def check_settings(obj: Any) -> None:
    """Check every field of the settings dataclass ``obj`` against its type and allowed
    values (call it from ``__post_init__``): keyword arguments are held to the same
    ranges as flags and files. Lists are stored as tuples (the dataclass stays hashable)."""
    types_ = _field_types(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        ok = check_value(f.name, types_[f.name], allowed_values(f), value)
        if ok is not value:
            object.__setattr__(obj, f.name, ok)


# --------------------------------------------------------------------------- building


def _convert(name: str, tp: Any, value: Any) -> Any:
    """A value from a TOML file or a dict, converted to the field's type where it is
    unambiguous (``"0.01"`` -> 0.01, ``3.0`` -> 3); the range is checked by the class."""
    base, optional = _base_type(tp)
    if optional and isinstance(value, str) and value.lower() == NONE:
        value = None
    if _is_empty(name, optional, value):
        return None
    item = _list_item_type(name, base, value)
    if item is not None:
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
        except (TypeError, ValueError, OverflowError):
            raise SettingsError(
                f"setting {name!r} must be {base.__name__}, got {value!r}"
            ) from None
    return value


def _unknown(raw_name: str, cls: type, known: Iterable[str]) -> SettingsError:
    known = sorted(known)
    hint = did_you_mean(raw_name.replace("-", "_"), known)
    return SettingsError(
        f"unknown setting {raw_name!r} for {cls.__name__}{hint}; known: {', '.join(known)}"
    )


def build_settings(cls: type[T], values: Mapping[str, Any]) -> T:
    """An instance of ``cls`` from ``values`` named flat (with - or _), each converted and
    checked; held settings go into their held objects."""
    known = _flat_settings(cls)
    converted = {}
    for raw_name, value in values.items():
        name = raw_name.replace("-", "_")
        if name not in known:
            raise _unknown(raw_name, cls, known)
        converted[name] = _convert(name, known[name].type, value)
    return cls(**_nest(cls, converted))


def replace_settings(obj: T, **overrides: Any) -> T:
    """``dataclasses.replace`` that takes held settings by their flat names and refuses a
    misspelled keyword with a did-you-mean (a :class:`SettingsError`, not a
    ``TypeError``); values are checked by the class."""
    known = _flat_settings(type(obj))
    holders = {f.name for f in dataclasses.fields(obj) if _is_held(f)}  # type: ignore[arg-type]
    for name in overrides:
        if name not in known and name not in holders:
            raise _unknown(name, type(obj), known)
    return dataclasses.replace(obj, **_nest(type(obj), overrides, obj))  # type: ignore[type-var]


def read_toml(
    path: Path,
    section: str | None = None,
    tables: Sequence[str] = CONFIG_TABLES,
    flat_table: str = FLAT_TABLE,
) -> dict[str, Any]:
    """The settings of a TOML file for ``[section]``: that table, or (for ``flat_table``)
    the keys of a file without tables. A table not in ``tables``, or keys outside any
    table in a file that has tables, are refused: a misspelled ``[learnr]`` must not be
    ignored in silence."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise SettingsError(f"settings file not found: {path}") from None
    except IsADirectoryError:
        raise SettingsError(f"settings file {path} is a folder, not a file") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"settings file {path} is not valid TOML: {exc}") from None
    found = [k for k, v in data.items() if isinstance(v, dict)]
    flat = [k for k, v in data.items() if not isinstance(v, dict)]
    if section is None:
        return {k: data[k] for k in flat}
    known = ", ".join(f"[{t}]" for t in tables)
    for name in found:
        if name not in tables:
            hint = did_you_mean(name, tables, quote=lambda t: f"[{t}]")
            raise SettingsError(
                f"settings file {path}: unknown table [{name}]{hint}; known tables: {known}"
            )
    if flat and found:
        raise SettingsError(
            f"settings file {path}: {', '.join(flat)} outside any table while the file has "
            f"tables: move {'it' if len(flat) == 1 else 'them'} into one of {known}"
        )
    if section in found:
        return dict(data[section])
    return {k: data[k] for k in flat} if section == flat_table else {}


# --------------------------------------------------------------------------- flags


def _flag_type(convert: Callable[[str], Any], allowed: Allowed | None, optional: bool) -> Any:
    """A flag's ``type=``: converts the text and checks it against the setting's allowed
    values, so argparse refuses it as a usage error naming the flag. An optional setting
    also takes ``none`` (kept as the string: ``None`` means not given)."""

    def parse(text: str) -> Any:
        if optional and text.lower() == NONE:
            return NONE
        value = convert(text)
        if allowed is not None and not allowed.admits(value):
            rule = f"{allowed.describe()} (or none)" if optional else allowed.describe()
            raise argparse.ArgumentTypeError(f"must be {rule}, got {value!r}{allowed.hint(value)}")
        return value

    # argparse names the type in "invalid int value": keep the converter's name.
    parse.__name__ = getattr(convert, "__name__", "value")
    return parse


def flag_type(cls: type, name: str) -> Any:
    """The ``type=`` of a hand-written flag for setting ``name`` of ``cls``: converted and
    checked against the setting's allowed values at parse time."""
    item = _flat_settings(cls)[name]
    base, optional = _base_type(item.type)
    convert = base if base in (int, float, str, Path) else str
    return _flag_type(convert, allowed_values(item.field), optional)


def shown_default(value: Any) -> str:
    """A default as ``--help`` shows it, the way the flag is typed: ``64 64`` for a list
    (``--hidden-sizes 64 64``), ``5`` for 5.0, ``on``/``off`` for a switch, ``none``."""
    if value is None:
        return NONE
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (tuple, list)):
        return " ".join(shown_default(v) for v in value)
    if isinstance(value, float):
        return _number(value)
    return str(value)


#: A help text that says its default itself (``(default: from the games' files)``, ``the
#: default is the example bot``): not said twice.
_SAYS_DEFAULT = re.compile(r"\bdefault\b")
#: Allowed words longer than this (all together) are listed in the help text, not in the
#: usage line, which they would stretch past any terminal.
_CHOICES_IN_USAGE = 30
#: ``(none: no limit)`` in a setting's help: what leaving it empty means.
_NONE_MEANS = re.compile(r"\(none: ([^)]*)\)")


def flag_help(help_text: str, default: Any) -> str:
    """``help_text`` with its default said once, as ``(default: X)``. For a setting empty
    by default, what empty means is the default (``(none: no limit)`` becomes
    ``(default: no limit)``); a text that already says its default is kept."""
    if _SAYS_DEFAULT.search(help_text):
        return help_text
    if default is None:
        means = _NONE_MEANS.search(help_text)
        if means:
            return f"{help_text[: means.start()]}(default: {means[1]}){help_text[means.end() :]}"
    return f"{help_text} (default: {shown_default(default)})"


def _flag_options(item: FlatSetting, default: Any) -> dict[str, Any]:
    """``add_argument``'s keywords for one setting: unset, a flag stays ``None`` (so the
    help says the default itself). Words allowed are listed as argparse lists choices
    (``{tanh,relu}``), or in the help text if many; the type function still refuses
    others with a did-you-mean. ``default``: the one the command uses."""
    base, optional = _base_type(item.type)
    allowed = allowed_values(item.field)
    help_text = flag_help(item.field.metadata.get("help", ""), default)
    options: dict[str, Any] = {"dest": item.name, "default": None}
    if allowed is not None and allowed.choices:
        listed = ",".join(allowed.choices)
        if len(listed) <= _CHOICES_IN_USAGE:
            options["metavar"] = "{" + listed + "}"
        else:
            options["metavar"] = item.name.upper()
            help_text = f"{help_text}; one of: {', '.join(allowed.choices)}"
    options["help"] = help_text.replace("%", "%%")
    if base is bool:
        options["action"] = argparse.BooleanOptionalAction
    elif typing.get_origin(base) is tuple:
        options["nargs"] = "+"
        options["metavar"] = "N"
        options["type"] = _flag_type(typing.get_args(base)[0], allowed, optional=False)
    else:
        convert = base if base in (int, float, str, Path) else str
        options["type"] = _flag_type(convert, allowed, optional)
    return options


def add_settings_arguments(
    parser: argparse.ArgumentParser,
    cls: type,
    exclude: tuple[str, ...] = (),
    title: str | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Any:
    """A ``--setting-name`` flag per setting of ``cls`` (held ones included); unset flags
    stay ``None`` (not given). Returns their argument group (``title``: its heading in
    ``--help``). ``defaults``: where the command's own differ from the class's, so that
    ``--help`` shows the ones it uses."""
    group = parser.add_argument_group(title or f"{cls.__name__} (also from --config FILE)")
    for item in _flat_settings(cls).values():
        if item.name not in exclude:
            default = (defaults or {}).get(item.name, item.default)
            group.add_argument("--" + item.name.replace("_", "-"), **_flag_options(item, default))
    return group


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
    for name in _flat_settings(cls):
        given = getattr(args, name, None)
        if given is not None:
            values[name] = given
    return build_settings(cls, values)


# --------------------------------------------------------------------------- docs


def documented_settings(cls: type) -> list[tuple[str, Any, str]]:
    """``(name, default, help)`` of every setting of ``cls`` (held ones included, flat):
    the README's rows, and what tests check each has."""
    return [
        (item.name, item.default, item.field.metadata.get("help", ""))
        for item in _flat_settings(cls).values()
    ]


def allowed_text(cls: type, name: str) -> str:
    """What setting ``name`` of ``cls`` allows, as errors say it (``at least 1 (or none)``)."""
    item = _flat_settings(cls)[name]
    base, optional = _base_type(item.type)
    allowed = allowed_values(item.field)
    if allowed is None:
        return "true or false" if base is bool else _type_name(base)
    return _rule_text(allowed, optional, typing.get_origin(base) is tuple)


def markdown_table(cls: type, exclude: tuple[str, ...] = ()) -> str:
    """The settings of ``cls`` but ``exclude`` as a Markdown table (the README's, kept
    equal by a test)."""
    rows = ["| setting | default | allowed | |", "| --- | --- | --- | --- |"]
    for name, default, help_text in documented_settings(cls):
        if name in exclude:
            continue
        if default is None:
            shown = "none"
        elif isinstance(default, tuple):
            shown = ", ".join(map(str, default))
        else:
            shown = str(default)
        allowed = allowed_text(cls, name)
        rows.append(f"| `{name.replace('_', '-')}` | {shown} | {allowed} | {help_text} |")
    return "\n".join(rows)
