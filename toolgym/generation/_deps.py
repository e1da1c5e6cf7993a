"""Lazy imports of the heavy training dependencies, with an install hint naming the extra."""

from __future__ import annotations

import importlib


def require(module: str, extra: str = "train"):
    """Import ``module`` or raise an ImportError that says which toolgym extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"{module} is needed here but is not installed ({e}). Install it with: pip install 'toolgym[{extra}]'"
        ) from e
