import pytest
import torch
from trainer_fakes import grpo_args, register_fakes

from toolgym.trainers.grpo import EnvSpec, ToolGRPOTrainer, step_advantages

register_fakes()


def _lora():
    from peft import LoraConfig

    return LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM")


def _trainer(tiny_dir, tmp_path, env="FakeQA-v0", credit="outcome", peft=True, max_turn_tokens=10, **args):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_dir)
    return ToolGRPOTrainer(str(tiny_dir), envs=[EnvSpec(env)], args=grpo_args(tmp_path, **args), credit=credit,
                           max_turn_tokens=max_turn_tokens, processing_class=tok, peft_config=_lora() if peft else None,
                           num_tasks=64)


def test_step_advantages_single_step_is_grpo():
    rewards = [[1.0], [0.0], [0.5], [0.2], [0.2], [0.9]]
    adv = step_advantages(rewards, 3)
    r = torch.tensor([x[0] for x in rewards]).view(-1, 3)
    expected = ((r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + 1e-4)).flatten()
    assert torch.allclose(torch.tensor([a[0] for a in adv]), expected)


def test_step_advantages_differ_by_process_reward():
    # same outcome, different process rewards on the first step -> different first-step advantages
    adv = step_advantages([[0.2, 1.0], [0.0, 1.0], [0.0, 0.0]], 3)
    assert adv[0][0] > adv[1][0] and adv[0][1] == adv[1][1]


def test_lora_steps_change_only_adapter(tiny_dir, tmp_path):
    trainer = _trainer(tiny_dir, tmp_path)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    changed = {n for n, p in trainer.model.named_parameters() if not torch.equal(before[n], p.detach())}
    assert changed and all("lora_" in n for n in changed), sorted(changed)[:5]
    assert any("lora_" in n for n in changed)
    logs = trainer.state.log_history[0]
    for key in ("rewards/format", "tools/calls", "tools/parse_error_rate", "episode/turns", "episode/length",
                "episode/truncated", "answer/em", "answer/f1"):
        assert key in logs, (key, sorted(logs))


def test_env_tokens_get_no_loss_and_ids_match_rollout(tiny_dir, tmp_path):
    trainer = _trainer(tiny_dir, tmp_path, credit="step")
    inputs = [{"prompt": p} for p in trainer.train_dataset[:3]["prompt"] for _ in range(3)]
    torch.manual_seed(0)
    out = trainer._generate_and_score_completions(inputs)
    eps = trainer.env_rollout.last_episodes
    assert any(len(e.steps) > 1 for e in eps)
    for b, ep in enumerate(eps):  # ids trained (the padded batch) == ids sampled by the rollout
        n = len(ep.completion_ids)
        assert out["completion_ids"][b, :n].tolist() == ep.completion_ids
        assert out["tool_mask"][b, :n].tolist() == ep.env_mask
        assert out["prompt_ids"][b][out["prompt_mask"][b].bool()].tolist() == ep.prompt_ids
    # gradient of the loss w.r.t. the per-token log-probs is zero on every env token
    logps = {}
    orig = trainer._get_per_token_logps_and_entropies

    def spy(*a, **k):
        lp, ent, aux = orig(*a, **k)
        lp.retain_grad()
        logps["lp"] = lp
        return lp, ent, aux

    trainer._get_per_token_logps_and_entropies = spy
    trainer.current_gradient_accumulation_steps = 1  # set by train(); we call compute_loss directly
    trainer.model.train()
    loss = trainer.compute_loss(trainer.model, out)
    loss.backward()
    grad = logps["lp"].grad
    env_tokens = (out["tool_mask"] == 0) & (out["completion_mask"] == 1)
    assert env_tokens.any() and torch.all(grad[env_tokens] == 0)
    sampled = (out["tool_mask"] == 1) & (out["completion_mask"] == 1)
    assert grad[sampled].abs().sum() > 0


