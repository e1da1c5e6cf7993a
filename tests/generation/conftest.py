"""Generation-layer fixtures: the tiny tokenizer trained on env text, built once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")
# --import-mode=importlib puts no test directory on sys.path; the tests import the helpers by name.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def base_tokenizer():
    """The tiny byte-level BPE (Qwen2.5 template) trained on env text, built once."""
    import gymnasium as gym

    import toolgym  # noqa: F401
    from toolgym.trainers.tiny_model import build_tokenizer

    env = gym.make("MultiHopQA-v0", world={"n_people": 60}).unwrapped
    texts = [p.text for p in env.passages] + [e.question for e in env.examples]
    return build_tokenizer(texts, vocab_size=500)


