"""The warm start: oracle trajectories of every env as the rollout engine tokenises them, supervised
training on their sampled tokens (LoRA), the ``toolgym warm-start`` command and the train config's
``warm_start:`` stage."""

import json

import pytest
import torch

from toolgym.envs.registration import env_ids
from toolgym.envs.result import EpisodeResult
from toolgym.envs.scripted import OracleAgent
from toolgym.generation.chat import ChatTemplate
from toolgym.trainers.tasks import EnvSpec
from toolgym.trainers.warm_start import WarmStartConfig, oracle_samples, train_on_samples

# a short prompt in the tags format keeps episodes at ~300 tiny-tokenizer tokens
SMALL_QA = EnvSpec("MultiHopQA-v0", {"world": {"n_people": 60}, "top_k": 1, "format": "tags"},
                   system_prompt="Search, then answer.")


class RecordingOracle(OracleAgent):
    """The oracle, keeping every text it wrote (in the order the backend asked)."""

    def __init__(self):
        self.texts = []

    def act(self, env, observation):
        self.texts.append(super().act(env, observation))
        return self.texts[-1]


@pytest.mark.parametrize("env_id", env_ids())
def test_oracle_episodes_succeed_and_train_exactly_the_oracle_tokens(env_id, offline_kwargs, tiny_tokenizer):
    tok = tiny_tokenizer
    agent = RecordingOracle()
    # one episode at a time, so the recorded texts follow the episodes in order
    data = oracle_samples([EnvSpec(env_id, offline_kwargs(env_id))], tok,
                          WarmStartConfig(n_episodes=2, rollout_batch=1), agent=agent)
    assert data.failed == data.too_long == 0 and len(data.episodes) == 2
    closing = tok.convert_tokens_to_ids(ChatTemplate(tok).closing_token())
    texts = iter(agent.texts)
    for ep in data.episodes:
        assert EpisodeResult.from_info(ep.info).success
        mask = [0] * len(ep.completion_ids)
        for step in ep.steps:
            expected = tok(next(texts), add_special_tokens=False)["input_ids"] + [closing]
            assert ep.completion_ids[step.start:step.end] == expected
            mask[step.start:step.end] = [1] * (step.end - step.start)
        assert ep.env_mask == mask and (0 in mask or len(ep.steps) == 1)  # env tokens (tool results) are masked
    assert next(texts, None) is None


def test_records_are_taken_in_order_and_failures_are_dropped(tiny_tokenizer):
    data = oracle_samples([SMALL_QA], tiny_tokenizer, WarmStartConfig(n_episodes=5, rollout_batch=2))
    assert len(data.episodes) == 5
    examples = SMALL_QA.make().unwrapped.examples
    assert [e.info["question_id"] for e in data.episodes] == [examples[k].id for k in range(5)]
    # an oracle that answers wrongly never reaches the training data
    class Wrong(OracleAgent):
        def act(self, env, observation):
            return env.call("answer", answer="nobody")

    with pytest.raises(ValueError, match="no usable oracle episode out of 3: 3 did not succeed"):
        oracle_samples([SMALL_QA], tiny_tokenizer, WarmStartConfig(n_episodes=3), agent=Wrong())
    short = oracle_samples([SMALL_QA], tiny_tokenizer, WarmStartConfig(n_episodes=4, max_completion_tokens=
                                                                        min(e.tokens_used for e in data.episodes)))
    assert short.too_long >= 1 and short.failed == 0


def test_config_is_checked():
    with pytest.raises(ValueError, match="n_episodes must be >= 1"):
        WarmStartConfig(n_episodes=0)
    with pytest.raises(ValueError, match="steps > 0 or epochs > 0"):
        WarmStartConfig(epochs=0)
    with pytest.raises(ValueError, match="scheduler"):
        WarmStartConfig(scheduler="cosin")
    assert WarmStartConfig(lora={"r": 4}).lora.r == 4


