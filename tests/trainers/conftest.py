"""Trainer tests need the 'train' extra; the tiny model fixtures are in tests/conftest.py."""

import pytest

pytest.importorskip("trl")
