"""Fixtures shared by every test: where the real data samples are, and an isolated cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """``$TOOLGYM_TEST_DATA`` or ``../shared/data`` beside the checkout, if it exists."""
    candidate = Path(os.environ.get("TOOLGYM_TEST_DATA", _REPO.parent / "shared" / "data"))
    return candidate if candidate.is_dir() else None


@pytest.fixture
def shared_data() -> Path:
    """The real dev samples; the test is skipped with the reason when they are absent."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("real data samples not found: set TOOLGYM_TEST_DATA or put shared/data beside the repo")
    return path


@pytest.fixture
def official_eval(shared_data) -> Path:
    """The official evaluation scripts beside the samples (``shared/eval``); skipped when absent."""
    path = shared_data.parent / "eval"
    if not path.is_dir():
        pytest.skip(f"official evaluation scripts not found at {path}: put shared/eval beside the repo")
    return path


@pytest.fixture(scope="session")
def shared_data_root() -> Path | None:
    """The real dev samples for session-scoped fixtures, or None when absent (they skip themselves)."""
    return shared_data_dir()


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Index caches go to a temporary directory, never to the user's ~/.cache."""
    os.environ["TOOLGYM_CACHE"] = str(tmp_path_factory.mktemp("toolgym-cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    yield
