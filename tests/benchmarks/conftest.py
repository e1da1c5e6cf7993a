"""Benchmark test fixtures: the real-sample env arguments."""

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

