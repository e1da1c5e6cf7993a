"""The ``tool-call`` bench agent on three model families: the local chat model renders past calls in
the family's own syntax, reads the family's replies back, and hands the env hermes text."""

from __future__ import annotations

import json

import pytest

from tests.generation.template_fakes import family_tokenizer
from toolgym.benchmarks import BenchConfig, make_agent, run_benchmark
from toolgym.generation import Generation, GenerationBackend


class NativeScript(GenerationBackend):
    """Searches once in the family's syntax (after reasoning where it has some), then answers."""

    def __init__(self, tok, chat_model):
        self.tok, self.chat_model, self.prompts = tok, chat_model, []
        self.fmt = chat_model.native

    def generate(self, prompts, max_new_tokens):
        out = []
        for p in prompts:
            text = self.tok.decode(p)
            self.prompts.append(text)
            searched = "Doc 1" in text  # a search result is in the conversation
            call = self.fmt.write_call("answer", {"answer": "unknown"}) if searched else \
                self.fmt.write_call("search", {"query": "film director"})
            name = "answer" if searched else "search"
            ids = self.tok(call, add_special_tokens=False)["input_ids"]
            ids.append(self.tok.convert_tokens_to_ids(self.chat_model.template.closing_token([name])))
            out.append(Generation(ids, [0.0] * len(ids)))
        return out


@pytest.mark.parametrize(("name", "kwargs", "past_call"), [
    ("qwen3", {"enable_thinking": True}, '<tool_call>\n{"name": "search", "arguments": {"query": "film director"}}'),
    ("llama3_1", {}, '{"name": "search", "parameters": {"query": "film director"}}<|eot_id|>'),
    ("gptoss", {}, 'to=functions.search<|channel|>commentary json<|message|>{"query": "film director"}<|call|>'),
])
def test_tool_call_agent_speaks_each_family_natively(tmp_path, tiny_tokenizer, name, kwargs, past_call):
    from toolgym.benchmarks.models import LocalChatModel
    from toolgym.trainers.tiny_model import TEST_SIZE, build_model

    tok = family_tokenizer(tiny_tokenizer, name)
    tok.pad_token = tok.eos_token
    chat_model = LocalChatModel(build_model(tok, **TEST_SIZE), tok, engine="hf", chat_template_kwargs=kwargs)
    assert chat_model.native is not None and chat_model.native.family == name
    chat_model.backend = script = NativeScript(tok, chat_model)
    agent = make_agent("tool-call", model=chat_model)
    config = BenchConfig(agent="tool-call", out=str(tmp_path / name), n=2, batch_size=2, progress=False,
                         reports=False, env_kwargs={"max_turns": 3, "world": {"n_people": 60}})
    run_benchmark(config, agent=agent)
    rows = [json.loads(x) for x in (tmp_path / name / "episodes.jsonl").read_text().splitlines()]
    assert [(r["status"], r["turns"], r["tool_calls"]) for r in rows] == [("terminated", 2, 1)] * 2
    second = [p for p in script.prompts if "Doc 1" in p]
    assert len(second) == 2 and all(past_call in p for p in second)  # the past call in the family's syntax
    assert all(p.endswith(chat_model.template.generation_prompt) for p in script.prompts)
