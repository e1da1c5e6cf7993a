import pytest
import torch

from tests.trainers.trainer_fakes import grpo_args, register_fakes
from toolgym.trainers.grpo import ToolGRPOTrainer, step_advantages
from toolgym.trainers.tasks import EnvSpec

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


@pytest.mark.slow
@pytest.mark.parametrize("env", ["FakeQA-v0", "FakeQAWindow-v0"])
def test_lora_steps_change_only_adapter(tiny_dir, tmp_path, env):
    trainer = _trainer(tiny_dir, tmp_path, env=env)
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
    logps = _spy_logp_grads(trainer)
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
    from transformers import AutoTokenizer
    from trl import GRPOTrainer

    from tests.trainers.trainer_fakes import SingleTurnQAEnv

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


def _spy_logp_grads(trainer):
    """Make the loss keep the gradient of its per-token log-probs; returns where it is stored."""
    logps = {}
    orig = trainer._get_per_token_logps_and_entropies

    def spy(*a, **k):
        lp, ent, aux = orig(*a, **k)
        lp.retain_grad()
        logps["lp"] = lp
        return lp, ent, aux

    trainer._get_per_token_logps_and_entropies = spy
    return logps


@pytest.mark.slow
@pytest.mark.parametrize("credit", ["outcome", "step"])
def test_window_context_trains_one_row_per_step(tiny_dir, tmp_path, credit):
    """context='window': each step is a row (prompt = that step's windowed context), the ids trained
    are the ids sampled, each row carries its episode's (outcome) or its step's (step) advantage, and
    the padding rows that round the row count up get no loss."""
    from toolgym.trainers import advantages

    trainer = _trainer(tiny_dir, tmp_path, env="FakeQAWindow-v0", credit=credit)
    assert trainer.rows_per_sample
    # force at least three padding rows: the rows rounded up to TRL's groups of 3, then one more group
    trainer._common_row_count = lambda n: -(-n // 3) * 3 + 3
    inputs = [{"prompt": p} for p in trainer.train_dataset[:3]["prompt"] for _ in range(3)]
    trainer.model.train()
    torch.manual_seed(0)
    out = trainer._generate_and_score_completions(inputs)
    eps = trainer.env_rollout.last_episodes
    rows = [(i, j) for i, e in enumerate(eps) for j in range(len(e.samples))]
    assert len(eps) < len(rows) < sum(len(e.steps) for e in eps)  # steps whose context only grew share a row
    assert out["completion_ids"].shape[0] == -(-len(rows) // 3) * 3 + 3
    want = advantages.step_advantages([e.step_rewards for e in eps], 3, "grpo", credit)
    for r, (i, j) in enumerate(rows):
        sample, n = eps[i].samples[j], len(eps[i].samples[j].completion_ids)
        assert out["completion_ids"][r, :n].tolist() == sample.completion_ids
        assert out["prompt_ids"][r][out["prompt_mask"][r].bool()].tolist() == sample.prompt_ids
        assert out["tool_mask"][r, :n].tolist() == sample.env_mask and out["completion_mask"][r].sum() == n
        expected = torch.zeros(n)
        for k, (s, e) in eps[i].sample_steps(j):
            expected[s:e] = want[i][k]
        assert torch.allclose(out["advantages"][r, :n], expected)
    assert any(0 in out["tool_mask"][r, :len(eps[i].samples[j].completion_ids)] for r, (i, j) in enumerate(rows))
    distinct = [len({round(a, 6) for a in w}) for w in want]  # advantages within one episode
    assert max(distinct) == 1 if credit == "outcome" else max(distinct) > 1
    # TRL's reward logs count each episode once (its return sits on the episode's last row only)
    assert trainer._metrics["train"]["reward"][-1] == pytest.approx(sum(e.ret for e in eps) / len(eps), abs=1e-6)
    # the loss reaches every sampled token of the real rows and nothing of the padding rows
    logps = _spy_logp_grads(trainer)
    trainer.current_gradient_accumulation_steps = 1
    trainer.compute_loss(trainer.model, out).backward()
    grad = logps["lp"].grad
    loss_mask = out["completion_mask"] * out["tool_mask"]
    assert torch.all(grad[len(rows):] == 0) and torch.all(loss_mask[len(rows):] == 0)
    sampled = (loss_mask == 1)[:len(rows)]
    assert all(grad[r][sampled[r]].abs().sum() > 0 for r in range(len(rows)))
    assert torch.all(grad[:len(rows)][~sampled & (out["completion_mask"][:len(rows)] == 1)] == 0)  # env tokens


def test_step_rows_pad_and_label(tiny):
    from toolgym.trainers.grpo import sample_rows
    from toolgym.trainers.rollout import Episode, Sample, Step

    windowed = Episode(prompt_ids=[1], append_only=False,
                       steps=[Step(0, 2, 0.1, {}, sample=0), Step(0, 1, 1.0, {}, sample=1)],
                       samples=[Sample([1, 2], [3, 4], [1, 1], [-0.5, -0.5]), Sample([1, 5], [6], [1], [-0.1])])
    whole = Episode(prompt_ids=[1], completion_ids=[3, 9, 6], env_mask=[1, 0, 1], logprobs=[-1.0, 0.0, -1.0],
                    steps=[Step(0, 1, 0.0, {}), Step(2, 3, 0.5, {})])
    whole.samples = [Sample(whole.prompt_ids, whole.completion_ids, whole.env_mask, whole.logprobs)]
    prompts = ['{"env": 0, "seed": 7}', '{"env": 1, "seed": 8}']
    batch, rows = sample_rows([windowed, whole], prompts, 6, filler=0)
    assert rows == [(0, 0), (0, 1), (1, 0)]
    assert batch["prompt"][:3] == ['{"env": 0, "seed": 7, "steps": [0]}', '{"env": 0, "seed": 7, "steps": [1]}',
                                   prompts[1]]
    assert batch["prompt"][3:] == ["padding"] * 3 and batch["env_mask"][3:] == [[0]] * 3
    assert batch["episode_return"] == [None, pytest.approx(1.1), 0.5, None, None, None]
    assert batch["completion_ids"][:3] == [[3, 4], [6], [3, 9, 6]]
    assert batch["step_rewards"] == [[0.1, 1.0], [0.1, 1.0], [0.0, 0.5], [], [], []]
    assert batch["step_spans"][:3] == [[(0, 2)], [(0, 1)], [(0, 1), (2, 3)]]
    assert whole.sample_steps(0) == [(0, (0, 1)), (1, (2, 3))]
    assert windowed.sample_steps(1) == [(1, (0, 1))]
    with pytest.raises(ValueError, match="fewer than the 3 samples"):
        sample_rows([windowed, whole], prompts, 2, filler=0)


def test_system_prompt_wrapper_replaces_only_the_system_message():
    env = EnvSpec("FakeQA-v0", system_prompt="Be brief.").make()
    obs, _ = env.reset(seed=0)
    assert obs[0] == {"role": "system", "content": "Be brief."} and obs[1]["role"] == "user"
    assert env.unwrapped.messages[0]["content"] != "Be brief."


@pytest.mark.slow
def test_lora_grpo_step_on_qwen3_with_thinking_on(tiny_dir, tmp_path):
    """Qwen3's template re-spaces past reasoning; trained ids must still be the sampled ids."""
    from toolgym.generation.chat import shipped_templates
    from toolgym.trainers.tiny_model import load_tiny, save_tiny

    model, tok = load_tiny(tiny_dir)
    tok.chat_template = shipped_templates()["qwen3"]
    qwen3_dir = save_tiny(model, tok, tmp_path / "qwen3")
    trainer = ToolGRPOTrainer(str(qwen3_dir), envs=[EnvSpec("FakeQA-v0")], args=grpo_args(tmp_path / "out"),
                              max_turn_tokens=10, peft_config=_lora(), num_tasks=16,
                              chat_template_kwargs={"enable_thinking": True})
    inputs = [{"prompt": p} for p in trainer.train_dataset[:3]["prompt"] for _ in range(3)]
    out = trainer._generate_and_score_completions(inputs)
    eps = trainer.env_rollout.last_episodes
    assert any(len(e.steps) > 1 for e in eps)
    for b, ep in enumerate(eps):
        n = len(ep.completion_ids)
        assert out["completion_ids"][b, :n].tolist() == ep.completion_ids
        assert out["tool_mask"][b, :n].tolist() == ep.env_mask
        env_text = tok.decode([t for t, m in zip(ep.completion_ids, ep.env_mask, strict=True) if m == 0])
        assert "<think>\n\n</think>" not in env_text  # thinking on: no empty reasoning pre-written
        assert env_text.count("<|im_start|>assistant\n") == len(ep.steps) - 1
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    changed = {n for n, p in trainer.model.named_parameters() if not torch.equal(before[n], p.detach())}
    assert changed and all("lora_" in n for n in changed)


def test_env_spec_native_format_takes_the_policy_tokenizer(tiny):
    from toolgym.generation import NativeFormat
    from toolgym.generation.chat import shipped_templates

    _, tok = tiny
    tok.chat_template = shipped_templates()["qwen3"]
    spec = EnvSpec("MultiHopQA-v0", {"format": "native"})
    env = spec.make(tok, {"enable_thinking": False})
    assert isinstance(env.unwrapped.format, NativeFormat) and env.unwrapped.format.family == "qwen3"
    assert env.unwrapped.format.template.generation_prompt.endswith("<think>\n\n</think>\n\n")
    with pytest.raises(ValueError, match="needs its tokenizer"):
        spec.make()


@pytest.mark.slow
@pytest.mark.parametrize("credit,args", [("outcome", {}), ("step", {}), ("gigpo", {}),
                                         ("gigpo", {"importance_sampling_level": "sequence"})],
                         ids=["outcome", "step", "gigpo", "gigpo-gspo"])
def test_one_step_per_credit_mode_changes_the_adapter(tiny_dir, tmp_path, credit, args):
    trainer = _trainer(tiny_dir, tmp_path, credit=credit, max_steps=1, **args)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_" in n}
    trainer.train()
    assert any(not torch.equal(before[n], p.detach()) for n, p in trainer.model.named_parameters() if "lora_" in n)
    if credit == "gigpo":  # every group's episodes start in the same state: a shared step group at least
        assert trainer.state.log_history[0]["gigpo/anchor_step_share"] > 0


def test_gigpo_credit_puts_step_group_advantages_on_tokens(tiny_dir, tmp_path):
    from toolgym.trainers import advantages as A

    trainer = _trainer(tiny_dir, tmp_path, credit="gigpo")
    trainer.step_weight = 1.0
    inputs = [{"prompt": p} for p in trainer.train_dataset[:1]["prompt"] for _ in range(3)]
    # one group of 3: all start in state s; episodes 0 and 1 reach state a, episode 2 state b
    for x, rewards, states in zip(inputs, [[0.2, 1.0], [0.2, 0.0], [0.0, 0.0]], [["s", "a"], ["s", "a"], ["s", "b"]],
                                  strict=True):
        x["step_rewards"], x["step_spans"], x["step_states"] = rewards, [(0, 2), (5, 7)], states
    trainer.num_generations = 3
    adv = trainer._per_token_advantages(inputs, (3, 8))
    want = A.step_advantages([x["step_rewards"] for x in inputs], 3, credit="gigpo",
                             step_states=[x["step_states"] for x in inputs])
    for b in range(3):
        assert adv[b, 0] == pytest.approx(want[b][0]) and adv[b, 5] == pytest.approx(want[b][1])
        assert adv[b, 2:5].abs().sum() == 0 and adv[b, 7:].abs().sum() == 0  # env tokens and padding
    outcome = A.step_advantages([x["step_rewards"] for x in inputs], 3, credit="outcome")
    step_level = [[want[b][k] - outcome[b][k] for k in range(2)] for b in range(3)]
    # state a: returns 1.0 and 0.0 -> mirrored step-level advantages; state b seen once -> 0
    assert step_level[0][1] == pytest.approx(-step_level[1][1]) and step_level[0][1] > 0
    assert step_level[2][1] == pytest.approx(0.0, abs=1e-6)


def test_rollout_func_hands_each_steps_state_to_the_trainer(tiny_dir, tmp_path):
    trainer = _trainer(tiny_dir, tmp_path, credit="gigpo")
    prompts = [p for p in trainer.train_dataset[:2]["prompt"] for _ in range(3)]
    torch.manual_seed(0)
    batch = trainer.env_rollout(prompts, trainer)
    eps = trainer.env_rollout.last_episodes
    assert batch["step_states"] == [e.step_states for e in eps]
    assert [len(s) for s in batch["step_states"]] == [len(r) for r in batch["step_rewards"]]
    # the episodes of one task start from the same observation: one step group
    assert len({s[0] for s in batch["step_states"][:3]}) == 1 and batch["step_states"][0][0] != batch["step_states"][3][0]
