"""Made-up packages for the devtools tests: files written from a ``{relative path: text}`` mapping."""

from __future__ import annotations

from pathlib import Path


def write_package(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` under ``root`` (directories made as needed) and return ``root``."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root
