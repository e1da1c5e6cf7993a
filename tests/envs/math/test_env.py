"""ToolMath-v0: the oracle solves every problem, answers are checked numerically, GSM8K loads."""

import io
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import toolgym  # noqa: F401 - registers the ids
from toolgym.cli import main
from toolgym.envs.math.calculator import evaluate, format_number, is_finite_decimal
from toolgym.envs.math.env import answers_match, parse_answer
from toolgym.envs.math.problems import TEMPLATES, generate_problem, gsm8k_problem, load_gsm8k

GSM8K_TINY = Path(__file__).parent / "data" / "gsm8k_tiny.jsonl"


def run_oracle(env, seed):
    obs, info = env.reset(seed=seed)
    total, terms = 0.0, []
    terminated = truncated = False
    while not (terminated or truncated):
        obs, reward, terminated, truncated, info = env.step(env.unwrapped.oracle_action())
        total += reward
        terms.append(info["reward_terms"])
    return total, terms, terminated, truncated, info


@pytest.mark.parametrize("fmt", ["hermes", "tags"])
def test_oracle_solves_50_problems_with_the_maximum_return(fmt):
    env = gym.make("ToolMath-v0", format=fmt)
    for seed in range(50):
        total, terms, terminated, truncated, info = run_oracle(env, seed)
        assert terminated and not truncated and info["result"]["success"] and info["result"]["score"] == 1.0
        assert all(v >= 0 for step in terms for v in step.values()), terms
        # Every gold intermediate value reached: the most progress reward there is.
        assert info["progress"] == info["result"]["extras"]["math"]["gold_steps"]
        assert total == pytest.approx(1.0 + 0.05 * info["result"]["extras"]["math"]["gold_steps"] + 0.02 * (info["tool_calls"] + 1))


def test_every_template_gives_consistent_problems():
    rng = np.random.default_rng(0)
    for name in TEMPLATES:
        for _ in range(20):
            problem = generate_problem(rng, (name,))
            assert problem.id.startswith(name)
            assert problem.steps and problem.steps[-1][1] == problem.answer
            # Every step replays on the calculator, and answers are finite decimals, so an answer
            # written out in full is exactly right.
            assert all(format_number(evaluate(expr)) == value for expr, value in problem.steps)
            assert is_finite_decimal(problem.value)


@pytest.mark.parametrize(("text", "ok"), [
    ("13.75", True), ("$13.75", True), ("13.750", True), ("The answer is 13.75.", True), ("55/4", True),
    ("13.7500001", True), ("13.76", False), ("13", False), ("I don't know", False), ("", False),
])
def test_answer_check_is_numeric(text, ok):
    from fractions import Fraction

    assert answers_match(parse_answer(text), Fraction(55, 4), 1e-6) is ok


def test_wrong_answer_and_refused_expression_are_scored():
    env = gym.make("ToolMath-v0", max_action_chars=20_000)
    env.reset(seed=0)
    call = '<tool_call>{"name": "calculator", "arguments": {"expression": "9**9**9"}}</tool_call>'
    obs, reward, terminated, truncated, info = env.step(call)
    assert "would have about 369693100 digits" in obs[-1]["content"] and info["tool_error"]
    assert info["reward_terms"] == {"calc_error": -0.05} and not terminated
    big = '<tool_call>{"name": "calculator", "arguments": {"expression": "' + "9" * 10_000 + '"}}</tool_call>'
    obs, reward, *_ = env.step(big)
    assert "10000 characters; the limit is 300" in obs[-1]["content"] and reward < 0
    obs, reward, terminated, truncated, info = env.step('<tool_call>{"name": "answer", "arguments": {"answer": "-1"}}</tool_call>')
    assert terminated and info["result"]["success"] is False and info["result"]["score"] == 0.0 and info["reward_terms"]["answer"] == 0.0
    assert info["result"]["gold"] == env.unwrapped.problem.answer


def test_gsm8k_from_a_local_file_in_the_official_format():
    problems = load_gsm8k("test", GSM8K_TINY)
    assert [p.answer for p in problems] == ["72", "5550", "0.28"]
    assert problems[1].steps[-1] == ("2220*2.5", "5550") and len(problems[1].steps) == 4
    env = gym.make("ToolMath-v0", dataset="gsm8k", split="test", data_files=str(GSM8K_TINY))
    for index in range(3):
        env.reset(seed=0, options={"index": index})
        assert env.unwrapped.problem.source == "gsm8k"
        terminated = False
        while not terminated:
            _, _, terminated, truncated, info = env.step(env.unwrapped.oracle_action())
            assert not truncated
        assert info["result"]["success"]


def test_gsm8k_errors_say_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="no '#### answer' line"):
        gsm8k_problem({"question": "q", "answer": "no final line"}, 0, "train")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_gsm8k("train", tmp_path / "missing.jsonl")
    with pytest.raises(ValueError, match="data_files= and limit= apply to dataset='gsm8k' only"):
        gym.make("ToolMath-v0", data_files=str(GSM8K_TINY))
    with pytest.raises(ValueError, match="Did you mean 'shopping'"):
        gym.make("ToolMath-v0", templates=["shoping"])


def play(monkeypatch, capsys, env_id, actions, *args):
    """Drive ``toolgym play`` with typed messages (each ends with an empty line)."""
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(f"{a}\n\n" for a in actions)))
    assert main(["play", env_id, *args]) == 0
    return capsys.readouterr().out


def test_play_session(monkeypatch, capsys):
    env = gym.make("ToolMath-v0", format="tags")
    env.reset(seed=3)
    actions = []
    for _ in range(5):
        actions.append(env.unwrapped.oracle_action())
        if env.step(actions[-1])[2]:
            break
    out = play(monkeypatch, capsys, "ToolMath-v0", actions, "--seed", "3", "--kwargs", "format=tags")
    assert "Problem:" in out and "episode over (terminated)" in out
    final = json.loads(out[out.index("{", out.index("episode over")):])
    assert final["result"]["success"] is True


def test_docstring_examples():
    import doctest

    from toolgym.envs.math import calculator, env

    for module in (calculator, env):
        assert doctest.testmod(module).failed == 0


def test_gsm8k_from_the_hub_uses_the_official_id(monkeypatch):
    datasets = pytest.importorskip("datasets")
    records = [json.loads(line) for line in GSM8K_TINY.read_text().splitlines()]
    calls = []

    def fake_load_dataset(path, name, split):
        calls.append((path, name, split))
        return records

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    problems = load_gsm8k("test", limit=2)
    assert calls == [("openai/gsm8k", "main", "test")]
    assert [p.id for p in problems] == ["gsm8k-test-0", "gsm8k-test-1"]


@pytest.mark.parametrize("fmt", ["hermes", "tags"])
@pytest.mark.parametrize("text", ["2**1e400", "1e" + "9" * 5000, "9" * 5000, "(" * 5000 + "1"])
def test_answers_too_big_to_compute_are_wrong_not_crashes(fmt, text):
    env = gym.make("ToolMath-v0", format=fmt, max_action_chars=20_000)
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(env.unwrapped.call("answer", answer=text))
    assert terminated and info["result"]["success"] is False and info["reward_terms"]["answer"] == 0.0


def test_overflowing_calculator_call_is_a_calc_error():
    env = gym.make("ToolMath-v0", format="tags")
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step("<calculator>2**1e400</calculator>")
    assert info["reward_terms"] == {"calc_error": -0.05} and "10**308 digits" in info["tool_error"]
