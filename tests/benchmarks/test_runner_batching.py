"""The runner steps the envs of a turn together: one search call per turn for the whole batch."""

from __future__ import annotations

import gymnasium as gym

from toolgym.benchmarks import BenchConfig, run_benchmark
from toolgym.envs.retrieval import BM25Retriever

SMALL = {"world": {"n_people": 60}}
SEARCH = BM25Retriever.search


def _searches(monkeypatch, tmp_path, batch_size):
    gym.make("MultiHopQA-v0", **SMALL).close()  # builds (and caches) the world before counting
    batches = []

    def counting(self, queries, k):
        batches.append(len(queries))
        return SEARCH(self, queries, k)

    monkeypatch.setattr(BM25Retriever, "search", counting)
    results = run_benchmark(BenchConfig(agent="oracle", n=8, batch_size=batch_size, env_kwargs=SMALL,
                                        out=str(tmp_path / f"b{batch_size}"), progress=False, reports=False))
    assert results["cells"]["oracle"]["MultiHopQA-v0"]["metrics"]["em"]["mean"] == 1.0
    return batches


def test_a_turn_searches_once_for_the_whole_batch(monkeypatch, tmp_path):
    together = _searches(monkeypatch, tmp_path, batch_size=8)
    one_by_one = _searches(monkeypatch, tmp_path, batch_size=1)
    assert sum(together) == sum(one_by_one) == len(one_by_one)  # the same searches...
    assert len(together) <= 4 and together[0] == 8  # ...in one call per turn (2-4 hops)
