"""Benchmark test fixtures: result directories, the real-sample env arguments, a tiny local model."""

from __future__ import annotations

import pytest

REAL_FILES = {
    "hotpotqa": "hotpotqa_dev_distractor.sample.json",
    "2wikimultihopqa": "2wikimultihopqa_dev.sample.json",
    "musique": "musique_ans_dev.sample.jsonl",
}
REAL_IDS = {"hotpotqa": "HotpotQA-v0", "2wikimultihopqa": "TwoWikiMultihopQA-v0", "musique": "MuSiQue-v0"}


@pytest.fixture
def real_env_kwargs(shared_data):
    """``env_kwargs`` pointing the three registered real-data ids at the shared samples, each example
    searching its own paragraphs."""
    kwargs = {"corpus": "example"}
    for dataset, env_id in REAL_IDS.items():
        kwargs[f"{env_id}:data_files"] = str(shared_data / REAL_FILES[dataset])
    return kwargs


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A saved random tiny Qwen2 (hidden 64, 2 layers) with the Qwen2.5 chat template."""
    pytest.importorskip("trl")
    from toolgym.trainers.tiny_model import TEST_SIZE, build_model, build_tokenizer, save_tiny

    texts = ["Question: Where was the director of the film born?", '<tool_call>{"name": "search", '
             '"arguments": {"query": "film"}}</tool_call>', 'Doc 1 (Title: "Film") A film by Ann Lee.'] * 20
    tok = build_tokenizer(texts, vocab_size=400)
    model = build_model(tok, **TEST_SIZE, seed=0)
    return save_tiny(model, tok, tmp_path_factory.mktemp("tiny-bench"))
