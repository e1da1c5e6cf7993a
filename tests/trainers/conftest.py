"""Trainer test fixtures: a tiny Qwen2-style model and tokenizer built offline once per session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")
# --import-mode=importlib puts no test directory on sys.path; the tests import the fakes by name.
sys.path.insert(0, str(Path(__file__).parent))

from trainer_fakes import corpus  # noqa: E402


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A saved tiny model (hidden 64, 2 layers) + tokenizer; loadable by path like a hub model."""
    from toolgym.trainers.tiny_model import TEST_SIZE, build_model, build_tokenizer, save_tiny

    tok = build_tokenizer(corpus(), vocab_size=400)
    model = build_model(tok, **TEST_SIZE, seed=0)
    return save_tiny(model, tok, tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def tiny(tiny_dir):
    """A fresh (model, tokenizer) pair loaded from the session's saved tiny model."""
    from toolgym.trainers.tiny_model import load_tiny

    return load_tiny(tiny_dir)
