"""Scripted MultiHopQA agents: the oracle, a naive single-search agent, and a no-search agent.

They calibrate rewards and benchmarks (the oracle must score EM 1.0; an agent that never searches
must score near 0), write the warm-start trajectories of the trainer, and drive the tests. Each
has ``act(env, observation) -> str``: the unwrapped env (its example, turn and format) and the
last observation in, the next action text out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence


def call_text(format_name: str, tool: str, argument_name: str, value: str) -> str:
    """One call written in a format: hermes JSON or a Search-R1 tag."""
    if format_name == "tags":
        return f"<{tool}>{value}</{tool}>"
    payload = json.dumps({"name": tool, "arguments": {argument_name: value}}, ensure_ascii=False)
    return f"<tool_call>{payload}</tool_call>"


def search(format_name: str, query: str) -> str:
    return call_text(format_name, "search", "query", query)


def answer(format_name: str, text: str) -> str:
    return call_text(format_name, "answer", "answer", text)


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
        fmt, question = env.format.name, env.example.question
        if env.turn == 0:
            return search(fmt, question)
        last = observation[-1]["content"] if observation else ""
        for title in _DOC_TITLE.findall(last):
            if title.lower() not in question.lower():
                return answer(fmt, title)
        return answer(fmt, "unknown")


class NoSearchAgent:
    """Answers at once without searching: the floor every real agent must beat."""

    name = "no-search"

    def act(self, env, observation: Sequence[dict]) -> str:
        return answer(env.format.name, "unknown")


SCRIPTED_AGENTS = {agent.name: agent for agent in (OracleAgent, NaiveSearchAgent, NoSearchAgent)}


def run_episode(env, agent, *, seed: int | None = None, options: dict | None = None) -> dict:
    """Play one episode of ``agent`` in ``env``; return the final info with the episode return."""
    observation, info = env.reset(seed=seed, options=options)
    base = env.unwrapped
    total, terminated, truncated = 0.0, False, False
    while not (terminated or truncated):
        action = agent.act(base, observation)
        observation, reward, terminated, truncated, info = env.step(action)
        total += reward
    return {**info, "return": total, "terminated": terminated, "truncated": truncated}
