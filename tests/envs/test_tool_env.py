"""The ToolEnv machinery on a minimal task: add numbers to reach a target, then answer."""

import json

import pytest

from toolgym.envs.result import EpisodeResult
from toolgym.envs.tool import Tool, ToolResult
from toolgym.envs.tool_env import ELIDED, ToolEnv


class Add(Tool):
    name, description = "add", "Add n to the counter."
    parameters = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    timeout = None

    def __init__(self, env):
        self.env = env

    def run(self, n):
        self.env.counter += n
        return ToolResult(f"counter = {self.env.counter}" + " padding" * 50, metadata={"counter": self.env.counter})


class Answer(Tool):
    name, description = "answer", "Final answer."
    parameters = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    timeout = None

    def run(self, answer):
        return ToolResult("ok", metadata={"answer": answer})


class CounterEnv(ToolEnv):
    default_reward_weights = {**ToolEnv.default_reward_weights, "correct": 1.0}

    def _make_tools(self):
        return (Add(self), Answer())

    def _instructions(self):
        return "Reach the target."

    def _new_task(self, options):
        self.counter, self.answer = 0, None
        self.target = int(self.np_random.integers(1, 10))
        return f"Target: {self.target}"

    def _on_result(self, call, result, terms):
        if call.name == "answer":
            self.answer = result.metadata["answer"]
            terms.add("correct", float(self.answer == str(self.target)))
            return True
        return False

    def _task_info(self):
        return {"counter": self.counter}

    def _episode_result(self):
        right = self.answer == str(self.target)
        return EpisodeResult(success=right, score=float(right), answer=self.answer, gold=str(self.target))


def call(name, **arguments):
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


def test_reset_gives_system_and_task_and_is_seeded():
    env = CounterEnv()
    obs, info = env.reset(seed=1)
    assert [m["role"] for m in obs] == ["system", "user"]
    assert "Reach the target." in obs[0]["content"] and "add(n: integer)" in obs[0]["content"]
    assert info == {"turn": 0, "tool_calls": 0, "reward_terms": {}, "parse_error": None, "tool_error": None, "counter": 0}
    assert env.reset(seed=1)[0] == obs


def test_a_step_runs_calls_and_weighs_terms():
    env = CounterEnv()
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(call("add", n=2) + call("add", n=3))
    assert [m["role"] for m in obs] == ["system", "user", "assistant", "tool", "tool"]
    assert obs[-1]["content"].startswith("counter = 5")
    assert info["reward_terms"] == {"valid_call": pytest.approx(0.04)} and reward == pytest.approx(0.04)
    assert (terminated, truncated, info["tool_calls"], info["counter"]) == (False, False, 2, 5)


def test_answer_terminates_and_adds_final_info():
    env = CounterEnv()
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step(call("answer", answer=str(env.target)))
    assert terminated and not truncated
    assert info["result"]["gold"] == str(env.target) and info["reward_terms"]["correct"] == 1.0
    assert reward == pytest.approx(1.02)


def test_step_after_the_end_is_an_error_not_an_exception():
    env = CounterEnv()
    env.reset(seed=0)
    env.step(call("answer", answer="1"))
    obs, reward, terminated, truncated, info = env.step(call("add", n=1))
    assert terminated and not truncated and reward == pytest.approx(-0.1)
    assert "call reset()" in info["parse_error"] and obs[-1] == {"role": "tool", "content": "ok"}


@pytest.mark.parametrize(
    "action, key, fragment",
    [
        ("just chatting", "parse_error", "no tool call found"),
        ("", "parse_error", "no tool call found"),
        ("<tool_call>{oops}</tool_call>", "parse_error", "not valid JSON"),
        (call("ad", n=1), "tool_error", "Unknown tool 'ad'. Did you mean 'add'?"),
        (call("add", n="one"), "tool_error", "argument 'n' must be of type integer"),
        (call("add"), "tool_error", "missing required argument 'n'"),
    ],
)
def test_malformed_actions_are_penalised_and_explained(action, key, fragment):
    env = CounterEnv()
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(action)
    assert fragment in info[key]
    assert reward == pytest.approx(-0.1)
    assert fragment in obs[-1]["content"] or "Error" in obs[-1]["content"]
    assert not terminated and not truncated


def test_turn_budget_truncates():
    env = CounterEnv(max_turns=2)
    env.reset(seed=0)
    assert env.step(call("add", n=1))[3] is False
    _, _, terminated, truncated, info = env.step(call("add", n=1))
    assert truncated and not terminated and info["truncated_by"] == "turns"


