"""PPO and the critic-free estimators on the tiny model: 3 tasks x 3 generations, short episodes."""

import math

import pytest
import torch

from tests.trainers.trainer_fakes import grpo_args, register_fakes
from toolgym.trainers import advantages as A
from toolgym.trainers.names import ALGORITHMS
from toolgym.trainers.ppo import (
    VALUE_HEAD_FILE,
    PPOSettings,
    ToolPPOTrainer,
    load_value_head,
    ppo_losses,
)
from toolgym.trainers.tasks import EnvSpec

register_fakes()


def _lora():
    from peft import LoraConfig

    return LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM")


def _trainer(tiny_dir, tmp_path, peft=True, ppo=None, env="FakeQA-v0", **args):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_dir)
    return ToolPPOTrainer(str(tiny_dir), envs=[EnvSpec(env)], args=grpo_args(tmp_path, **args),
                          ppo=ppo or PPOSettings(), max_turn_tokens=10, processing_class=tok,
                          peft_config=_lora() if peft else None, num_tasks=64)


def _batch(trainer, seed=0):
    inputs = [{"prompt": p} for p in trainer.train_dataset[:3]["prompt"] for _ in range(3)]
    torch.manual_seed(seed)
    out = trainer._generate_and_score_completions(inputs)
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1  # set by train(); we call compute_loss directly
    return out


def test_settings_errors_name_the_value_and_the_fix():
    with pytest.raises(ValueError, match=r"ppo.algorithm .* got 'rlo'.*Did you mean 'rloo'"):
        PPOSettings(algorithm="rlo")
    with pytest.raises(ValueError, match=r"ppo.lam must be in \[0, 1\], got 1.5; try 0.95"):
        PPOSettings(lam=1.5)
    with pytest.raises(ValueError, match="cliprange_value must be >= 0.*got -1"):
        PPOSettings(cliprange_value=-1)
    with pytest.raises(ValueError, match="critic_warmup_steps must be an integer >= 0, got 2.5"):
        PPOSettings(critic_warmup_steps=2.5)
    assert "ppo.vf_coef" in PPOSettings.describe()
    assert ALGORITHMS == ("ppo", *A.ESTIMATORS)  # the light settings module lists the same estimators


def test_ppo_losses_never_read_masked_entries():
    g = torch.Generator().manual_seed(0)
    shape = (3, 6)
    mask = torch.rand(shape, generator=g) > 0.4
    logps = torch.randn(shape, generator=g).requires_grad_()
    values = torch.randn(shape, generator=g).requires_grad_()
    kw = dict(old_logps=torch.randn(shape, generator=g), advantages=torch.randn(shape, generator=g),
              old_values=torch.randn(shape, generator=g), returns=torch.randn(shape, generator=g),
              entropies=torch.rand(shape, generator=g), ref_logps=torch.randn(shape, generator=g))
    base = ppo_losses(logps, values=values, mask=mask, cliprange=0.2, cliprange_value=0.2, **kw)
    junk = {k: torch.where(mask, v, torch.full_like(v, float("nan"))) for k, v in kw.items()}
    other = ppo_losses(logps, values=values, mask=mask, cliprange=0.2, cliprange_value=0.2, **junk)
    for name in ("policy", "value", "entropy", "kl"):
        assert torch.equal(base[name], other[name]), name
    (other["policy"] + other["value"] + other["kl"]).backward()
    assert torch.all(logps.grad[~mask] == 0) and torch.all(values.grad[~mask] == 0)
    assert logps.grad[mask].abs().sum() > 0 and values.grad[mask].abs().sum() > 0


