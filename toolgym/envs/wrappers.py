"""Wrappers: a text view of the conversation for text-only agents, and step timings."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym

from toolgym.envs.spaces import UnicodeText
from toolgym.envs.tool_env import render_messages


class RenderText(gym.ObservationWrapper):
    """Observations as one string instead of a tuple of messages.

    ``renderer`` turns the messages into text; the default writes ``[role]`` headers. Pass a
    tokenizer's template for a model that takes raw text, e.g.
    ``RenderText(env, lambda m: tok.apply_chat_template(list(m), tokenize=False, add_generation_prompt=True))``.
    """

    def __init__(self, env: gym.Env, renderer: Callable[[Sequence[Mapping[str, str]]], str] = render_messages):
        super().__init__(env)
        self.renderer = renderer
        self.observation_space = UnicodeText(max_length=2**31 - 1)

    def observation(self, observation: tuple) -> str:
        return self.renderer(observation)


class StepTimer(gym.Wrapper):
    """Adds ``info["step_seconds"]`` (wall time of the step): timings stay out of the env's own info,
    which is deterministic."""

    def step(self, action: Any):
        start = time.perf_counter()
        observation, reward, terminated, truncated, info = self.env.step(action)
        return observation, reward, terminated, truncated, {**info, "step_seconds": time.perf_counter() - start}