def test_tool_call_budget_lets_the_agent_answer_then_truncates_on_the_next_call():
    env = CounterEnv(max_tool_calls=1, max_turns=10)
    env.reset(seed=0)
    _, _, _, truncated, _ = env.step(call("add", n=1))
    assert not truncated
    obs, _, _, truncated, info = env.step(call("add", n=1))
    assert truncated and info["truncated_by"] == "tool_calls" and info["counter"] == 1
    assert "budget of 1 tool calls is spent" in obs[-1]["content"]
    env.reset(seed=0)
    env.step(call("add", n=1))
    assert env.step(call("answer", answer="1"))[2] is True  # answering is free


def test_calls_per_turn_are_capped():
    env = CounterEnv(max_calls_per_turn=2)
    env.reset(seed=0)
    obs, *_, info = env.step(call("add", n=1) * 3)
    assert info["counter"] == 2 and "only 2 calls run per message" in obs[-1]["content"]


def test_long_results_and_actions_are_cut_with_a_marker():
    env = CounterEnv(max_tool_result_chars=20, max_action_chars=100)
    env.reset(seed=0)
    obs, *_ = env.step(call("add", n=1) + "x" * 1000)
    assert "[... cut:" in obs[2]["content"] and len(obs[2]["content"]) < 150
    assert "[... cut:" in obs[3]["content"] and obs[3]["content"].startswith("counter = 1")


def test_context_budget_truncates_and_the_observation_fits_the_space():
    env = CounterEnv(max_context_chars=600, max_tool_result_chars=None, max_turns=50)
    env.reset(seed=0)
    truncated = False
    while not truncated:
        obs, _, _, truncated, info = env.step(call("add", n=1))
    assert info["truncated_by"] == "context"
    assert env.observation_space.contains(obs)


def test_window_context_elides_old_results():
    env = CounterEnv(context="window", context_window=1)
    env.reset(seed=0)
    env.step(call("add", n=1))
    obs, *_ = env.step(call("add", n=1))
    assert obs[3]["content"] == ELIDED and obs[5]["content"].startswith("counter = 2")
    assert not env.context_append_only and CounterEnv().context_append_only


def test_observations_are_fresh_objects():
    env = CounterEnv()
    first, _ = env.reset(seed=0)
    second, *_ = env.step(call("add", n=1))
    assert all(a is not b for a, b in zip(first, second))
    first[0]["content"] = "mutated"
    assert env.step(call("add", n=1))[0][0]["content"] != "mutated"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"format": "herms"}, "Did you mean 'hermes'"),
        ({"context": "windw"}, "Did you mean 'window'"),
        ({"max_turns": -1}, "max_turns must be >= 0"),
        ({"max_tool_result_chars": -5}, r"max_tool_result_chars must be >= 0 \(or None for no limit\), got -5"),
        ({"max_turns": 0}, "max_turns and max_calls_per_turn must be >= 1"),
        ({"reward_weights": {"corect": 2}}, "Unknown reward term 'corect'. Did you mean 'correct'"),
        ({"render_mode": "rgb"}, "Unknown render_mode"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CounterEnv(**kwargs)


def test_reward_weights_override():
    env = CounterEnv(reward_weights={"valid_call": 0.5})
    env.reset(seed=0)
    assert env.step(call("add", n=1))[1] == pytest.approx(0.5)


def test_render_ansi():
    env = CounterEnv(render_mode="ansi")
    env.reset(seed=0)
    assert env.render().startswith("[system]\nReach the target.")
    env.step(call("add", n=2))
    text = env.render()
    assert "[assistant]" in text and "counter = 2" in text  # the whole conversation, every call


def test_render_human_prints_only_the_new_messages_and_returns_none(capsys):
    env = CounterEnv(render_mode="human")
    env.reset(seed=0)
    first = capsys.readouterr().out
    assert first.startswith("[system]\nReach the target.") and "[user]" in first
    env.step(call("add", n=2))
    second = capsys.readouterr().out
    assert second.startswith("[assistant]") and "counter = 2" in second and "[system]" not in second
    assert env.render() is None and capsys.readouterr().out == ""  # nothing new since the step
    env.reset(seed=1)  # a new episode prints from its start again
    assert capsys.readouterr().out.startswith("[system]")
