"""The reverse direction: a policy written for a text-in/text-out API (GEM, SkyRL, verifiers'
chat loop) benchmarked by toolgym bench, with the lines docs/integrations.md shows."""

from __future__ import annotations

import json

from tests.integrations.integration_scripts import reply_for, scripted_actions
from toolgym.benchmarks import BenchConfig, run_benchmark
from toolgym.benchmarks.agents import Agent


class TextPolicyAgent(Agent):  # the docs' lines: any text-in, text-out policy as a toolgym agent
    name = "text-policy"

    def __init__(self, policy):
        self.policy = policy  # policy(messages: list[dict]) -> str, e.g. an OpenAI client call

    def act(self, slots):
        return [self.policy([dict(m) for m in slot.observation]) for slot in slots]


def test_a_text_policy_runs_in_toolgym_bench(tmp_path, bench_returns):
    import gymnasium as gym

    env = gym.make("ToolMath-v0")
    actions = {seed: scripted_actions("ToolMath-v0", seed) for seed in range(3)}
    by_task = {env.reset(seed=seed)[0][1]["content"]: actions[seed] for seed in actions}
    run_benchmark(BenchConfig(envs=["ToolMath-v0"], n=3, out=str(tmp_path / "out"), progress=False, reports=False),
                  agent=TextPolicyAgent(lambda messages: reply_for(by_task, messages)))
    records = [json.loads(line) for line in (tmp_path / "out" / "episodes.jsonl").read_text().splitlines()]
    expected = bench_returns("ToolMath-v0", actions)
    assert {r["index"]: r["return"] for r in records} == expected
    assert all(r["success"] == 1.0 and r["status"] == "terminated" for r in records)
