"""A random policy samples anything (special tokens, half calls, stop tokens in odd places): the
ids trained stay the ids sampled, and no sampled text makes an env step raise."""

from __future__ import annotations

import gymnasium as gym
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from template_fakes import family_tokenizer

import toolgym  # noqa: F401
from toolgym.generation import HFBackend, NativeFormat
from toolgym.trainers.rollout import RolloutEngine


class Recording(HFBackend):
    def generate(self, prompts, max_new_tokens):
        gens = super().generate(prompts, max_new_tokens)
        self.log.append(gens)
        return gens


@pytest.mark.slow
@pytest.mark.parametrize("name", ["qwen3", "qwen3_5_think", "gptoss", "gemma4", "llama3_1", "glm4moe", "gemma"])
def test_random_model_trains_on_its_own_samples(base_tokenizer, name):
    from toolgym.trainers.tiny_model import TEST_SIZE, build_model

    tok = family_tokenizer(base_tokenizer, name)
    tok.pad_token = tok.eos_token
    backend = Recording(build_model(tok, **TEST_SIZE, seed=1), tok)
    backend.log = []
    envs = [gym.make("MultiHopQA-v0", format=NativeFormat(tok), max_turns=3, world={"n_people": 60})
            for _ in range(3)]
    eps = RolloutEngine(envs, tok, backend, max_completion_tokens=900, max_turn_tokens=16).run([0, 1, 2])
    sampled = {i: [] for i in range(3)}
    alive = [0, 1, 2]
    for gens in backend.log:  # replay the lock-step order
        for i, g in zip(alive, gens, strict=True):
            sampled[i].append(g.ids)
        alive = [i for i in alive if len(sampled[i]) < len(eps[i].steps)]
    for i, ep in enumerate(eps):
        seq = ep.completion_ids
        assert [seq[s.start:s.end] for s in ep.steps] == sampled[i][:len(ep.steps)]
        assert sum(ep.env_mask) == ep.sampled_tokens
    assert any(len(ep.steps) > 1 for ep in eps)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["<|channel|>", "analysis", "<|message|>", "<|end|>", "<|start|>", "assistant",
                                 " to=functions.", "search", "<|call|>", '{"query": ', '"x"', "}", "commentary json",
                                 "<tool_call>", "</tool_call>", "<think>", "</think>", "{", '"name"', ": ", "\n"]),
                max_size=12))
def test_no_text_makes_the_native_parser_raise(gptoss_and_qwen3_formats, parts):
    text = "".join(parts)
    for fmt in gptoss_and_qwen3_formats:
        parsed = fmt.parse(text, [])
        assert isinstance(parsed.calls, tuple) and isinstance(parsed.errors, tuple)


@pytest.fixture(scope="module")
def gptoss_and_qwen3_formats(base_tokenizer):
    return [NativeFormat(family_tokenizer(base_tokenizer, n)) for n in ("gptoss", "qwen3", "qwen3_5_think", "gemma4")]