def _sampled_loss(model, rows) -> float:
    """Mean next-token loss on the sampled tokens of ``rows``."""
    total, count = 0.0, 0
    with torch.no_grad():
        for p, c, m in rows:
            labels = torch.tensor([[-100] * len(p) + [t if keep else -100 for t, keep in zip(c, m, strict=True)]])
            n = int((labels[:, 1:] != -100).sum())
            total += model(input_ids=torch.tensor([p + c]), labels=labels).loss.item() * n
            count += n
    return total / count


@pytest.mark.slow
def test_sft_lowers_the_loss_and_changes_only_the_adapter(tiny, tmp_path):
    model, tok = tiny
    rows = oracle_samples([SMALL_QA], tok, WarmStartConfig(n_episodes=4)).rows()
    start = _sampled_loss(model, rows)
    before = [(p, p.detach().clone()) for p in model.parameters()]  # peft wraps these very tensors
    cfg = WarmStartConfig(steps=16, batch=2, lr=3e-2, lora={"r": 8, "alpha": 16})
    trainer = train_on_samples(model, tok, rows, cfg, output_dir=str(tmp_path), progress=False)
    assert len([r for r in trainer.state.log_history if "loss" in r]) == 16
    assert _sampled_loss(trainer.model, rows) < start - 0.1  # a random 2-layer model moves slowly through LoRA
    assert all(torch.equal(p, kept) for p, kept in before)  # the base weights did not move
    lora_b = [p for n, p in trainer.model.named_parameters() if "lora_B" in n]
    assert lora_b and all(p.abs().sum() > 0 for p in lora_b)  # the adapter (B starts at 0) did


@pytest.mark.slow
def test_full_model_sft_fits_the_oracle_tokens(tiny, tmp_path):
    model, tok = tiny
    rows = oracle_samples([SMALL_QA], tok, WarmStartConfig(n_episodes=4)).rows()
    start = _sampled_loss(model, rows)
    cfg = WarmStartConfig(steps=16, batch=2, lr=1e-2, lora={"enabled": False})
    trainer = train_on_samples(model, tok, rows, cfg, output_dir=str(tmp_path), progress=False)
    assert trainer.model is model and _sampled_loss(model, rows) < 0.6 * start


@pytest.mark.slow
def test_the_loss_is_on_sampled_tokens_only(tiny, tmp_path):
    # rows whose env tokens are random noise train exactly as rows whose env tokens are the real ones would,
    # when the sampled tokens agree: the loss never reads a label on an env token
    model, tok = tiny
    rows = oracle_samples([SMALL_QA], tok, WarmStartConfig(n_episodes=2)).rows()
    from toolgym.trainers.warm_start import _sft_args

    from trl import SFTTrainer
    from datasets import Dataset

    data = Dataset.from_dict({"input_ids": [p + c for p, c, _ in rows],
                              "assistant_masks": [[0] * len(p) + m for p, _, m in rows]})
    trainer = SFTTrainer(model, args=_sft_args(WarmStartConfig(steps=1), str(tmp_path), False), train_dataset=data,
                         processing_class=tok)
    labels = trainer.train_dataset["labels"]
    for (p, c, m), lab in zip(rows, labels, strict=True):
        assert lab == [-100] * len(p) + [t if keep else -100 for t, keep in zip(c, m, strict=True)]


@pytest.mark.slow
def test_warm_start_command_round_trip(tiny_dir, tmp_path, capsys):
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from toolgym.cli import main

    out = tmp_path / "ws"
    argv = ["warm-start", "--model", str(tiny_dir), "--env", "MultiHopQA-v0", "--kwargs", "world={n_people: 60}",
            "top_k=1", "--out", str(out), "--n", "4", "--steps", "3", "--lora-r", "4"]
    assert main(argv) == 0
    line = capsys.readouterr().out
    assert "warm start: 4 episodes (0 dropped)" in line and "loss" in line and str(out) in line
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 3 and len(metrics["loss_curve"]) == 3 and metrics["tokens_trained"] > 0
    assert AutoPeftModelForCausalLM.from_pretrained(str(out)) is not None  # the adapter reloads
    AutoModelForCausalLM.from_pretrained(str(out / "merged"))
    assert AutoTokenizer.from_pretrained(str(out)).chat_template
    assert main(argv) == 0  # complete: reused, not trained again
    assert "reusing" in capsys.readouterr().out
    assert main([*argv, "--seed", "1"]) == 2  # not with another setting
    assert "holds a complete warm start with another config" in capsys.readouterr().err
    assert main(["warm-start", "--model", str(tiny_dir), "--env", "MultiHopQA-v0", "--out", str(out), "--n", "0"]) == 2
    assert "n_episodes must be >= 1" in capsys.readouterr().err


