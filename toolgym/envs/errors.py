"""Error messages that say what was wrong, the value seen, and how to fix it."""

from __future__ import annotations

import difflib
import functools
import inspect
import numbers
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def suggest(name: str, choices: Iterable[str]) -> str | None:
    """The closest valid name to ``name``, case-insensitively, or None when nothing is close.

    A difflib ratio of 0.6 keeps typos (``MultiHopQA-v1``, ``herms``) and drops unrelated names
    that share only a suffix (``NoSuch-v0`` is not ``NQ-v0``). Failing that, the one choice that
    starts the name or that the name starts (``rnk`` -> ``r``, ``sql`` -> ``SQLQuery-v0``).
    """
    lowered = {str(c).lower(): str(c) for c in choices}
    key = str(name).lower()
    match = difflib.get_close_matches(key, list(lowered), n=1, cutoff=0.6)
    if match:
        return lowered[match[0]]
    prefixes = [c for c in lowered if key and (key.startswith(c) or c.startswith(key))]
    return lowered[prefixes[0]] if len(prefixes) == 1 else None


def did_you_mean(name: object, choices: Iterable[str], aliases: Mapping[str, str] | None = None) -> str:
    """``" Did you mean 'hermes'?"`` for the closest valid name, or ``""`` when nothing is close.

    ``aliases`` (alias -> valid name) are matched too and suggested as the name they stand for
    (``"dve"`` -> ``'validation'`` with ``{"dev": "validation"}``).
    """
    aliases = aliases or {}
    hint = suggest(str(name), [*choices, *aliases])
    hint = aliases.get(hint, hint)
    return f" Did you mean {hint!r}?" if hint else ""


def unknown_name_error(kind: str, value: object, choices: Iterable[str]) -> ValueError:
    """``ValueError("Unknown format 'herms'. Did you mean 'hermes'? Valid formats: hermes, tags.")``."""
    choices = sorted(choices)
    return ValueError(f"Unknown {kind} {value!r}.{did_you_mean(value, choices)} Valid choices: {', '.join(choices)}.")


def check_choice(name: str, value: object, choices: Iterable[str]) -> None:
    """Raise ``ValueError("credit must be one of outcome, step, gigpo; got 'stp'. Did you mean 'step'?")``
    when ``value`` is not one of ``choices``: the one message for a setting that takes a name."""
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}."
                         f"{did_you_mean(value, choices)}")


def check_non_negative(**values: float | int | None) -> None:
    """Raise a ValueError naming the first budget that is negative (None means unlimited)."""
    for name, value in values.items():
        if value is not None and value < 0:
            raise ValueError(f"{name} must be >= 0 (or None for no limit), got {value!r}.")


# What each annotation accepts. bool is an int in Python but not a count or a limit here; numpy's
# integers and floats are numbers.Integral and numbers.Real.
_NUMERIC_KINDS: dict[type, tuple[str, Callable[[Any], bool]]] = {
    bool: ("a boolean (true or false)", lambda v: isinstance(v, bool)),
    int: ("an integer", lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool)),
    float: ("a number", lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool)),
}


@functools.cache
def _numeric_parameters(function: Callable) -> dict[str, tuple[tuple[type, ...], bool, Any]]:
    """name -> (numeric kinds, whether None is allowed, default) of the parameters of ``function``
    annotated with ``int``, ``float`` or ``bool`` (or a union of them, optionally with None)."""
    hints = typing.get_type_hints(function)
    result = {}
    for name, parameter in inspect.signature(function).parameters.items():
        hint = hints.get(name)
        members = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union \
            else (hint,)
        kinds = tuple(m for m in members if m in _NUMERIC_KINDS)
        if kinds and all(m in _NUMERIC_KINDS or m is type(None) for m in members):
            result[name] = (kinds, type(None) in members, parameter.default)
    return result


def check_argument_types(arguments: Mapping[str, Any], *functions: Callable) -> None:
    """Raise a TypeError naming the first numeric or boolean parameter of ``functions`` (by its
    annotation: ``int``, ``float``, ``bool``, optionally ``| None``) whose value in ``arguments``
    has another type, with the value seen and the default. Env constructors call it first, with
    their ``locals()`` and the ``**budgets`` they pass on to ``ToolEnv.__init__``, so
    ``max_turns="abc"`` is neither ``'<' not supported ...`` nor found after a dataset loaded."""
    parameters = {}
    for function in reversed(functions):  # the first function's annotation wins
        parameters.update(_numeric_parameters(function))
    for name, (kinds, optional, default) in parameters.items():
        if name not in arguments:
            continue
        value = arguments[name]
        if (value is None and optional) or any(_NUMERIC_KINDS[kind][1](value) for kind in kinds):
            continue
        expected = " or ".join(_NUMERIC_KINDS[kind][0] for kind in kinds) + (" (or None)" if optional else "")
        example = f" (for example {name}={default!r})" if default not in (inspect.Parameter.empty, None) else ""
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__} {value!r:.60}{example}.")
