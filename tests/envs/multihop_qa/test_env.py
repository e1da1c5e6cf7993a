"""MultiHopQA on the default synthetic world: scripted agents, rewards, info, options."""

from __future__ import annotations

import doctest
import json

import gymnasium as gym
import numpy as np
import pytest

import toolgym  # noqa: F401
from toolgym.envs.multihop_qa import env as env_module
from toolgym.envs.scripted import SCRIPTED_AGENTS, run_episode


def score(agent_name: str, fmt: str, n: int = 200, **kwargs) -> dict[str, float]:
    env = gym.make("MultiHopQA-v0", format=fmt, **kwargs)
    agent = SCRIPTED_AGENTS[agent_name]()
    infos = [run_episode(env, agent, seed=seed) for seed in range(n)]
    rows = [{**info, **info["result"]["extras"]["qa"]} for info in infos]
    return {key: float(np.mean([row[key] for row in rows])) for key in ("em", "f1", "return", "tool_calls")}


@pytest.mark.parametrize("fmt", ["hermes", "tags"])
def test_oracle_scores_em_one_on_200_episodes(fmt):
    result = score("oracle", fmt)
    assert result["em"] == 1.0 and result["f1"] == 1.0
    assert result["tool_calls"] >= 2  # it had to search every hop


@pytest.mark.parametrize("fmt", ["hermes", "tags"])
def test_answering_without_search_scores_near_zero(fmt):
    assert score("no-search", fmt)["em"] == 0.0


@pytest.mark.parametrize("fmt", ["hermes", "tags"])
def test_one_search_with_the_question_is_clearly_below_the_oracle(fmt):
    naive = score("naive-search", fmt)
    assert naive["em"] < 0.3
    assert naive["return"] < score("oracle", fmt)["return"] - 0.5


def test_reward_terms_of_an_oracle_episode():
    env = gym.make("MultiHopQA-v0")
    env.reset(seed=4)
    example = env.unwrapped.example
    hops = len(example.supporting_titles)
    terms_seen = []
    for _ in range(hops):
        _, reward, terminated, truncated, info = env.step(env.unwrapped.oracle_action())
        terms_seen.append(info["reward_terms"])
        assert reward == pytest.approx(sum(info["reward_terms"].values()))
    assert all(t.get("evidence", 0) >= 0.1 for t in terms_seen)  # each hop finds a new gold passage
    assert info["found_supporting"] == list(example.supporting_titles)
    _, reward, terminated, truncated, info = env.step(env.unwrapped.oracle_action())
    assert terminated and info["reward_terms"]["answer"] == 1.0
    assert info["result"]["gold"] == example.answer and info["result"]["answer"] == example.answer
    assert info["result"]["extras"]["qa"] == {"em": 1.0, "f1": 1.0, "subem": 1.0}
    assert info["result"]["success"] and info["result"]["score"] == 1.0


def test_repeated_query_is_penalised_and_evidence_counted_once():
    env = gym.make("MultiHopQA-v0")
    env.reset(seed=0)
    first = env.unwrapped.oracle_action()
    _, _, _, _, info1 = env.step(first)
    _, reward, _, _, info2 = env.step(first)
    assert "evidence" in info1["reward_terms"] and "evidence" not in info2["reward_terms"]
    assert info2["reward_terms"]["repeat_query"] == pytest.approx(-0.05)


# "gold extra" against "gold": precision 1/2, recall 1, so F1 = 2/3.
@pytest.mark.parametrize("metric, expected", [("f1", 2 / 3), ("em", 0.0), ("subem", 1.0)])
def test_reward_metric_is_selectable(metric, expected):
    env = gym.make("MultiHopQA-v0", reward=metric)
    seed = next(s for s in range(100) if len(env.reset(seed=s) and env.unwrapped.example.answer.split()) == 1)
    env.reset(seed=seed)
    gold = env.unwrapped.example.answer
    _, _, _, _, info = env.step(env.unwrapped.call("answer", answer=f"{gold} extra"))
    assert info["reward_terms"]["answer"] == pytest.approx(expected)


