"""Multi-turn GRPO on toolgym envs, on top of ``trl.GRPOTrainer`` (TRL pinned to 1.16.*).

TRL's ``rollout_func`` contract carries the episodes in: :class:`EnvRolloutFunc` runs the envs
with :class:`~toolgym.trainers.rollout.RolloutEngine` and returns ``prompt_ids``,
``completion_ids`` (sampled turns interleaved with env tokens), ``logprobs`` and ``env_mask``
(0 on env tokens: TRL excludes them from the loss), plus per-step rewards and token spans as extra
keys, which TRL hands to the reward functions.

Credit:
- ``outcome``: the reward function returns the episode return; TRL's group-normalised advantage.
- ``step``: per-step returns ``G_t`` (discounted sum of the step rewards from ``t`` on: process
  rewards plus the outcome) normalised over all steps of the group's episodes, each step's value
  given to that step's tokens. TRL's loss already accepts per-token advantages of shape (B, T)
  (``GRPOTrainer._compute_loss``), so the override is only :meth:`ToolGRPOTrainer._generate_and_score_completions`
  replacing the (B,) advantages by (B, T) ones. On single-step episodes both are identical.

Example:
    >>> trainer = ToolGRPOTrainer("path/or/hub-id", envs=[EnvSpec("MultiHopQA-v0", {"format": "tags"})],
    ...                           args=GRPOConfig(output_dir="out", num_generations=8), credit="step")
    >>> trainer.train()
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from toolgym.trainers._deps import require
from toolgym.trainers.rollout import HFBackend, RolloutEngine, VLLMBackend

require("trl", "train")
import torch  # noqa: E402
from accelerate.utils import gather_object  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402
from trl.models import unwrap_model_for_generation  # noqa: E402

CREDITS = ("outcome", "step")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func is the documented path we rely on


@dataclass
class EnvSpec:
    """One env of the training mix: a registered id, its kwargs, its share of the episodes, and
    optionally a replacement system prompt (shorter prompts make tiny models much cheaper)."""

    id: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    weight: float = 1.0
    system_prompt: str | None = None

    def make(self):
        import toolgym  # noqa: F401  (registers the ids)

        env = gym.make(self.id, **self.kwargs)
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
    import numpy as np
    from datasets import Dataset

    rng = np.random.default_rng(seed)
    weights = np.array([e.weight for e in envs], dtype=float)
    if (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"env weights must be >= 0 with a positive sum, got {weights.tolist()}")
    which = rng.choice(len(envs), size=n, p=weights / weights.sum())
    seeds = rng.integers(0, 2**31 - 1, size=n)
    return Dataset.from_dict({"prompt": [json.dumps({"env": int(e), "seed": int(s)}) for e, s in zip(which, seeds,
                                                                                                  strict=True)]})


def episode_return(completions, episode_return, **_) -> list[float]:
    """TRL reward function: the episode's return (sum of its step rewards) computed by the env."""
    return list(episode_return)


class EnvRolloutFunc:
    """TRL ``rollout_func``: runs one episode per prompt and returns the token-level batch.

    Envs are made once and reused (a pool per env spec). Generation goes through TRL's vLLM
    integration when the trainer has ``use_vllm``, otherwise through HF ``generate`` on the
    unwrapped training model.
    """

    def __init__(self, envs: Sequence[EnvSpec], *, max_turn_tokens: int = 256, chat_template_kwargs: dict | None = None):
        self.specs = list(envs)
        self.max_turn_tokens = max_turn_tokens
        self.chat_template_kwargs = chat_template_kwargs
        self._pools: list[list] = [[] for _ in self.specs]
        self.last_episodes = []

    def _envs_for(self, tasks: Sequence[dict]) -> list:
        used = [0] * len(self.specs)
        out = []
        for t in tasks:
            k = t["env"]
            if used[k] == len(self._pools[k]):
                env = self.specs[k].make()
                if not getattr(env.unwrapped, "context_append_only", True):
                    raise NotImplementedError(
                        f"{self.specs[k].id} with kwargs {self.specs[k].kwargs} has a non-append-only context "
                        "(context='window'): its steps are separate samples, which GRPO through TRL's rollout_func "
                        "does not take yet (one completion per prompt). Use context='full' for GRPO; "
                        "RolloutEngine already returns the per-step samples.")
                self._pools[k].append(env)
            out.append(self._pools[k][used[k]])
            used[k] += 1
        return out

    def __call__(self, prompts: list[str], trainer) -> dict[str, list]:
        tasks = [json.loads(p) for p in prompts]
        envs = self._envs_for(tasks)
        args = trainer.args
        budget = args.max_completion_length
        tok = trainer.processing_class
        if trainer.use_vllm:
            eps = self._run(envs, tasks, tok, VLLMBackend(trainer), budget)
        else:
            with unwrap_model_for_generation(trainer.model_wrapped, trainer.accelerator) as model:
                backend = HFBackend(model, tok, temperature=args.temperature, top_k=args.top_k or 0, top_p=args.top_p)
                eps = self._run(envs, tasks, tok, backend, budget)
        self.last_episodes = eps
        for name, value in episode_metrics(eps).items():
            trainer._log_metric(name, value)  # averaged over processes by TRL
        return {
            "prompt_ids": [e.prompt_ids for e in eps],
            "completion_ids": [e.completion_ids for e in eps],
            "logprobs": [e.logprobs for e in eps],
            "env_mask": [e.env_mask for e in eps],
            "episode_return": [e.ret for e in eps],
            "step_rewards": [e.step_rewards for e in eps],
            "step_spans": [e.step_spans for e in eps],
        }

    def _run(self, envs, tasks, tok, backend, budget):
        engine = RolloutEngine(envs, tok, backend, max_completion_tokens=budget,
                               max_turn_tokens=min(self.max_turn_tokens, budget),
                               chat_template_kwargs=self.chat_template_kwargs)
        return engine.run([t["seed"] for t in tasks])


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
    out["episode/length"] = sum(len(e.completion_ids) for e in episodes) / n
    out["episode/truncated"] = sum(e.truncated or e.budget_truncated for e in episodes) / n
    out["answer/em"] = sum(float(e.info.get("em", 0.0) or 0.0) for e in episodes) / n
    out["answer/f1"] = sum(float(e.info.get("f1", 0.0) or 0.0) for e in episodes) / n
    return out


