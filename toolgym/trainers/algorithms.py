"""The training algorithms: their names, the credit names, and one settings class per trainer.

Every name is defined once, in :mod:`toolgym.trainers.names`; configs, the CLI, the trainers and the advantage estimators
read it from here. Each settings class is a dataclass with its help once per field, validated in
``__post_init__`` (as TRL's ``GRPOConfig``), and knows its trainer and which ``trl.GRPOConfig``
fields that trainer does not read (the rest pass through to TRL unchanged):

- :class:`GRPOSettings` (``algorithm: grpo``) -> :class:`~toolgym.trainers.grpo.ToolGRPOTrainer`:
  TRL's GRPO (TRL's group-normalised advantage with ``credit: outcome``) with multi-turn credit.
- :class:`PPOSettings` (``algorithm: ppo`` and the critic-free estimators ``rloo``,
  ``reinforce_pp``, ``reinforce_pp_baseline``) -> :class:`~toolgym.trainers.ppo.ToolPPOTrainer`.

Imports no torch or TRL, so configs and the CLI validate without them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from toolgym.envs.errors import check_choice
from toolgym.trainers.names import (
    ALGORITHMS,
    CREDITS,
    GAE_LEVELS,
    KL_PENALTIES,
    SIMILARITIES,
)

# trl.GRPOConfig fields that no toolgym trainer reads (its rollouts replace TRL's generation and tool
# loop), with the setting that does their job.
_TRL_NOT_READ = {
    "max_tool_calling_iterations": "TRL's own tool loop; toolgym's envs run the tools: set the env's max_turns "
                                   "(envs[].kwargs.max_turns)",
    "chat_template_kwargs": "toolgym renders the episodes: use the top-level chat_template_kwargs",
}
# ... and those that PPO's own loss (ppo_losses) does not read.
_TRL_LOSS_FIELDS = ("epsilon", "epsilon_high", "delta", "loss_type", "importance_sampling_level", "top_entropy_quantile",
                    "sapo_temperature_neg", "sapo_temperature_pos", "vespo_k_pos", "vespo_lambda_pos", "vespo_k_neg",
                    "vespo_lambda_neg", "off_policy_mask_threshold")


def _help(text: str, **kw) -> Any:
    return field(metadata={"help": text}, **kw)


@dataclass
class AlgorithmSettings:
    """What every algorithm shares: how the episode's rewards become the advantages of its steps
    (the top-level ``credit``, ``gamma``, ``step_weight``, ``step_similarity`` of a config)."""

    algorithm: ClassVar[str]

    credit: str = _help("outcome: the episode return for every step's tokens; step: per-step returns-to-go "
                        "(process rewards credited to their own steps); gigpo: the episode's group advantage plus "
                        "step_weight times each step's advantage within its anchor-state group (GiGPO)",
                        default="outcome")
    gamma: float = _help("discount of the per-step returns (credit step and gigpo; PPO: per token with "
                         "gae_level token, per turn otherwise)", default=1.0)
    step_weight: float = _help("credit gigpo: omega, the weight of the step-level (anchor-state) advantage "
                               "(GiGPO's default 1.0)", default=1.0)
    step_similarity: str = _help("credit gigpo: which steps form a step group; exact = sampled on the identical "
                                 "observation (GiGPO's default)", default="exact")

    def __post_init__(self):
        check_choice("credit", self.credit, CREDITS)
        check_choice("step_similarity", self.step_similarity, SIMILARITIES)
        if isinstance(self.gamma, bool) or not isinstance(self.gamma, (int, float)) or not 0 < self.gamma <= 1:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma!r}; 1.0 is usual for LLM RL")
        if isinstance(self.step_weight, bool) or not isinstance(self.step_weight, (int, float)) or self.step_weight < 0:
            raise ValueError(f"step_weight must be a number >= 0, got {self.step_weight!r}; GiGPO's default is 1.0")

    @classmethod
    def own_fields(cls) -> list:
        """The fields this class adds to the shared ones (a config's ``ppo:`` section for PPO)."""
        shared = {f.name for f in fields(AlgorithmSettings)}
        return [f for f in fields(cls) if f.name not in shared]

    def trl_fields_not_read(self) -> dict[str, str]:
        """``trl.GRPOConfig`` field -> why this algorithm's trainer does not read it and what to set
        instead; every other field passes through to TRL unchanged."""
        return dict(_TRL_NOT_READ)

    def check_trl_fields(self, trl_fields, where: str = "grpo.") -> None:
        """Raise a ValueError for a TRL field set in ``trl_fields`` that this trainer does not read."""
        not_read = self.trl_fields_not_read()
        for name in trl_fields:
            if name in not_read:
                raise ValueError(f"{where}{name} is not read with algorithm {self.algorithm!r}: {not_read[name]}.")


@dataclass
class GRPOSettings(AlgorithmSettings):
    """``algorithm: grpo``: TRL's GRPO on toolgym's multi-turn rollouts
    (:class:`~toolgym.trainers.grpo.ToolGRPOTrainer`). Every ``trl.GRPOConfig`` field applies
    (``importance_sampling_level: sequence`` is GSPO, ``loss_type``, ``epsilon``, ``beta``...)."""

    algorithm: ClassVar[str] = "grpo"


@dataclass
class PPOSettings(AlgorithmSettings):
    """PPO (a critic with GAE over turns) or a critic-free estimator on the same rollouts
    (:class:`~toolgym.trainers.ppo.ToolPPOTrainer`; the ``ppo:`` section of a config). KL and entropy
    coefficients are TRL's ``beta`` and ``entropy_coef`` (TRL builds the reference model from ``beta``);
    PPO's own loss does not read TRL's loss settings (``epsilon``: use ``cliprange``)."""

    algorithm: str = _help("ppo (critic + GAE), or a critic-free estimator on the same rollouts with TRL's GRPO "
                           "loss: rloo, reinforce_pp, reinforce_pp_baseline, or grpo (toolgym's own group-normalised "
                           "estimator; algorithm: grpo in a config is ToolGRPOTrainer, TRL's)", default="ppo")
    # same meaning as AlgorithmSettings.credit; PPOSettings() defaults to per-step returns
    credit: str = field(default="step", metadata=AlgorithmSettings.__dataclass_fields__["credit"].metadata)
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
        check_choice("ppo.algorithm", self.algorithm, ALGORITHMS)
        super().__post_init__()
        check_choice("ppo.gae_level", self.gae_level, GAE_LEVELS)
        check_choice("ppo.kl_penalty", self.kl_penalty, KL_PENALTIES)
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

    def trl_fields_not_read(self) -> dict[str, str]:
        not_read = super().trl_fields_not_read()
        if self.algorithm == "ppo":  # the estimators train through TRL's GRPO loss, which reads them all
            fix = "PPO's own loss replaces TRL's (clip with ppo.cliprange and ppo.cliprange_value)"
            not_read.update(dict.fromkeys(_TRL_LOSS_FIELDS, fix))
        return not_read

    @classmethod
    def describe(cls) -> str:
        return "\n".join(f"  ppo.{f.name} (default {f.default!r}): {f.metadata['help']}" for f in cls.own_fields())


def settings_for(algorithm: str, **settings) -> AlgorithmSettings:
    """The settings of ``algorithm`` (``grpo`` -> :class:`GRPOSettings`, any other -> :class:`PPOSettings`)."""
    check_choice("algorithm", algorithm, ALGORITHMS)
    return GRPOSettings(**settings) if algorithm == "grpo" else PPOSettings(algorithm=algorithm, **settings)
