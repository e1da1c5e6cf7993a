"""Error messages that say what was wrong, the value seen, and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


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


def did_you_mean(name: object, choices: Iterable[str]) -> str:
    """``" Did you mean 'hermes'?"`` for the closest valid name, or ``""`` when nothing is close."""
    hint = suggest(str(name), choices)
    return f" Did you mean {hint!r}?" if hint else ""


def unknown_name_error(kind: str, value: object, choices: Iterable[str]) -> ValueError:
    """``ValueError("Unknown format 'herms'. Did you mean 'hermes'? Valid formats: hermes, tags.")``."""
    choices = sorted(choices)
    return ValueError(f"Unknown {kind} {value!r}.{did_you_mean(value, choices)} Valid choices: {', '.join(choices)}.")


def check_non_negative(**values: float | int | None) -> None:
    """Raise a ValueError naming the first budget that is negative (None means unlimited)."""
    for name, value in values.items():
        if value is not None and value < 0:
            raise ValueError(f"{name} must be >= 0 (or None for no limit), got {value!r}.")
