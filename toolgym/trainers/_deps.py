"""Lazy imports of the heavy training dependencies (shared with the generation layer)."""

from toolgym.generation._deps import require

__all__ = ["require"]
