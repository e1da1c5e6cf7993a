"""What a trainer trains on: the env mix (:class:`EnvSpec`), the task rows TRL iterates
(:func:`task_dataset`), and the metrics logged over a batch of episodes (:func:`episode_metrics`).

Imports no TRL or torch: configs build :class:`EnvSpec` and validate it without them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from toolgym.envs.registration import check_env_args
from toolgym.envs.result import EpisodeResult
from toolgym.generation import NativeFormat


def _help(text: str, **kw) -> Any:
    return field(metadata={"help": text}, **kw)


@dataclass
class EnvSpec:
    """One env of the training mix (``envs:`` in a config): a registered id, its kwargs, its share
    of the episodes, and optionally a replacement system prompt (shorter prompts make tiny models
    much cheaper). An unknown id or kwarg fails here, before a model loads."""

    id: str = _help("a registered env id, e.g. MultiHopQA-v0")
    kwargs: dict[str, Any] = _help("keyword arguments of gym.make", default_factory=dict)
    weight: float = _help("share of the training episodes (normalised over the mix)", default=1.0)
    system_prompt: str | None = _help("replace the env's system message (None: keep it)", default=None)

    def __post_init__(self):
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"envs[].id must be a non-empty env id string, got {self.id!r}")
        if not isinstance(self.kwargs, dict):
            raise ValueError(f"envs[].kwargs must be a mapping, got {type(self.kwargs).__name__}: {self.kwargs!r}")
        if isinstance(self.weight, bool) or not isinstance(self.weight, (int, float)) or self.weight < 0:
            raise ValueError(f"envs[].weight must be a number >= 0, got {self.weight!r}")
        check_env_args(self.id, self.kwargs)  # registers toolgym's ids too

    def make(self, tokenizer=None, chat_template_kwargs: dict | None = None):
        """The env; ``format: native`` becomes the policy's own call syntax (needs ``tokenizer``)."""
        kwargs = dict(self.kwargs)
        if kwargs.get("format") == "native":
            if tokenizer is None:
                raise ValueError(f"{self.id}: format 'native' reads calls in the policy's own syntax and needs its "
                                 "tokenizer: EnvSpec.make(tokenizer)")
            kwargs["format"] = NativeFormat(tokenizer, dict(chat_template_kwargs or {}))
        env = gym.make(self.id, **kwargs)
        return env if self.system_prompt is None else SystemPrompt(env, self.system_prompt)


class SystemPrompt(gym.ObservationWrapper):
    """Shows ``text`` as the system message instead of the env's own (the env itself is unchanged)."""

    def __init__(self, env, text: str):
        super().__init__(env)
        self.text = text

    def observation(self, observation):
        return tuple({**m, "content": self.text} if m.get("role") == "system" else dict(m) for m in observation)


def task_dataset(envs: Sequence[EnvSpec], n: int, seed: int = 0):
    """A ``datasets.Dataset`` of ``n`` tasks; each prompt is JSON ``{"env": index, "seed": episode seed}``.

    The env draws the question from its seed, so the ``num_generations`` copies TRL makes of a row
    are one group: the same question answered several times.
    """
    from datasets import Dataset  # the train extra

    rng = np.random.default_rng(seed)
    weights = np.array([e.weight for e in envs], dtype=float)
    if (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"env weights must be >= 0 with a positive sum, got {weights.tolist()}")
    which = rng.choice(len(envs), size=n, p=weights / weights.sum())
    seeds = rng.integers(0, 2**31 - 1, size=n)
    return Dataset.from_dict({"prompt": [json.dumps({"env": int(e), "seed": int(s)}) for e, s in zip(which, seeds,
                                                                                                  strict=True)]})


def episode_metrics(episodes) -> dict[str, float]:
    """The stable log names: rewards/<term>, tools/*, episode/*, answer/* (means over episodes)."""
    n = max(len(episodes), 1)
    out: dict[str, float] = {}
    terms = sorted({k for e in episodes for k in e.term_totals()})
    for k in terms:
        out[f"rewards/{k}"] = sum(e.term_totals().get(k, 0.0) for e in episodes) / n
    steps = sum(len(e.steps) for e in episodes)
    out["episode/return"] = sum(e.ret for e in episodes) / n
    out["tools/calls"] = sum(float(e.info.get("tool_calls", 0)) for e in episodes) / n
    out["tools/parse_error_rate"] = sum(s.parse_error is not None for e in episodes for s in e.steps) / max(steps, 1)
    out["episode/turns"] = steps / n
    out["episode/length"] = sum(e.tokens_used for e in episodes) / n
    out["episode/truncated"] = sum(e.truncated or e.budget_truncated for e in episodes) / n
    ends = [EpisodeResult.from_info(e.info) for e in episodes]  # None: stopped by the token budget
    out["answer/em"] = sum(float(r.success) for r in ends if r is not None) / n  # EM on QA
    out["answer/f1"] = sum(r.score for r in ends if r is not None) / n  # F1 on QA
    return out
