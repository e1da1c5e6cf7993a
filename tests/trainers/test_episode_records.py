"""Training writes episode records: a bounded sample per step, with each step's advantage and mask,
valid against the record's JSON Schema, for the GRPO and PPO trainers and windowed contexts."""

from __future__ import annotations

import json

import pytest
import torch

from tests.trainers.trainer_fakes import grpo_args, register_fakes
from toolgym.envs.record import schema
from toolgym.trainers.episode_records import FILE
from toolgym.trainers.tasks import EnvSpec

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema (the dev extra) checks records against the schema")
register_fakes()


def _trainer(tiny_dir, tmp_path, *, env="FakeQA-v0", credit="outcome", algorithm=None, log_episodes=4):
    from transformers import AutoTokenizer

    from toolgym.trainers.grpo import ToolGRPOTrainer
    from toolgym.trainers.ppo import PPOSettings, ToolPPOTrainer

    tok = AutoTokenizer.from_pretrained(tiny_dir)
    common = dict(envs=[EnvSpec(env)], args=grpo_args(tmp_path), max_turn_tokens=10, processing_class=tok,
                  num_tasks=64, log_episodes=log_episodes)
    if algorithm is not None:
        return ToolPPOTrainer(str(tiny_dir), ppo=PPOSettings(algorithm=algorithm), **common)
    return ToolGRPOTrainer(str(tiny_dir), credit=credit, **common)


def _generate(trainer):
    inputs = [{"prompt": p} for p in trainer.train_dataset[:3]["prompt"] for _ in range(3)]
    torch.manual_seed(0)
    trainer.model.train()  # as in trainer.train(): records say mode train
    return trainer._generate_and_score_completions(inputs)


def _records(tmp_path):
    return [json.loads(line) for line in (tmp_path / FILE).read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize(("env", "credit", "algorithm"), [("FakeQA-v0", "outcome", None), ("FakeQA-v0", "step", None),
                                                         ("FakeQAWindow-v0", "step", None), ("FakeQA-v0", None, "ppo")])
def test_a_step_writes_its_best_and_worst_episodes_with_advantages_and_masks(tiny_dir, tmp_path, env, credit,
                                                                            algorithm):
    trainer = _trainer(tiny_dir, tmp_path, env=env, credit=credit or "outcome", algorithm=algorithm)
    out = _generate(trainer)
    episodes = trainer.env_rollout.last_episodes
    records = _records(tmp_path)
    assert len(records) == 4  # log_episodes of the 9 episodes
    validator = jsonschema.Draft202012Validator(schema())
    for record in records:
        validator.validate(record)
        assert record["source"] == "train" and record["step"] == 0 and record["mode"] == "train"
        assert record["env"] == env and record["agent"] == tmp_path.name
    returns = sorted(ep.ret for ep in episodes)
    assert {records[0]["return"], records[-1]["return"]} <= set(returns)
    assert min(r["return"] for r in records) == returns[0] and max(r["return"] for r in records) == returns[-1]
    adv = out["advantages"]
    for record in records:
        # the record's episode: the one whose conversation it holds
        i = next(i for i, ep in enumerate(episodes) if ep.log.steps == [
            {k: v for k, v in s.items() if k != "train"} for s in record["steps"]])
        ep = episodes[i]
        assert len(record["steps"]) == len(ep.steps)
        for step, entry in zip(ep.steps, record["steps"], strict=True):
            train = entry["train"]
            sample = ep.samples[step.sample]
            assert train["mask"].startswith("1" * (step.end - step.start))  # the sampled tokens: trained
            assert set(train["mask"][step.end - step.start:]) <= {"0"}  # the env's tokens after them: masked
            assert len(train["tokens"]) == len(train["mask"])
            if adv.dim() == 1:
                assert train["advantage"] == pytest.approx(adv[i].item(), abs=1e-5)
            elif not trainer.rows_per_sample:
                assert train["advantage"] == pytest.approx(adv[i, step.start:step.end].mean().item(), abs=1e-5)
            assert "".join(train["tokens"][:step.end - step.start]) == trainer.processing_class.decode(
                sample.completion_ids[step.start:step.end])


@pytest.mark.slow
def test_log_episodes_zero_writes_nothing(tiny_dir, tmp_path):
    _generate(_trainer(tiny_dir, tmp_path, log_episodes=0))
    assert not (tmp_path / FILE).exists()
