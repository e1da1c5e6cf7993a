"""Lazy imports of the heavy training dependencies, with an install hint naming the extra."""

from __future__ import annotations

import importlib
import warnings


def require(module: str, extra: str = "train"):
    """Import ``module`` or raise an ImportError that says which toolgym extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"{module} is needed here but is not installed ({e}). Install it with: pip install 'toolgym[{extra}]'"
        ) from e


def silence_checkpointing_aliases() -> None:
    """Hide the FutureWarnings that TRL 1.16's own calls of transformers 5's deprecated
    ``gradient_checkpointing*`` aliases (of ``activation_checkpointing*``) raise, eight a run, which
    no user setting avoids. Only those: the filter matches their message and module."""
    warnings.filterwarnings("ignore", message=r"`(is_)?gradient_checkpointing(_enable|_disable)?` is deprecated",
                            category=FutureWarning, module=r"transformers\.")
