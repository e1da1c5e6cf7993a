"""PPO with a critic over turns, and the critic-free estimators, on the GRPO trainer's rollouts.

TRL 1.16 ships no PPO. :class:`ToolPPOTrainer` extends :class:`~toolgym.trainers.grpo.ToolGRPOTrainer`
and so shares everything but the advantage and the loss: the rollout engine (HF ``generate`` or
vLLM, env tokens masked), TRL's batching, optimiser, LoRA, reference model, logging and checkpoints.

``algorithm="ppo"`` (Schulman et al. 2017; the token-level setting of Ouyang et al. 2022):

- a value head (one linear layer on the policy's last hidden state, read through a forward hook on
  the backbone, so one forward gives log-probs and values). With LoRA only the adapter and the
  head train; the base stays frozen. Checkpoints hold the adapter and ``value_head.safetensors``.
- rewards at the end of each turn (process rewards; the outcome arrives with the last turn), GAE
  over the episode on sampled tokens (``gae_level="token"``) or turns (``"step"``); env tokens are
  skipped, so a turn bootstraps from the value at the start of the next turn.
- loss = clipped policy loss + ``vf_coef`` x clipped value loss - ``entropy_coef`` x entropy
  (+ ``beta`` x KL to the reference when ``kl_penalty="loss"``; with ``"reward"`` the per-token KL
  is subtracted from the rewards before GAE). All terms are means over the sampled tokens only.
- ``critic_warmup_steps``: the first optimiser steps train only the value head (the policy and its
  adapter do not move), so the first policy updates use a critic that has seen some returns.

``algorithm="grpo" | "rloo" | "reinforce_pp" | "reinforce_pp_baseline"``: no critic; the advantage
comes from :mod:`toolgym.trainers.advantages` on the same rollouts (per-step returns with
``credit="step"``, the episode return with ``"outcome"``) and the loss is TRL's GRPO loss, so the
algorithms differ only in the estimator.

KL and entropy coefficients are TRL's (``GRPOConfig.beta``, ``GRPOConfig.entropy_coef``) so TRL
builds the reference model; ``GRPOConfig.epsilon`` is not read by PPO (``cliprange`` is).

Example:
    >>> trainer = ToolPPOTrainer("path/or/hub-id", envs=[EnvSpec("MultiHopQA-v0", {"format": "tags"})],
    ...                          args=GRPOConfig(output_dir="out", num_generations=4),
    ...                          ppo=PPOSettings(gamma=1.0, lam=0.95), peft_config=LoraConfig(...))
    >>> trainer.train()
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import contextmanager

from toolgym.trainers import advantages as adv_lib
from toolgym.trainers._deps import require
from toolgym.trainers.algorithms import PPOSettings
from toolgym.trainers.grpo import ToolGRPOTrainer
from toolgym.trainers.tasks import EnvSpec

require("trl", "train")
import torch  # noqa: E402
from torch import nn  # noqa: E402

__all__ = ["PPOSettings", "ToolPPOTrainer", "ValueHead", "ppo_losses", "train_ppo"]
VALUE_HEAD_FILE = "value_head.safetensors"


# -- the critic ------------------------------------------------------------------------------------------
class ValueHead(nn.Module):
    """``V(s_t)`` from the last hidden state before token ``t``: one linear layer, zero-initialised
    (values start at 0), kept in float32 whatever the policy's dtype."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.summary = nn.Linear(hidden_size, 1, dtype=torch.float32)
        nn.init.zeros_(self.summary.weight)
        nn.init.zeros_(self.summary.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.summary(hidden.float()).squeeze(-1)


class HiddenCapture:
    """Keeps the backbone's ``last_hidden_state`` of the latest forward while :meth:`on` is active,
    so the value head reads the same forward that computes the log-probs."""

    def __init__(self, backbone: nn.Module):
        self.hidden: torch.Tensor | None = None
        self._active = False
        self.handle = backbone.register_forward_hook(self._hook)

    def _hook(self, module, args, output):
        if self._active:
            self.hidden = output[0] if isinstance(output, tuple) else output.last_hidden_state

    @contextmanager
    def on(self):
        self._active, self.hidden = True, None
        try:
            yield self
        finally:
            self._active = False


def _causal_lm(model):
    """The transformers model under accelerate / peft wrappers."""
    model = getattr(model, "module", model)
    return model.get_base_model() if hasattr(model, "get_base_model") else model


# -- the loss ------------------------------------------------------------------------------------------
def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.to(x.dtype)
    return (torch.where(mask.bool(), x, torch.zeros_like(x)) * m).sum() / m.sum().clamp(min=1)


def whiten(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``(x - mean) / std`` over the masked entries (biased std, as OpenRLHF/CleanRL); 0 elsewhere."""
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    return torch.where(mask.bool(), (x - mean) * torch.rsqrt(var + eps), torch.zeros_like(x))


def ppo_losses(logps, old_logps, advantages, values, old_values, returns, mask, *, cliprange: float,
               cliprange_value: float, entropies=None, ref_logps=None) -> dict[str, torch.Tensor]:
    """CleanRL's PPO terms on (B, T) token tensors; means over ``mask`` (sampled tokens) only.

    Entries of ``advantages``/``returns``/``old_*`` where ``mask`` is 0 are never read into a value
    that reaches the loss (``torch.where``, so even NaN there is harmless).
    """
    mask = mask.bool()
    zero = torch.zeros_like(logps)
    advantages = torch.where(mask, advantages, zero)
    log_ratio = torch.where(mask, logps - old_logps, zero)
    ratio = log_ratio.exp()
    pg1 = -advantages * ratio
    pg2 = -advantages * ratio.clamp(1 - cliprange, 1 + cliprange)
    out = {"policy": masked_mean(torch.max(pg1, pg2), mask),
           "clipfrac": masked_mean(((ratio - 1).abs() > cliprange).float(), mask),
           "approx_kl": masked_mean((ratio - 1) - log_ratio, mask)}
    if values is not None:
        returns = torch.where(mask, returns, zero)
        old_values = torch.where(mask, old_values, zero)
        v_loss = (values - returns) ** 2
        if cliprange_value > 0:
            v_clipped = old_values + (values - old_values).clamp(-cliprange_value, cliprange_value)
            v_loss = torch.max(v_loss, (v_clipped - returns) ** 2)
            out["value_clipfrac"] = masked_mean(((values - old_values).abs() > cliprange_value).float(), mask)
        out["value"] = 0.5 * masked_mean(v_loss, mask)
    if entropies is not None:
        out["entropy"] = masked_mean(entropies, mask)
    if ref_logps is not None:  # k3 estimator (Schulman), as TRL's GRPO
        d = torch.where(mask, ref_logps - logps, zero)
        out["kl"] = masked_mean(d.exp() - d - 1, mask)
    return out


# -- the trainer ---------------------------------------------------------------------------------------------
class ToolPPOTrainer(ToolGRPOTrainer):
    """PPO (critic + GAE over turns) or a critic-free estimator, on toolgym envs through TRL.

    Args:
        model: a model or a path / hub id (as for ``GRPOTrainer``).
        envs: the env mix (:class:`~toolgym.trainers.tasks.EnvSpec` list).
        args: a ``trl.GRPOConfig``: batching (``per_device_train_batch_size``, ``num_generations``:
            episodes per task; PPO's advantages do not use the groups, the estimators do),
            ``num_iterations`` (PPO epochs over a batch), ``steps_per_generation`` (mini-batches),
            ``learning_rate``, ``beta`` (KL), ``entropy_coef``, checkpoints, logging.
        ppo: :class:`PPOSettings` (algorithm, gamma, lam, clip ranges, vf_coef, critic warm-up).
        max_turn_tokens, train_dataset, num_tasks, chat_template_kwargs: as :class:`ToolGRPOTrainer`.
        **kwargs: anything ``GRPOTrainer`` takes (``peft_config``, ``processing_class``, ``callbacks``...).

    Logs (besides TRL's and the rollout's ``rewards/<term>``, ``episode/*``...): ``losses/policy``,
    ``losses/value``, ``losses/entropy``, ``losses/kl``, ``ppo/clipfrac``, ``ppo/approx_kl``,
    ``ppo/value_clipfrac``, ``values/mean``, ``values/explained_variance``, ``returns/mean``.
    """

    def __init__(self, model, envs: Sequence[EnvSpec], args, *, ppo: PPOSettings | None = None, **kwargs):
        self.ppo = ppo if ppo is not None else PPOSettings()
        if not isinstance(self.ppo, PPOSettings):
            raise TypeError(f"ppo must be a PPOSettings, got {type(self.ppo).__name__}; build one with PPOSettings(...)")
        for k in ("credit", "gamma", "step_weight"):
            if k in kwargs:
                raise TypeError(f"ToolPPOTrainer takes {k} in ppo=PPOSettings({k}=...), not as a keyword")
        super().__init__(model, envs=envs, args=args, credit="outcome", gamma=self.ppo.gamma,
                         step_weight=self.ppo.step_weight, **kwargs)
        if self.rows_per_sample and self.ppo.algorithm == "ppo":
            raise ValueError("algorithm='ppo' bootstraps its critic along one token sequence per episode, and an "
                             "env of this mix has a non-append-only context (context='window'), whose episodes can "
                             "span several rows; use a critic-free algorithm (grpo, rloo, reinforce_pp, "
                             "reinforce_pp_baseline) or context='full'")
        self.value_head = None
        if self.ppo.algorithm == "ppo":
            lm = _causal_lm(self.model)
            head = ValueHead(lm.config.get_text_config().hidden_size).to(self.accelerator.device)
            # registered on the model: the optimiser, DDP and the device placement see it
            self.model.add_module("v_head", head)
            self.value_head = head
            self._capture = HiddenCapture(lm.base_model)

    @property
    def in_critic_warmup(self) -> bool:
        return self.state.global_step < self.ppo.critic_warmup_steps

    # -- advantages ----------------------------------------------------------------------------------
    def _score(self, inputs):
        if self.rows_per_sample:  # critic-free estimators only; their advantages come through _estimator
            return super()._score(inputs)
        output = super()._score(inputs)
        if self.ppo.algorithm != "ppo":  # the estimator of _estimator, on each step's tokens as GRPO's step credit
            output["advantages"] = self._per_token_advantages(inputs, output["completion_ids"].shape)
            return output
        rewards, step_mask = adv_lib.pad_steps([x["step_rewards"] for x in inputs])
        spans = adv_lib.pad_spans([x["step_spans"] for x in inputs], rewards.shape[1])
        device = output["completion_ids"].device
        output.update(self._gae_batch(output, rewards.to(device), step_mask.to(device), spans.to(device)))
        return output

    def _estimator(self) -> tuple[str, str, float]:
        return self.ppo.algorithm, self.ppo.credit, self.ppo.gamma

    def _forward(self, model, inputs, compute_entropy: bool):
        """Per-token log-probs (and entropies) and values of the completion tokens, one forward."""
        prompt_ids, completion_ids = inputs["prompt_ids"], inputs["completion_ids"]
        input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
        attention_mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
        n = completion_ids.size(1)
        with self._capture.on() as cap:
            logps, entropies, _ = self._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, n, compute_entropy=compute_entropy)
        hidden = cap.hidden[:, -(n + 1):-1]  # the state before each completion token
        if self.in_critic_warmup:
            hidden = hidden.detach()  # warm-up: the value loss moves the head only, not the policy
        return logps, entropies, self.value_head(hidden)

    def _gae_batch(self, output, rewards, step_mask, spans) -> dict[str, torch.Tensor]:
        mask = self._loss_mask(output).bool()
        n = mask.shape[1]
        with torch.no_grad():
            logps, _, values = self._forward(self.model, output, compute_entropy=False)
        values = values * mask
        token_rewards = adv_lib.rewards_at_step_ends(rewards, spans, step_mask, n)
        ref = output.get("ref_per_token_logps")
        if self.ppo.kl_penalty == "reward" and self.beta != 0.0 and ref is not None:
            token_rewards = token_rewards - self.beta * torch.where(mask, logps - ref, torch.zeros_like(logps))
        if self.ppo.gae_level == "token":
            advantages, returns = adv_lib.gae(token_rewards, values, mask, self.ppo.gamma, self.ppo.lam)
        else:
            step_values = adv_lib.values_at_step_starts(values, spans, step_mask)
            step_adv, step_ret = adv_lib.gae(rewards, step_values, step_mask, self.ppo.gamma, self.ppo.lam)
            advantages = adv_lib.steps_to_tokens(step_adv, spans, step_mask, n) * mask
            returns = adv_lib.steps_to_tokens(step_ret, spans, step_mask, n) * mask
        if self.ppo.whiten_advantages:
            advantages = whiten(advantages, mask)
        mode = "train" if self.model.training else "eval"
        var_ret = torch.var(returns[mask]) if mask.sum() > 1 else torch.tensor(0.0)
        explained = 1 - torch.var((returns - values)[mask]) / var_ret if var_ret > 0 else torch.tensor(float("nan"))
        self._metrics[mode]["values/mean"].append(masked_mean(values, mask).item())
        self._metrics[mode]["values/explained_variance"].append(float(explained))
        self._metrics[mode]["returns/mean"].append(masked_mean(returns, mask).item())
        out = {"advantages": advantages, "old_values": values, "returns": returns}
        if output.get("old_per_token_logps") is None:
            out["old_per_token_logps"] = logps  # the same parameters the first update starts from
        return out

    @staticmethod
    def _loss_mask(inputs) -> torch.Tensor:
        m = inputs["completion_mask"]
        return m * inputs["tool_mask"] if "tool_mask" in inputs else m

    # -- the loss -------------------------------------------------------------------------------------
    def _compute_loss(self, model, inputs):
        if self.ppo.algorithm != "ppo":
            return super()._compute_loss(model, inputs)  # TRL's GRPO loss on our (B, T) advantages
        mask = self._loss_mask(inputs)
        logps, entropies, values = self._forward(model, inputs, compute_entropy=True)
        terms = ppo_losses(logps, inputs["old_per_token_logps"], inputs["advantages"], values, inputs["old_values"],
                           inputs["returns"], mask, cliprange=self.ppo.cliprange,
                           cliprange_value=self.ppo.cliprange_value, entropies=entropies,
                           ref_logps=inputs.get("ref_per_token_logps"))
        loss = self.ppo.vf_coef * terms["value"]
        if not self.in_critic_warmup:
            loss = loss + terms["policy"] - self.entropy_coef * terms["entropy"]
            if self.beta != 0.0 and self.ppo.kl_penalty == "loss":
                loss = loss + self.beta * terms["kl"]
        mode = "train" if self.model.training else "eval"
        metrics = self._metrics[mode]
        for name in ("policy", "value", "entropy", "kl"):
            if name in terms:
                metrics[f"losses/{name}"].append(self.accelerator.gather(terms[name].detach()).mean().item())
        for name in ("clipfrac", "approx_kl", "value_clipfrac"):
            if name in terms:
                metrics[f"ppo/{name}"].append(self.accelerator.gather(terms[name].detach()).mean().item())
        normalizer = self.current_gradient_accumulation_steps if mode == "train" else 1.0
        return loss / normalizer

    # -- checkpoints: the adapter (or model) as usual, plus the value head --------------------------------
    def _save(self, output_dir: str | None = None, state_dict=None):
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if self.value_head is not None and state_dict is not None:
            state_dict = {k: v for k, v in state_dict.items() if "v_head." not in k}
        if self.value_head is not None and state_dict is None and not hasattr(self.model, "peft_config"):
            state_dict = {k: v for k, v in self.model.state_dict().items() if not k.startswith("v_head.")}
        super()._save(output_dir, state_dict=state_dict)
        if self.value_head is not None and self.args.should_save:
            from safetensors.torch import save_file

            save_file({k: v.detach().cpu().contiguous() for k, v in self.value_head.state_dict().items()},
                      os.path.join(output_dir, VALUE_HEAD_FILE))

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        path = os.path.join(resume_from_checkpoint, VALUE_HEAD_FILE)
        if self.value_head is not None:
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{resume_from_checkpoint} has no {VALUE_HEAD_FILE}: it was not written by a "
                                        "PPO run; resume a PPO run from its own checkpoints")
            load_value_head(self.value_head, path)


def load_value_head(head: ValueHead, path: str) -> ValueHead:
    from safetensors.torch import load_file

    head.load_state_dict(load_file(path, device=str(head.summary.weight.device)))
    return head


def train_ppo(model, envs: Sequence[EnvSpec], args, ppo: PPOSettings | None = None, *, resume=None,
              **trainer_kwargs) -> ToolPPOTrainer:
    """Build a :class:`ToolPPOTrainer`, train it, save ``<output_dir>/final`` (adapter or model, the
    tokenizer, the value head) and return the trainer. ``resume``: True or a checkpoint path."""
    trainer = ToolPPOTrainer(model, envs=envs, args=args, ppo=ppo, **trainer_kwargs)
    trainer.train(resume_from_checkpoint=resume)
    final = os.path.join(args.output_dir, "final")
    trainer.save_model(final)
    if trainer.processing_class is not None:
        trainer.processing_class.save_pretrained(final)
    return trainer
