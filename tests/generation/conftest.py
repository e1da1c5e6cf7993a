"""Generation tests need the 'train' extra; the tiny tokenizer fixture is in tests/conftest.py."""

import pytest

pytest.importorskip("trl")
