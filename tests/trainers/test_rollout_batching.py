"""The rollout engine steps the envs of a turn together: one search call per turn for the batch."""

from __future__ import annotations

import gymnasium as gym

from toolgym.envs.retrieval import BM25Retriever
from toolgym.generation import GenerationBackend
from toolgym.trainers.rollout import Generation, RolloutEngine

SEARCH = BM25Retriever.search


class OracleBackend(GenerationBackend):
    """Each prompt gets the oracle's action of the env whose question it holds."""

    def __init__(self, tok, envs):
        self.tok, self.envs = tok, envs

    def generate(self, prompts, max_new_tokens):
        out = []
        for prompt in prompts:
            text = self.tok.decode(prompt)
            env = next(e.unwrapped for e in self.envs if f"Question: {e.unwrapped.example.question}" in text)
            ids = self.tok(env.oracle_action(), add_special_tokens=False)["input_ids"] + [self.tok.eos_token_id]
            out.append(Generation(ids, [-0.5] * len(ids)))
        return out


def test_a_turn_searches_once_for_the_whole_batch(tiny, monkeypatch):
    _, tok = tiny
    envs = [gym.make("MultiHopQA-v0", world={"n_people": 60}) for _ in range(6)]
    batches = []

    def counting(self, queries, k):
        batches.append(len(queries))
        return SEARCH(self, queries, k)

    monkeypatch.setattr(BM25Retriever, "search", counting)
    engine = RolloutEngine(envs, tok, OracleBackend(tok, envs), max_completion_tokens=20000, max_turn_tokens=1000)
    episodes = engine.run(seeds=[0, 1, 2, 3, 4, 5])
    assert all(ep.terminated and ep.info["em"] == 1.0 for ep in episodes)
    searches = sum(ep.info["tool_calls"] for ep in episodes)
    assert sum(batches) == searches and batches[0] == 6  # every search, in one call per turn
    assert len(batches) == max(len(ep.steps) for ep in episodes) - 1  # the last turn answers
