"""Integration test fixtures: toolgym's own benchmark runner as the reference for rewards."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def bench_returns(tmp_path):
    """``bench_returns(env_id, {seed: actions})``: the returns toolgym's own benchmark runner gives
    to an agent replaying those actions (episode i runs seed i)."""
    from toolgym.benchmarks.agents import Agent
    from toolgym.benchmarks.runner import BenchConfig, run_benchmark

    def run(env_id: str, actions_by_seed: dict[int, list[str]]) -> dict[int, float]:
        class Replay(Agent):
            name = "replay"

            def act(self, slots):
                return [actions_by_seed[s.index][sum(m["role"] == "assistant" for m in s.observation)]
                        for s in slots]

        n = max(actions_by_seed) + 1
        out = tmp_path / f"bench-{env_id}"
        run_benchmark(BenchConfig(envs=[env_id], n=n, out=str(out), progress=False, reports=False, seed=0,
                                  time_limit=None), agent=Replay())
        records = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
        return {r["index"]: r["return"] for r in records if r["index"] in actions_by_seed}

    return run
