"""Lazy imports of the heavy training dependencies (``require`` lives in ``toolgym.envs.deps``), and the
filter for third-party deprecation noise that no user setting avoids."""

from __future__ import annotations

import warnings

from toolgym.envs.deps import require

__all__ = ["require", "silence_checkpointing_aliases"]


def silence_checkpointing_aliases() -> None:
    """Hide the FutureWarnings that TRL 1.16's own calls of transformers 5's deprecated
    ``gradient_checkpointing*`` aliases (of ``activation_checkpointing*``) raise, eight a run, which
    no user setting avoids. Only those: the filter matches their message and module."""
    warnings.filterwarnings("ignore", message=r"`(is_)?gradient_checkpointing(_enable|_disable)?` is deprecated",
                            category=FutureWarning, module=r"transformers\.")
