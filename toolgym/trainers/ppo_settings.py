"""The settings of :class:`~toolgym.trainers.ppo.ToolPPOTrainer` (``ppo:`` in a training config).

Kept apart from ``ppo.py`` so configs validate without importing torch or trl.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

# "ppo" plus the critic-free estimators of toolgym.trainers.advantages.ESTIMATORS
ALGORITHMS = ("ppo", "grpo", "rloo", "reinforce_pp", "reinforce_pp_baseline")


def _help(text: str, **kw):
    return field(metadata={"help": text}, **kw)


def _choice(name: str, value, choices) -> None:
    if value not in choices:
        from toolgym.envs.errors import did_you_mean

        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}.{did_you_mean(value, choices)}")


@dataclass
class PPOSettings:
    """The algorithm and its knobs (``ppo:`` in a training config). KL and entropy coefficients
    are ``grpo.beta`` and ``grpo.entropy_coef`` (TRL builds the reference model from ``beta``)."""

    algorithm: str = _help("ppo (critic + GAE), or a critic-free estimator on the same rollouts: grpo, rloo, "
                           "reinforce_pp, reinforce_pp_baseline", default="ppo")
    credit: str = _help("critic-free estimators: step (per-step returns-to-go), outcome (episode return) or "
                        "gigpo (episode advantage plus step_weight times the step's within its anchor-state group)",
                        default="step")
    gamma: float = _help("discount: per sampled token (gae_level token) or per turn (gae_level step and the "
                         "critic-free returns)", default=1.0)
    step_weight: float = _help("credit gigpo: omega, the weight of the step-level (anchor-state) advantage",
                               default=1.0)
    lam: float = _help("GAE lambda (1: Monte-Carlo returns minus the value; 0: one-step TD)", default=0.95)
    gae_level: str = _help("token: values and GAE per sampled token; step: per turn, each turn's advantage on "
                           "its tokens", default="token")
    cliprange: float = _help("PPO policy clip: the ratio is clipped to [1 - cliprange, 1 + cliprange]", default=0.2)
    cliprange_value: float = _help("value clip: new values stay within this of the values at rollout time "
                                   "(0 disables the clipped term)", default=0.2)
    vf_coef: float = _help("weight of the value loss in the total loss", default=0.1)
    critic_warmup_steps: int = _help("first optimiser steps that train only the value head (policy frozen)",
                                     default=0)
    whiten_advantages: bool = _help("normalise PPO advantages to mean 0, std 1 over the batch's sampled tokens",
                                    default=True)
    kl_penalty: str = _help("how grpo.beta > 0 enters PPO: loss (k3 KL to the reference, as GRPO) or reward "
                            "(per-token log-ratio subtracted from the rewards before GAE)", default="loss")

    def __post_init__(self):
        _choice("ppo.algorithm", self.algorithm, ALGORITHMS)
        _choice("ppo.credit", self.credit, ("step", "outcome", "gigpo"))
        _choice("ppo.gae_level", self.gae_level, ("token", "step"))
        _choice("ppo.kl_penalty", self.kl_penalty, ("loss", "reward"))
        if not 0 < self.gamma <= 1:
            raise ValueError(f"ppo.gamma must be in (0, 1], got {self.gamma}; 1.0 is usual for token-level LLM RL")
        if self.step_weight < 0:
            raise ValueError(f"step_weight must be >= 0, got {self.step_weight}; GiGPO's default is 1.0")
        if not 0 <= self.lam <= 1:
            raise ValueError(f"ppo.lam must be in [0, 1], got {self.lam}; try 0.95")
        if not 0 < self.cliprange < 1:
            raise ValueError(f"ppo.cliprange must be in (0, 1), got {self.cliprange}; try 0.2")
        if self.cliprange_value < 0:
            raise ValueError(f"ppo.cliprange_value must be >= 0 (0 disables value clipping), got {self.cliprange_value}")
        if self.vf_coef < 0:
            raise ValueError(f"ppo.vf_coef must be >= 0, got {self.vf_coef}; try 0.1")
        if not isinstance(self.critic_warmup_steps, int) or self.critic_warmup_steps < 0:
            raise ValueError(f"ppo.critic_warmup_steps must be an integer >= 0, got {self.critic_warmup_steps!r}")

    @classmethod
    def describe(cls) -> str:
        return "\n".join(f"  ppo.{f.name} (default {f.default!r}): {f.metadata['help']}" for f in fields(cls))
