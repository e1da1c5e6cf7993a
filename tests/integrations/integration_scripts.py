"""Scripted agents for the integration tests (imported by name: see conftest)."""

from __future__ import annotations

import gymnasium as gym

import toolgym  # noqa: F401 - registers the ids

ENV_IDS = ("MultiHopQA-v0", "ToolMath-v0")


def scripted_actions(env_id: str, seed: int, **env_kwargs) -> list[str]:
    """A scripted agent's messages for episode ``seed``: one message without a call (a format
    penalty), one failing call, then the env's oracle until the episode ends."""
    env = gym.make(env_id, **env_kwargs)
    env.reset(seed=seed)
    base = env.unwrapped
    actions = ["Let me think about it first.", base.call(base.tools[0].name, **{"nonsense": 1})]
    for action in actions:
        env.step(action)
    while True:
        action = base.oracle_action()
        actions.append(action)
        *_, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            return actions


def reply_for(actions_by_task: dict[str, list[str]], messages) -> str:
    """The scripted model: find the episode by its task text, answer with its next action."""
    text = "\n".join(str(m.get("content") or "") for m in messages if m.get("role") in ("system", "user"))
    done = sum(1 for m in messages if m.get("role") == "assistant")
    for task, actions in actions_by_task.items():
        if task in text:
            return actions[done] if done < len(actions) else "Done."
    raise AssertionError(f"no scripted episode matches the conversation: {text[:300]!r}")
