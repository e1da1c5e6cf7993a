"""One toolgym episode as the framework adapters drive it: messages in, messages out.

Every framework wants the same few things from a toolgym env: the opening messages of an
episode picked by a seed (so the ``n`` rollouts of a prompt see the same question), the messages
an action adds, and the episode's return split into the env's named reward terms. ``Episode``
keeps that bookkeeping in one place; the adapters only translate shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym

from toolgym.envs.errors import unknown_name_error
from toolgym.envs.registration import env_ids


def make_env(env_id: str, **env_kwargs: Any) -> gym.Env:
    """``gym.make(env_id, **env_kwargs)`` for a toolgym id (``import toolgym``, which any of its
    modules runs first, registered the ids)."""
    if env_id not in gym.registry:
        raise unknown_name_error("env id", env_id, env_ids())
    return gym.make(env_id, **env_kwargs)


def instructions(env: gym.Env) -> str:
    """The task's instructions without the action format's protocol: frameworks that parse tool
    calls natively describe the tools through the chat template instead."""
    return env.unwrapped._instructions()


class Episode:
    """A toolgym env and the running totals of its current episode.

    Attributes:
        env: the (wrapped) Gymnasium env.
        messages: the conversation so far as the env shows it (system, task, actions, results).
        actions: the action texts stepped this episode, in order (replayable on a fresh env).
        rewards: the reward of each step.
        terms: the weighted reward terms summed over the episode (they add up to ``episode_return``).
        terminated, truncated: how the episode ended (both False while it runs).
        info: the env's last ``info``.
    """

    def __init__(self, env: gym.Env):
        self.env = env
        self.base = env.unwrapped
        self._clear()

    def _clear(self) -> None:
        self.messages: list[dict[str, str]] = []
        self.actions: list[str] = []
        self.rewards: list[float] = []
        self.terms: dict[str, float] = {}
        self.terminated = self.truncated = False
        self.info: dict[str, Any] = {}
        self.seed: int | None = None

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated

    @property
    def episode_return(self) -> float:
        return float(sum(self.rewards))

    @property
    def term_names(self) -> tuple[str, ...]:
        """Every reward term the env can report (the keys of its reward weights)."""
        return tuple(self.base.reward_weights)

    def reset(self, seed: int | None = None, options: Mapping[str, Any] | None = None) -> list[dict[str, str]]:
        """Start an episode; return its opening messages (system prompt and task).

        ``options`` are the env's reset options (``{"question_id": ...}``, ``{"index": ...}``);
        None values are dropped (a dataset column missing from a row reads as None).
        """
        options = {k: v for k, v in (options or {}).items() if v is not None}
        self._clear()
        self.seed = seed
        observation, self.info = self.env.reset(seed=seed, options=options or None)
        self.messages = [dict(m) for m in observation]
        return [dict(m) for m in self.messages]

    @property
    def task(self) -> str:
        """The episode's first user message (the question or problem)."""
        return next(m["content"] for m in self.messages if m["role"] == "user")

    def step(self, action: str) -> list[dict[str, str]]:
        """Step the env with one assistant message; return the messages it added after it.

        The env's context must be append-only (``context="full"``): the adapters hand the new
        messages to a framework that keeps the history itself.
        """
        if self.done:
            raise RuntimeError(
                f"the episode has ended ({self.how_it_ended()}); reset it before stepping again."
            )
        before = len(self.messages)
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.actions.append(action)
        self.rewards.append(float(reward))
        for name, value in info.get("reward_terms", {}).items():
            self.terms[name] = self.terms.get(name, 0.0) + float(value)
        self.terminated, self.truncated, self.info = bool(terminated), bool(truncated), dict(info)
        self.messages = [dict(m) for m in observation]
        return [dict(m) for m in self.messages[before + 1 :]]

    def how_it_ended(self) -> str:
        if self.terminated:
            return "terminated: the task was completed"
        if self.truncated:
            return f"truncated: the {self.info.get('truncated_by') or 'step'} budget ran out"
        return "running"


def check_append_only(env: gym.Env, framework: str) -> None:
    """The frameworks keep the conversation themselves, appending what each step adds; an env
    whose context is rewritten (``context="window"``) cannot be expressed that way."""
    if not env.unwrapped.context_append_only:
        raise ValueError(
            f"{framework} appends every message to one growing conversation, so the env's context must be "
            f"append-only; got context={env.unwrapped.context!r}. Use context='full' here, or train windowed "
            "contexts with `toolgym train`."
        )
