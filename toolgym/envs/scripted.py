"""Scripted agents, the envs' own: the oracle, a naive single-search agent and a no-search agent.

They calibrate rewards and benchmarks (the oracle must score the maximum; an agent that never
searches must score near 0), write the warm-start trajectories of the trainer, and drive the tests.
Each has ``act(env, observation) -> str``: the unwrapped env and the last observation in, the next
action text out (written with ``env.call``, so in the env's own action format).

- ``oracle``: any ``ToolEnv`` that implements ``oracle_action``.
- ``no-search``: any env with an ``answer`` tool.
- ``naive-search``: the search tasks (a ``search`` tool listing ``Doc N (Title: "...")`` hits and an
  ``answer`` tool; the question is ``env.example.question``), as MultiHopQA and its datasets.

They sit beside ``ToolEnv`` rather than in one task family because the trainer, the benchmark and
``toolgym episodes`` all use them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from toolgym.envs.record import EpisodeLog


class OracleAgent:
    """Does what the env's ``oracle_action`` says: works on every toolgym env that has an oracle."""

    name = "oracle"

    def act(self, env, observation: Sequence[dict]) -> str:
        return env.oracle_action()


_DOC_TITLE = re.compile(r'Doc \d+ \(Title: "([^"]*)"\)')


class NaiveSearchAgent:
    """Searches once with the question text, then answers with the title of the first passage
    that the question does not already name: a one-hop guess, what naive RAG does without a model."""

    name = "naive-search"

    def act(self, env, observation: Sequence[dict]) -> str:
        question = env.example.question
        if env.turn == 0:
            return env.call("search", query=question)
        last = observation[-1]["content"] if observation else ""
        for title in _DOC_TITLE.findall(last):
            if title.lower() not in question.lower():
                return env.call("answer", answer=title)
        return env.call("answer", answer="unknown")


class NoSearchAgent:
    """Answers at once without searching: the floor every real agent must beat."""

    name = "no-search"

    def act(self, env, observation: Sequence[dict]) -> str:
        return env.call("answer", answer="unknown")


SCRIPTED_AGENTS = {agent.name: agent for agent in (OracleAgent, NaiveSearchAgent, NoSearchAgent)}


def run_episode(env, agent, *, seed: int | None = None, options: dict | None = None,
                log: EpisodeLog | None = None) -> dict:
    """Play one episode of ``agent`` in ``env``; return the final info with the episode return.
    ``log``: where each step is written down (for an episode record)."""
    observation, info = env.reset(seed=seed, options=options)
    base = env.unwrapped
    total, terminated, truncated = 0.0, False, False
    while not (terminated or truncated):
        action = agent.act(base, observation)
        before = observation
        observation, reward, terminated, truncated, info = env.step(action)
        if log is not None:
            log.step(env, before, action, observation, reward, info)
        total += reward
    return {**info, "return": total, "terminated": terminated, "truncated": truncated}
