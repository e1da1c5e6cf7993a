"""The rollout engine steps the envs of a turn together: one search call per turn for the batch."""

from __future__ import annotations

import random
import time

import gymnasium as gym
import pytest

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
    assert all(ep.terminated and ep.info["result"]["extras"]["qa"]["em"] == 1.0 for ep in episodes)
    searches = sum(ep.info["tool_calls"] for ep in episodes)
    assert sum(batches) == searches and batches[0] == 6  # every search, in one call per turn
    assert len(batches) == max(len(ep.steps) for ep in episodes) - 1  # the last turn answers


class MixedBackend(OracleBackend):
    """The oracle's action, or (on a fixed schedule by question and turn) a malformed or odd one."""

    ODD = ["no call at all", '<tool_call>{"name": "serch", "arguments": {"query": "x"}}</tool_call>',
           "<tool_call>{not json</tool_call>"]

    def generate(self, prompts, max_new_tokens):
        out = []
        for prompt, gen in zip(prompts, super().generate(prompts, max_new_tokens)):
            text = self.tok.decode(prompt)
            turn = text.count("<|im_start|>assistant") - 1
            pick = (len(text) + 7 * turn) % 5
            if pick < len(self.ODD):
                ids = self.tok(self.ODD[pick], add_special_tokens=False)["input_ids"] + [self.tok.eos_token_id]
                gen = Generation(ids, [-1.0] * len(ids))
            out.append(gen)
        return out


class StreamingBackend(MixedBackend):
    """The same completions, each returned as it finishes: in a random order, ``pause`` s apart."""

    def __init__(self, tok, envs, seed, pause=0.0):
        super().__init__(tok, envs)
        self.rng, self.pause, self.yielded = random.Random(seed), pause, []

    def generate_as_completed(self, prompts, max_new_tokens):
        gens = self.generate(prompts, max_new_tokens)
        order = list(range(len(gens)))
        self.rng.shuffle(order)
        for k in order:
            time.sleep(self.pause)
            self.yielded.append(time.monotonic())
            yield k, gens[k]


def _episode(ep):
    return (ep.prompt_ids, ep.completion_ids, ep.env_mask, ep.logprobs, ep.steps, ep.info, ep.messages,
            ep.terminated, ep.truncated, ep.budget_truncated)


def test_envs_stepped_as_completions_arrive_give_the_lock_step_episodes(tiny):
    _, tok = tiny
    seeds = [0, 1, 2, 3, 4, 5]

    def rollout(backend_of):
        envs = [gym.make("MultiHopQA-v0", world={"n_people": 60}) for _ in seeds]
        engine = RolloutEngine(envs, tok, backend_of(envs), max_completion_tokens=20000, max_turn_tokens=1000)
        return [_episode(ep) for ep in engine.run(seeds=seeds)]

    want = rollout(lambda envs: MixedBackend(tok, envs))
    assert any(step.parse_error for ep in want for step in ep[4]) and any(ep[7] for ep in want)
    for seed in range(2):
        assert rollout(lambda envs, seed=seed: StreamingBackend(tok, envs, seed)) == want


def test_the_first_searches_run_before_the_last_completion_arrives(tiny, monkeypatch):
    _, tok = tiny
    envs = [gym.make("MultiHopQA-v0", world={"n_people": 60}) for _ in range(4)]
    searched = []

    def timed(self, queries, k):
        searched.append(time.monotonic())
        return SEARCH(self, queries, k)

    monkeypatch.setattr(BM25Retriever, "search", timed)
    backend = StreamingBackend(tok, envs, seed=0, pause=0.05)
    backend.generate = lambda prompts, n: OracleBackend.generate(backend, prompts, n)  # every turn searches first
    engine = RolloutEngine(envs, tok, backend, max_completion_tokens=20000, max_turn_tokens=1000)
    episodes = engine.run(seeds=[0, 1, 2, 3])
    assert all(ep.terminated and ep.info["result"]["success"] for ep in episodes)
    assert searched[0] < backend.yielded[3]  # turn 1: a search ran while the last completion was still out


def test_a_completion_given_twice_is_an_error(tiny):
    _, tok = tiny
    envs = [gym.make("MultiHopQA-v0", world={"n_people": 60}) for _ in range(2)]
    backend = OracleBackend(tok, envs)
    backend.generate_as_completed = lambda prompts, n: iter([(0, g) for g in backend.generate(prompts, n)])
    engine = RolloutEngine(envs, tok, backend, max_completion_tokens=20000, max_turn_tokens=1000)
    with pytest.raises(ValueError, match="gave completion 0 twice or out of range"):
        engine.run(seeds=[0, 1])
