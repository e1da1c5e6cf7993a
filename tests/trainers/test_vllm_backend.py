"""The vLLM path up to the VLLMGeneration.generate call, with a fake (no GPU here)."""

from types import SimpleNamespace

import torch

from tests.trainers.trainer_fakes import KEYS, VALUES, FakeQAEnv, expert_turns, register_fakes
from toolgym.trainers.grpo import EnvRolloutFunc
from toolgym.trainers.rollout import VLLMBackend
from toolgym.trainers.tasks import EnvSpec, task_dataset

register_fakes()


class FakeVLLMGeneration:
    """Mimics trl.generation.vllm_generation.VLLMGeneration.generate: per-token top-k logprob lists."""

    def __init__(self, tok):
        self.tok, self.max_completion_length, self.calls = tok, 999, []

    def generate(self, prompts, images, num_generations):
        assert images is None and num_generations == 1
        self.calls.append((len(prompts), self.max_completion_length))
        outs = []
        for p in prompts:
            text = self.tok.decode(p)
            key = next((k for k in KEYS if f"code of {k}?" in text), None)
            if key is None:  # a filler prompt
                ids = [self.tok.eos_token_id]
            else:
                turn = text.count("<|im_start|>assistant") - 1
                value = VALUES[KEYS.index(key)]
                ids = self.tok(expert_turns(key, value)[turn], add_special_tokens=False)["input_ids"]
                ids = ids + [self.tok.eos_token_id]
            outs.append(ids[: self.max_completion_length])
        return prompts, outs, [[[-0.25]] * len(o) for o in outs], None


class FakeAccelerator:
    device = torch.device("cpu")
    process_index = 0

    def gather(self, t):
        return t


def _trainer(tok, max_completion_length=200):
    return SimpleNamespace(use_vllm=True, accelerator=FakeAccelerator(), processing_class=tok,
                           vllm_generation=FakeVLLMGeneration(tok),
                           args=SimpleNamespace(max_completion_length=max_completion_length, temperature=1.0,
                                                top_k=0, top_p=1.0),
                           _log_metric=lambda name, value: None)


def test_vllm_backend_pads_and_restores(tiny):
    _, tok = tiny
    trainer = _trainer(tok)
    backend = VLLMBackend(trainer)
    env = FakeQAEnv()
    obs, _ = env.reset(seed=0)
    prompt = tok.apply_chat_template(list(obs), tools=env.chat_tools, add_generation_prompt=True)["input_ids"]
    gens = backend.generate([prompt], 7)
    assert len(gens) == 1 and len(gens[0].ids) <= 7 and gens[0].logprobs == [-0.25] * len(gens[0].ids)
    assert trainer.vllm_generation.calls == [(1, 7)] and trainer.vllm_generation.max_completion_length == 999
    assert backend.any_alive(True) and not backend.any_alive(False)


def test_rollout_func_through_vllm_backend(tiny):
    _, tok = tiny
    trainer = _trainer(tok)
    func = EnvRolloutFunc([EnvSpec("FakeQA-v0")], max_turn_tokens=64)
    prompts = [p for p in task_dataset([EnvSpec("FakeQA-v0")], 2, seed=0)["prompt"] for _ in range(2)]
    out = func(prompts, trainer)
    assert set(out) >= {"prompt_ids", "completion_ids", "logprobs", "env_mask", "step_rewards", "step_spans"}
    assert len(trainer.vllm_generation.calls) == 2  # two lock-step turns for four episodes
    for ids, mask, lps, spans in zip(out["completion_ids"], out["env_mask"], out["logprobs"], out["step_spans"],
                                     strict=True):
        assert len(ids) == len(mask) == len(lps)
        for s, e in spans:
            assert all(m == 1 for m in mask[s:e]) and all(lp == -0.25 for lp in lps[s:e])
    assert all(r[-1] > 0.9 for r in out["step_rewards"])  # answered right (minus the brevity term)


def test_windowed_episodes_through_vllm_backend_and_weight_sync(tiny):
    """context='window' runs the episodes before TRL's rollout_func call, so the trainer syncs vLLM's
    weights itself first (once per optimiser step, as TRL does); each step's sample keeps vLLM's log-probs."""
    from toolgym.trainers.grpo import ToolGRPOTrainer

    _, tok = tiny
    trainer = _trainer(tok)
    syncs = []
    trainer.vllm_generation.sync_weights = lambda: syncs.append(trainer.state.global_step)
    trainer.state, trainer._last_loaded_step = SimpleNamespace(global_step=3), 2
    for _ in range(2):
        ToolGRPOTrainer._sync_vllm_weights(trainer)
    trainer.state.global_step = 4
    ToolGRPOTrainer._sync_vllm_weights(trainer)
    assert syncs == [3, 4] and trainer._last_loaded_step == 4

    func = EnvRolloutFunc([EnvSpec("FakeQAWindow-v0")], max_turn_tokens=64)
    assert not func.append_only()
    eps = func.episodes([p for p in task_dataset([EnvSpec("FakeQA-v0")], 2, seed=0)["prompt"]], trainer)
    for ep in eps:  # search, answer: the context only grew, so both steps are one sample
        assert len(ep.steps) == 2 and len(ep.samples) == 1 and ep.info["result"]["success"]
        (sample,) = ep.samples
        assert [lp for lp, m in zip(sample.logprobs, sample.env_mask, strict=True) if m] == [-0.25] * sum(sample.env_mask)
        assert 0 in sample.env_mask and sample.completion_ids[-1] == tok.eos_token_id
