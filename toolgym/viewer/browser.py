"""Headless Chromium on a viewer page: the DOM after its script ran, or a screenshot. Used by the
tests, ``perf/view_scale.py`` and README's screenshot, so all three see the page as a person does.

Chromium is a system package (Debian: ``apt-get install chromium``), not a Python dependency:
:func:`find_chromium` returns None where it is absent and callers skip with that reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
MISSING = "no Chromium found (looked for " + ", ".join(NAMES) + " on PATH and $CHROMIUM): apt-get install chromium"
# Quiet and offline: no first-run, sync, component or background network traffic.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions")


def find_chromium() -> str | None:
    """The Chromium executable: ``$CHROMIUM``, else the first of :data:`NAMES` on PATH; None if none."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit if shutil.which(explicit) else None
    return next((found for name in NAMES if (found := shutil.which(name))), None)


def _run(page: str | Path, fragment: str, extra: list[str], timeout: float) -> subprocess.CompletedProcess:
    exe = find_chromium()
    if exe is None:
        raise FileNotFoundError(MISSING)
    url = Path(page).resolve().as_uri() + (f"#{fragment.lstrip('#')}" if fragment else "")
    with tempfile.TemporaryDirectory(prefix="toolgym-chromium-") as profile:
        return subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", *extra, url], capture_output=True,
                              text=True, timeout=timeout, check=True)


def dump_dom(page: str | Path, fragment: str = "", *, timeout: float = 120.0) -> str:
    """The page's DOM after its scripts ran (``fragment``: the URL hash, e.g. ``q=paris&env=X``)."""
    return _run(page, fragment, ["--dump-dom"], timeout).stdout


def screenshot(page: str | Path, png: str | Path, fragment: str = "", *, size: tuple[int, int] = (1400, 900),
               timeout: float = 120.0) -> Path:
    """A PNG of the page at ``size`` (width, height)."""
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    _run(page, fragment, [f"--screenshot={png}", f"--window-size={size[0]},{size[1]}", "--hide-scrollbars"], timeout)
    return png