def test_gae_in_the_trainer_matches_the_hand_computed_case(tiny_dir, tmp_path):
    trainer = _trainer(tiny_dir, tmp_path, ppo=PPOSettings(gamma=0.9, lam=0.8, whiten_advantages=False))
    with torch.no_grad():  # V = 0.5 everywhere
        trainer.value_head.summary.weight.zero_()
        trainer.value_head.summary.bias.fill_(0.5)
    # one episode: turn 1 = tokens 0-1 (process reward 0.2), env tokens 2-4, turn 2 = tokens 5-6 (outcome 1.0)
    output = {"prompt_ids": torch.tensor([[5, 6, 7]]), "prompt_mask": torch.ones(1, 3, dtype=torch.long),
              "completion_ids": torch.tensor([[8, 9, 10, 11, 12, 13, 14]]),
              "completion_mask": torch.ones(1, 7, dtype=torch.long),
              "tool_mask": torch.tensor([[1, 1, 0, 0, 0, 1, 1]])}
    rewards, step_mask = A.pad_steps([[0.2, 1.0]])
    out = trainer._gae_batch(output, rewards, step_mask, A.pad_spans([[(0, 2), (5, 7)]]))
    # t6: d = 1 - .5 = .5, A = .5;  t5: d = .9*.5 - .5 = -.05, A = -.05 + .72*.5 = .31
    # t1: d = .2 + .45 - .5 = .15, A = .15 + .72*.31 = .3732;  t0: d = -.05, A = -.05 + .72*.3732 = .218704
    expected = torch.tensor([[0.218704, 0.3732, 0, 0, 0, 0.31, 0.5]])
    assert torch.allclose(out["advantages"], expected, atol=1e-5)
    assert torch.allclose(out["returns"], (expected + 0.5) * output["tool_mask"], atol=1e-5)
    assert torch.allclose(out["old_values"], 0.5 * output["tool_mask"].float())


def test_env_token_advantages_never_reach_the_loss(tiny_dir, tmp_path):
    trainer = _trainer(tiny_dir, tmp_path, peft=False)
    batch = _batch(trainer)
    env = (batch["tool_mask"] == 0) | (batch["completion_mask"] == 0)
    assert (env & (batch["completion_mask"] == 1)).any(), "the batch should hold env tokens between turns"
    assert torch.all(batch["advantages"][env] == 0) and torch.all(batch["returns"][env] == 0)
    loss = trainer.compute_loss(trainer.model, batch)
    poisoned = dict(batch)
    for key in ("advantages", "returns", "old_values"):
        poisoned[key] = torch.where(env, torch.full_like(batch[key], 1e6), batch[key])
    assert torch.equal(trainer.compute_loss(trainer.model, poisoned), loss)


@pytest.mark.slow
def test_ppo_steps_change_only_adapter_and_value_head_and_checkpoint_holds_the_head(tiny_dir, tmp_path):
    trainer = _trainer(tiny_dir, tmp_path, beta=0.01, save_strategy="steps", save_steps=2)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    changed = {n for n, p in trainer.model.named_parameters() if not torch.equal(before[n], p.detach())}
    assert {"v_head.summary.weight", "v_head.summary.bias"} <= changed
    assert all("lora_" in n or n.startswith("v_head.") for n in changed), sorted(changed)[:5]
    assert any("lora_" in n for n in changed)
    logs = trainer.state.log_history[0]
    for key in ("losses/policy", "losses/value", "losses/entropy", "losses/kl", "rewards/format", "episode/return",
                "values/mean", "ppo/clipfrac"):
        assert key in logs and math.isfinite(logs[key]), (key, sorted(logs))
    ckpt = tmp_path / "checkpoint-2"
    assert (ckpt / VALUE_HEAD_FILE).is_file() and (ckpt / "adapter_model.safetensors").is_file()
    fresh = _trainer(tiny_dir, tmp_path / "fresh")
    fresh._load_from_checkpoint(str(ckpt))
    for a, b in zip(fresh.value_head.parameters(), trainer.value_head.parameters(), strict=True):
        assert torch.equal(a.cpu(), b.detach().cpu())
    assert torch.equal(load_value_head(fresh.value_head, str(ckpt / VALUE_HEAD_FILE)).summary.weight,
                       trainer.value_head.summary.weight.detach())


