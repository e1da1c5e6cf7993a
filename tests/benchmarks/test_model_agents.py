"""Model agents on the tiny offline Qwen2: local generation through the trainer's backend, LoRA
adapters, the no-retrieval and naive-RAG protocols, token accounting."""

from __future__ import annotations

import json

import pytest

from toolgym.benchmarks import BenchConfig, make_agent, run_benchmark
from toolgym.benchmarks.agents import extract_answer, question_of

pytest.importorskip("trl")
pytest.importorskip("peft")

ENV = {"max_turns": 2}


def _run(tmp_path, agent, model, **kw):
    out = tmp_path / kw.pop("dirname", agent)
    kw.setdefault("env_kwargs", ENV)
    config = BenchConfig(agent=agent, model=str(model), out=str(out), n=3, batch_size=3, max_new_tokens=12,
                         progress=False, reports=False, **kw)
    run_benchmark(config)
    return [json.loads(x) for x in (out / "episodes.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_tool_call_agent_generates_with_the_trainer_backend(tmp_path, tiny_dir):
    from toolgym.generation import HFBackend

    agent = make_agent("tool-call", model=str(tiny_dir), engine="auto")
    assert isinstance(agent.chat_model.backend, HFBackend)  # no vLLM here: falls back to HF generate
    rows = _run(tmp_path, "tool-call", tiny_dir)
    assert len(rows) == 3
    for r in rows:
        assert r["status"] in ("terminated", "truncated")
        assert r["tokens_in"] > 100 and 0 < r["tokens_out"] <= 12 * r["turns"]
    again = _run(tmp_path, "tool-call", tiny_dir, dirname="again")  # greedy: reproducible
    assert [r["tokens_out"] for r in again] == [r["tokens_out"] for r in rows]


@pytest.mark.slow
def test_policy_agent_loads_a_lora_adapter(tmp_path, tiny_dir):
    from peft import LoraConfig, get_peft_model

    from toolgym.trainers.tiny_model import load_tiny

    model, tok = load_tiny(tiny_dir)
    adapter = tmp_path / "adapter"
    get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).save_pretrained(adapter)
    tok.save_pretrained(adapter)
    rows = _run(tmp_path, "policy", adapter)
    assert all(r["agent"] == "policy:adapter" and r["tokens_out"] > 0 for r in rows)


def test_naive_rag_searches_once_then_the_model_answers(tmp_path, tiny_dir):
    rows = _run(tmp_path, "naive-rag", tiny_dir)
    for r in rows:
        assert (r["status"], r["turns"], r["tool_calls"]) == ("terminated", 2, 1)
        assert r["prediction"] is not None and r["tokens_in"] > 0
        assert r["evidence_recall"] is not None


def test_no_retrieval_answers_at_once(tmp_path, tiny_dir):
    rows = _run(tmp_path, "no-retrieval", tiny_dir)
    assert all((r["status"], r["turns"], r["tool_calls"]) == ("terminated", 1, 0) for r in rows)


def test_answer_extraction():
    assert extract_answer("<think>hmm, Paris?</think><answer> Lyon </answer>") == "Lyon"
    assert extract_answer('<tool_call>{"name": "answer", "arguments": {"answer": "1871"}}</tool_call>') == "1871"
    assert extract_answer("\nAnswer: Ann Lee\nbecause...") == "Ann Lee"
    assert extract_answer("") == ""
    assert question_of([{"role": "system", "content": "s"}, {"role": "user", "content": "Question: Who?"}]) == "Who?"


def test_agents_that_need_a_tool_the_env_lacks_say_which(tmp_path, tiny_dir):
    with pytest.raises(ValueError, match="needs a 'search' tool.*tool-call"):
        _run(tmp_path, "naive-rag", tiny_dir, envs=["ToolMath-v0"], env_kwargs={})