@pytest.mark.slow
def test_train_config_warm_start_stage_then_grpo(tiny_dir, tmp_path):
    from toolgym.trainers.api import train

    out = tmp_path / "run"
    config = {"model": str(tiny_dir), "envs": [{"id": "MultiHopQA-v0", "kwargs": {"world": {"n_people": 60},
                                                                                   "top_k": 1}}],
              "max_turn_tokens": 8, "lora": {"r": 4, "alpha": 8},
              "warm_start": {"n_episodes": 4, "steps": 2, "lora": {"r": 4, "alpha": 8}},
              "grpo": {"output_dir": str(out), "per_device_train_batch_size": 9, "num_generations": 3,
                       "max_completion_length": 60, "max_steps": 1, "logging_steps": 1, "save_strategy": "no",
                       "beta": 0.0, "disable_tqdm": True}}
    trainer = train(config)
    warm = out / "warm_start"
    assert json.loads((warm / "metrics.json").read_text())["steps"] == 2
    assert trainer.state.global_step == 1
    assert json.loads((out / "final" / "adapter_config.json").read_text())["base_model_name_or_path"] == \
        str(warm / "merged")
    stamp = (warm / "metrics.json").stat().st_mtime
    train(config, overrides=["grpo.output_dir=" + str(out)])  # the complete warm start is reused
    assert (warm / "metrics.json").stat().st_mtime == stamp


@pytest.mark.parametrize("lora", [False, True])
def test_sampled_token_loss_equals_the_models_own_loss(tiny, lora):
    from peft import LoraConfig, get_peft_model

    from toolgym.trainers.warm_start import sampled_token_loss

    model, tok = tiny
    if lora:
        model = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM"))
    torch.manual_seed(0)
    ids = torch.randint(3, len(tok), (3, 12))
    att = torch.ones_like(ids)
    att[1, 9:] = 0  # a padded row
    labels = torch.full_like(ids, -100)
    labels[0, 4:8], labels[1, 2:9], labels[2, 10:] = ids[0, 4:8], ids[1, 2:9], ids[2, 10:]
    expected = model(input_ids=ids, attention_mask=att, labels=labels).loss
    assert torch.allclose(sampled_token_loss(model, ids, att, labels), expected, atol=1e-5)
    labels[2, 10:] = -100  # fewer labelled tokens: a different loss, still the same as the model's
    assert torch.allclose(sampled_token_loss(model, ids, att, labels),
                          model(input_ids=ids, attention_mask=att, labels=labels).loss, atol=1e-5)
    n = int((labels[:, 1:] != -100).sum())
    assert torch.allclose(sampled_token_loss(model, ids, att, labels, num_items=2 * n), expected.new_tensor(0) +
                          model(input_ids=ids, attention_mask=att, labels=labels).loss / 2, atol=1e-5)


def test_bf16_follows_the_hardware_unless_set(tmp_path, monkeypatch):
    """bf16: null turns autocast on exactly where the machine multiplies bf16 natively; true/false win."""
    from toolgym.trainers import warm_start as ws

    for native in (True, False):
        monkeypatch.setattr(ws, "native_bf16", lambda native=native: native)
        assert ws._sft_args(WarmStartConfig(), str(tmp_path), False).bf16 is native
    assert ws._sft_args(WarmStartConfig(bf16=False), str(tmp_path), False).bf16 is False