def step_advantages(step_rewards: Sequence[Sequence[float]], num_generations: int, gamma: float = 1.0,
                    scale: str = "group") -> list[list[float]]:
    """Per-step advantages for ``credit: step``: returns-to-go normalised over all steps of each
    group's episodes, TRL's way (``(G - mean) / (std + 1e-4)``, ``scale`` group|batch|none), so that
    one-step episodes get exactly TRL's numbers. The GRPO estimator of :mod:`toolgym.trainers.advantages`."""
    from toolgym.trainers import advantages

    return advantages.step_advantages(step_rewards, num_generations, "grpo", "step", gamma, scale)


class ToolGRPOTrainer(GRPOTrainer):
    """``trl.GRPOTrainer`` on toolgym envs: multi-turn rollouts, env-token masking, step-level credit.

    Args:
        model: a model or a path / hub id (as for ``GRPOTrainer``).
        envs: the env mix (:class:`EnvSpec` list).
        args: a ``trl.GRPOConfig`` (passed through unchanged).
        credit: ``"outcome"`` (TRL's GRPO on the episode return) or ``"step"`` (per-step returns).
        gamma: discount of the per-step returns (``credit="step"``).
        max_turn_tokens: most tokens sampled in one turn (``args.max_completion_length`` bounds the
            whole episode).
        train_dataset: tasks (see :func:`task_dataset`); default: ``num_tasks`` tasks drawn with ``args.seed``.
        **kwargs: anything else ``GRPOTrainer`` takes (``peft_config``, ``callbacks``, ``processing_class``...).
    """

    def __init__(self, model, envs: Sequence[EnvSpec], args: GRPOConfig, *, credit: str = "outcome",
                 gamma: float = 1.0, max_turn_tokens: int = 256, train_dataset=None, num_tasks: int = 100_000,
                 chat_template_kwargs: dict | None = None, **kwargs):
        if credit not in CREDITS:
            raise ValueError(f"credit must be one of {CREDITS}, got {credit!r}")
        if not envs:
            raise ValueError("envs is empty: give at least one EnvSpec")
        self.credit, self.gamma = credit, gamma
        self.env_specs = list(envs)
        self.env_rollout = EnvRolloutFunc(envs, max_turn_tokens=max_turn_tokens,
                                          chat_template_kwargs=chat_template_kwargs)
        if train_dataset is None:
            train_dataset = task_dataset(envs, num_tasks, seed=args.seed)
        kwargs.setdefault("reward_funcs", [episode_return])
        super().__init__(model, args=args, train_dataset=train_dataset, rollout_func=self.env_rollout, **kwargs)

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        if self.credit == "step":
            output["advantages"] = self._per_token_advantages(inputs, output["completion_ids"].shape)
        return output

    def _per_token_advantages(self, inputs, shape) -> torch.Tensor:
        """(B, T) advantages for this process's rows; groups may straddle processes, so gather first."""
        mode = "train" if self.model.training else "eval"
        num_generations = self.num_generations if mode == "train" else self.num_generations_eval
        all_rewards = gather_object([list(x["step_rewards"]) for x in inputs])
        all_adv = step_advantages(all_rewards, num_generations, self.gamma, self.scale_rewards)
        start = self.accelerator.process_index * len(inputs)
        adv = torch.zeros(shape, dtype=torch.float32, device=self.accelerator.device)
        for b, x in enumerate(inputs):
            for (s, e), a in zip(x["step_spans"], all_adv[start + b], strict=True):
                adv[b, s:e] = a
        return adv