def test_tags_format_observations():
    env = gym.make("MultiHopQA-v0", format="tags")
    obs, _ = env.reset(seed=0)
    assert "<search>query</search>" in obs[0]["content"] and env.unwrapped.chat_tools is None
    obs, *_ = env.step(env.unwrapped.call("search", query=env.unwrapped.example.supporting_titles[0]))
    assert obs[-1]["role"] == "user" and obs[-1]["content"].startswith("<information>Doc 1")


def test_hermes_exposes_tool_schemas():
    env = gym.make("MultiHopQA-v0")
    names = [tool["function"]["name"] for tool in env.unwrapped.chat_tools]
    assert names == ["search", "answer"]


def test_reset_options_pick_a_question():
    env = gym.make("MultiHopQA-v0", split="test")
    examples = env.unwrapped.examples
    _, info = env.reset(options={"index": 5})
    assert info["question_id"] == examples[5].id
    _, info = env.reset(options={"question_id": examples[9].id})
    assert info["question_id"] == examples[9].id
    with pytest.raises(ValueError, match="No question with id 'nope'"):
        env.reset(options={"question_id": "nope"})


def test_splits_do_not_share_questions():
    questions = {
        split: {e.question for e in gym.make("MultiHopQA-v0", split=split).unwrapped.examples}
        for split in ("train", "validation", "test")
    }
    assert not questions["train"] & questions["test"]
    assert not questions["train"] & questions["validation"]


def test_example_corpus_mode_on_the_synthetic_world():
    env = gym.make("MultiHopQA-v0", corpus="example")
    env.reset(seed=1)
    info = run_episode(env, SCRIPTED_AGENTS["oracle"](), seed=1)
    assert info["result"]["extras"]["qa"]["em"] == 1.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"dataset": "hotpotqq"}, "Unknown dataset 'hotpotqq'. Did you mean 'hotpotqa'"),
        ({"reward": "f2"}, "Unknown reward metric 'f2'"),
        ({"split": "tset"}, "Unknown split 'tset'. Did you mean 'test'"),
        ({"corpus": "/no/such/file.jsonl"}, r"corpus='/no/such/file.jsonl' does not apply to dataset='synthetic'"),
        ({"data_files": "bamboogle.jsonl"}, r"data_files='bamboogle.jsonl' does not apply to dataset='synthetic'"),
        ({"limit": 5}, "limit=5 does not apply to dataset='synthetic'"),
        ({"top_k": 0}, "top_k must be >= 1, got 0"),
        ({"max_turns": -2}, "max_turns must be >= 0"),
        ({"dataset": "hotpotqa", "world": {"n_people": 5}}, "world= configures the synthetic dataset only"),
    ],
)
def test_bad_arguments_say_what_and_how_to_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gym.make("MultiHopQA-v0", **kwargs)


def test_dataset_and_split_aliases(shared_data):
    env = gym.make("MultiHopQA-v0", dataset="2wiki", split="dev", data_files=str(shared_data / "2wikimultihopqa_dev.sample.json"))
    assert (env.unwrapped.dataset, env.unwrapped.split) == ("2wikimultihopqa", "validation")
    assert gym.make("MultiHopQA-v0", split="dev").unwrapped.split == "validation"


def test_envs_share_one_retriever():
    a = gym.make("MultiHopQA-v0").unwrapped
    b = gym.make("MultiHopQA-v0").unwrapped
    assert a.search_tool.retriever is b.search_tool.retriever


def test_info_is_deterministic_json():
    env = gym.make("MultiHopQA-v0")
    runs = []
    for _ in range(2):
        runs.append(json.dumps(run_episode(env, SCRIPTED_AGENTS["naive-search"](), seed=11), sort_keys=True))
    assert runs[0] == runs[1]


def test_docstring_example_runs():
    result = doctest.testmod(env_module, raise_on_error=False, verbose=False)
    assert result.attempted > 0 and result.failed == 0