def test_step_credit_gives_steps_their_own_advantage(tiny_dir, tmp_path):
    trainer = _trainer(tiny_dir, tmp_path, credit="step")
    inputs = [{"prompt": p} for p in trainer.train_dataset[:3]["prompt"] for _ in range(3)]
    # two episodes of one group: step 1 process rewards 0.2 vs 0, same later rewards
    inputs = inputs[:3]
    for x, rewards in zip(inputs, [[0.2, 1.0], [0.0, 1.0], [0.0, 0.0]], strict=True):
        x["step_rewards"], x["step_spans"] = rewards, [(0, 2), (5, 7)]
    trainer.num_generations = 3
    adv = trainer._per_token_advantages(inputs, (3, 8))
    assert adv[0, 0] > adv[1, 0] and adv[0, 5] == adv[1, 5] and adv[0, 2:5].abs().sum() == 0
    assert adv[0, 0] != adv[0, 5]


@pytest.mark.parametrize("credit", ["outcome", "step"])
def test_single_turn_equals_plain_trl(tiny_dir, tmp_path, credit):
    """Single-turn env: our trainer's batch and loss equal plain trl.GRPOTrainer's (same seed)."""
    from trainer_fakes import SingleTurnQAEnv
    from transformers import AutoTokenizer
    from trl import GRPOTrainer

    ours = _trainer(tiny_dir, tmp_path / "a", env="FakeQA1-v0", credit=credit, peft=False,
                    max_turn_tokens=1000)
    rows = ours.train_dataset[:3]["prompt"]
    import json

    envs = {}

    def prompt_of(row):
        env = SingleTurnQAEnv()
        obs, _ = env.reset(seed=json.loads(row)["seed"])
        envs[obs[1]["content"]] = env
        return [dict(m) for m in obs]

    tok = AutoTokenizer.from_pretrained(tiny_dir)

    def env_reward(prompts, completions, completion_ids, **_):
        out = []
        for p, ids in zip(prompts, completion_ids, strict=True):
            env = SingleTurnQAEnv()
            env.reset(seed=json.loads([r for r in rows if prompt_of(r) == p][0])["seed"])
            # the env sees the sampled text verbatim (special tokens kept, the closing eos dropped)
            text = tok.decode(ids[:-1] if ids[-1] == tok.eos_token_id else ids, skip_special_tokens=False)
            out.append(env.step(text)[1])
        return out

    from datasets import Dataset

    plain = GRPOTrainer(str(tiny_dir), reward_funcs=[env_reward], args=grpo_args(tmp_path / "b"),
                        train_dataset=Dataset.from_dict({"prompt": [prompt_of(r) for r in rows]}),
                        processing_class=AutoTokenizer.from_pretrained(tiny_dir))
    torch.manual_seed(0)
    a = ours._generate_and_score_completions([{"prompt": r} for r in rows for _ in range(3)])
    torch.manual_seed(0)
    b = plain._generate_and_score_completions([{"prompt": prompt_of(r)} for r in rows for _ in range(3)])
    assert torch.equal(a["completion_ids"], b["completion_ids"])
    assert torch.equal(a["prompt_ids"], b["prompt_ids"])
    assert b["advantages"].abs().sum() > 0
    adv_a = a["advantages"] if a["advantages"].dim() == 1 else a["advantages"][:, 0]
    assert torch.allclose(adv_a, b["advantages"], atol=1e-6)
    for t in (ours, plain):
        t.model.train()
        t.current_gradient_accumulation_steps = 1  # set by train(); we call compute_loss directly
    la, lb = ours.compute_loss(ours.model, a), plain.compute_loss(plain.model, b)
    assert torch.allclose(la, lb, atol=1e-6), (la, lb)


def test_window_context_is_refused_with_a_clear_error():
    import gymnasium as gym
    from trainer_fakes import FakeQAEnv

    from toolgym.trainers.grpo import EnvRolloutFunc

    if "FakeQAWindow-v0" not in gym.registry:
        gym.register("FakeQAWindow-v0", entry_point=FakeQAEnv, kwargs={"context": "window"},
                     disable_env_checker=True)
    func = EnvRolloutFunc([EnvSpec("FakeQAWindow-v0")])
    with pytest.raises(NotImplementedError, match="context='full'"):
        func._envs_for([{"env": 0, "seed": 0}])


def test_system_prompt_wrapper_replaces_only_the_system_message():
    env = EnvSpec("FakeQA-v0", system_prompt="Be brief.").make()
    obs, _ = env.reset(seed=0)
    assert obs[0] == {"role": "system", "content": "Be brief."} and obs[1]["role"] == "user"
    assert env.unwrapped.messages[0]["content"] != "Be brief."
