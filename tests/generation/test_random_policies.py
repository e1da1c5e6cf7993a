"""A random policy samples anything (special tokens, half calls, stop tokens in odd places): the
ids trained stay the ids sampled, and no sampled text makes an env step raise."""

from __future__ import annotations

import gymnasium as gym
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import toolgym  # noqa: F401
from tests.fakes.backends import Recording, sampled_ids
from tests.generation.template_fakes import family_tokenizer
from toolgym.generation import NativeFormat
from toolgym.trainers.rollout import RolloutEngine


@pytest.mark.slow
@pytest.mark.parametrize("name", ["qwen3", "qwen3_5_think", "gptoss", "gemma4", "llama3_1", "glm4moe", "gemma"])
def test_random_model_trains_on_its_own_samples(tiny_tokenizer, name):
    from toolgym.trainers.tiny_model import TEST_SIZE, build_model

    tok = family_tokenizer(tiny_tokenizer, name)
    tok.pad_token = tok.eos_token
    backend = Recording(build_model(tok, **TEST_SIZE, seed=1), tok)
    envs = [gym.make("MultiHopQA-v0", format=NativeFormat(tok), max_turns=3, world={"n_people": 60})
            for _ in range(3)]
    eps = RolloutEngine(envs, tok, backend, max_completion_tokens=900, max_turn_tokens=16).run([0, 1, 2])
    sampled = sampled_ids(backend.log, eps)
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
def gptoss_and_qwen3_formats(tiny_tokenizer):
    return [NativeFormat(family_tokenizer(tiny_tokenizer, n)) for n in ("gptoss", "qwen3", "qwen3_5_think", "gemma4")]