@pytest.mark.slow
def test_critic_warmup_moves_only_the_value_head(tiny_dir, tmp_path):
    trainer = _trainer(tiny_dir, tmp_path, ppo=PPOSettings(critic_warmup_steps=1), max_steps=1)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    changed = {n for n, p in trainer.model.named_parameters() if not torch.equal(before[n], p.detach())}
    assert changed == {"v_head.summary.weight", "v_head.summary.bias"}, sorted(changed)[:5]


@pytest.mark.slow
def test_value_loss_falls_on_a_fixed_batch(tiny_dir, tmp_path):
    trainer = _trainer(tiny_dir, tmp_path)
    batch = _batch(trainer)
    opt = torch.optim.Adam([p for p in trainer.model.parameters() if p.requires_grad], lr=1e-3)
    value_losses = []
    for _ in range(8):
        trainer.compute_loss(trainer.model, batch).backward()
        opt.step()
        opt.zero_grad()
        value_losses.append(trainer._metrics["train"]["losses/value"][-1])
    assert value_losses[-1] < 0.5 * value_losses[0], value_losses


def test_critic_free_estimators_on_the_same_rollouts(tiny_dir, tmp_path):
    trainer = _trainer(tiny_dir, tmp_path, ppo=PPOSettings(algorithm="rloo"))
    assert trainer.value_head is None and not any("v_head" in n for n, _ in trainer.model.named_parameters())
    step_rewards = [[0.2, 1.0], [0.0, 1.0], [0.0, 0.0]]
    inputs = [{"step_rewards": r, "step_spans": [(0, 2), (5, 7)]} for r in step_rewards]
    trainer.num_generations = 3
    for name in A.ESTIMATOR_NAMES:
        for credit in ("step", "outcome"):
            trainer.ppo = PPOSettings(algorithm=name, credit=credit)
            adv = trainer._per_token_advantages(inputs, (3, 8))
            want = A.step_advantages(step_rewards, 3, name, credit, 1.0, trainer.scale_rewards)
            for b in range(3):
                assert torch.allclose(adv[b, [0, 1, 5, 6]], torch.tensor(want[b]).repeat_interleave(2))
                assert adv[b, 2:5].abs().sum() == 0 and adv[b, 7] == 0
    # process reward 0.2 on episode 0's first turn: with step credit its first turn gains over episode 1's
    # (RLOO: 1.2 - mean(1.0, 1.0, 0, 0) = .7 vs 1.0 - mean(1.2, 1.0, 0, 0) = .45)
    trainer.ppo = PPOSettings(algorithm="rloo", credit="step")
    adv = trainer._per_token_advantages(inputs, (3, 8))
    assert torch.allclose(adv[:2, 0], torch.tensor([0.7, 0.45]))


def test_window_context_takes_the_critic_free_estimators_and_refuses_ppo(tiny_dir, tmp_path):
    with pytest.raises(ValueError, match="critic-free algorithm .* or context='full'"):
        _trainer(tiny_dir, tmp_path / "ppo", env="FakeQAWindow-v0")
    trainer = _trainer(tiny_dir, tmp_path / "rloo", env="FakeQAWindow-v0",
                       ppo=PPOSettings(algorithm="rloo", credit="step"))
    out = _batch(trainer)
    eps = trainer.env_rollout.last_episodes
    want = A.step_advantages([e.step_rewards for e in eps], 3, "rloo", "step")
    rows = [(i, j) for i, e in enumerate(eps) for j in range(len(e.samples))]
    assert len(rows) > len(eps)
    for r, (i, j) in enumerate(rows):
        for k, (s, e) in eps[i].sample_steps(j):
            assert torch.allclose(out["advantages"][r, s:e], torch.tensor(want[i][k]).expand(e - s))


@pytest.mark.slow
def test_rloo_trains_through_trls_loss(tiny_dir, tmp_path):
    trainer = _trainer(tiny_dir, tmp_path, ppo=PPOSettings(algorithm="reinforce_pp_baseline"), max_steps=1)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    changed = {n for n, p in trainer.model.named_parameters() if not torch.equal(before[n], p.detach())}
    assert changed and all("lora_" in n for n in changed)
