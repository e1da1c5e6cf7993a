"""Every registered id: Gymnasium's checker, determinism, pickling, vector envs, and bad input."""

from __future__ import annotations

import json
import math
import pickle
import re
import warnings

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolgym.envs.checker import check_step
from toolgym.envs.registration import env_ids

ALL_IDS = env_ids()


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_check_env_passes_without_warnings(env_id, make_env):
    env = make_env(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)  # the render check makes an env for each render mode from the spec


def _rollout(env, seed: int, actions: list[str]):
    obs, info = env.reset(seed=seed)
    trace = [(obs, json.dumps(info, sort_keys=True))]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        trace.append((obs, reward, terminated, truncated, json.dumps(info, sort_keys=True)))
        if terminated or truncated:
            break
    return trace


def _scripted_actions(env, seed: int, n: int = 6) -> list[str]:
    """Oracle actions mixed with sampled junk, fixed in advance so two envs get the same list."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
    actions = []
    for i in range(n):
        if i % 2 == 0:
            actions.append(env.action_space.sample())
        else:
            action = env.unwrapped.oracle_action()
            actions.append(action)
            env.step(action)
    return actions


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_seeded_twin_rollouts_are_identical(env_id, make_env):
    a, b = make_env(env_id), make_env(env_id)
    for seed in (0, 1, 7):
        actions = _scripted_actions(make_env(env_id), seed)
        assert _rollout(a, seed, actions) == _rollout(b, seed, actions)
    # Different seeds give different tasks (at least one of three pairs differs).
    firsts = {json.dumps(a.reset(seed=s)[0]) for s in (0, 1, 2)}
    assert len(firsts) > 1


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_info_is_json_serialisable(env_id, make_env):
    env = make_env(env_id)
    _, info = env.reset(seed=0)
    json.dumps(info)
    done = False
    while not done:
        _, _, terminated, truncated, info = env.step(env.unwrapped.oracle_action())
        json.dumps(info)
        done = terminated or truncated


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_pickle_round_trip_continues_identically(env_id, make_env):
    env = make_env(env_id).unwrapped
    env.reset(seed=3)
    env.step(env.oracle_action())
    clone = pickle.loads(pickle.dumps(env))
    action = env.oracle_action()
    assert clone.oracle_action() == action
    assert clone.step(action) == env.step(action)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_oracle_solves_and_terminates(env_id, make_env):
    env = make_env(env_id)
    for seed in range(5):
        env.reset(seed=seed)
        terminated = truncated = False
        while not (terminated or truncated):
            _, _, terminated, truncated, info = env.step(env.unwrapped.oracle_action())
        assert terminated and not truncated
        assert info["result"]["success"] and info["result"]["score"] == 1.0


def _hermes_call(name: str, arguments) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


MALFORMED = {
    "empty": "",
    "whitespace": "   \n\t ",
    "plain text": "I am not sure what to do.",
    "bad json": "<tool_call>{name: search}</tool_call>",
    "unclosed call": '<tool_call>{"name": "search", "arguments": {"query": "x"}',
    "not an object": "<tool_call>[1, 2, 3]</tool_call>",
    "unknown tool": _hermes_call("serch", {"query": "x"}),
    "missing argument": _hermes_call("answer", {}),
    "extra argument": _hermes_call("answer", {"answer": "x", "confidence": 1}),
    "wrong type": _hermes_call("answer", {"answer": 42}),
    "arguments not object": _hermes_call("answer", [1]),
    "unknown tag": "<serch>x</serch>",
    "unclosed tag": "<answer>x",
    "deep nesting": "<tool_call>" + "[" * 50000 + "</tool_call>",
    "one megabyte": "<tool_call>" + "x" * (1 << 20),
    "nul and surrogates": "\x00\ud800<tool_call>\udfff</tool_call>",
}


@pytest.mark.parametrize("fmt", ["hermes", "tags"])
@pytest.mark.parametrize("name", list(MALFORMED))
@pytest.mark.parametrize("env_id", ALL_IDS)
def test_malformed_actions_get_an_error_observation_and_a_penalty(env_id, name, fmt, make_env):
    env = make_env(env_id, format=fmt)
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(MALFORMED[name])
    assert env.observation_space.contains(obs)
    assert not terminated
    assert info["parse_error"] or info["tool_error"], info
    assert reward < 0, info["reward_terms"]
    assert "rror" in obs[-1]["content"]


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_step_after_the_episode_ended(env_id, make_env):
    env = make_env(env_id).unwrapped
    env.reset(seed=0)
    terminated = truncated = False
    while not (terminated or truncated):
        _, _, terminated, truncated, _ = env.step(env.oracle_action())
    obs, reward, terminated2, truncated2, info = env.step(env.oracle_action())
    assert (terminated2, truncated2) == (terminated, truncated)
    assert "reset()" in info["parse_error"] and reward < 0
    assert env.observation_space.contains(obs)


def _check_contract(env, obs, reward, terminated, truncated, info, after_end=False) -> None:
    check_step(env, (obs, reward, terminated, truncated, info), after_end=after_end)


# Text that made step() raise or stall before (each found by fuzzing), as (action, env kwargs).
# ``{call:TOOL:ARG}`` is written in the env's own format by _hostile_action.
HOSTILE = {
    "json integer of 4,400 digits": ('<tool_call>{"name": "answer", "arguments": {"answer": ' + "1" * 4400 + "}}</tool_call>", {}),
    "arguments string of 5,000 [": ("<tool_call>" + json.dumps({"name": "answer", "arguments": "[" * 5000}) + "</tool_call>", {}),
    "arguments string with a 5,000-digit integer": (
        "<tool_call>" + json.dumps({"name": "answer", "arguments": '{"answer": ' + "7" * 5000 + "}"}) + "</tool_call>", {}),
    "answer 2**1e400": ("{call:answer:2**1e400}", {}),
    "answer of 5,000 digits": ("{call:answer:" + "9" * 5000 + "}", {"max_action_chars": 20_000}),
    "answer with a 5,000-digit exponent": ("{call:answer:1e" + "9" * 5000 + "}", {"max_action_chars": 20_000}),
    "11,111 unclosed tags": ("<search>x" * 11111, {"max_action_chars": 100_000}),
    "11,111 unclosed calls": ("<tool_call>{" * 11111, {"max_action_chars": 200_000}),
    "lone surrogates": ("\ud800{call:answer:\udfff}\udbff", {}),
    "think blocks in odd spacing": ("< think >{call:answer:x}</think >\n<think>\n\n</think>\n\n<THINK>", {}),
    "unclosed think around a call": ("<think>{call:answer:x}", {}),
}


def _hostile_action(env, template: str) -> str:
    def write(match):
        tool, argument = match.group(1), match.group(2)
        name = next((t for t in env.unwrapped.tools if t.name == tool), None)
        key = next(iter(name.parameters["properties"]), "answer") if name else "answer"
        return env.unwrapped.call(tool, **{key: argument})

    return re.sub(r"\{call:(\w+):(.*?)\}", write, template, flags=re.DOTALL)


@pytest.mark.parametrize("fmt", ["hermes", "tags"])
@pytest.mark.parametrize("case", list(HOSTILE))
@pytest.mark.parametrize("env_id", ALL_IDS)
def test_hostile_actions_found_by_fuzzing_keep_the_contract(env_id, case, fmt, make_env):
    template, kwargs = HOSTILE[case]
    env = make_env(env_id, format=fmt, **kwargs)
    env.reset(seed=1)  # SQLQuery-v0 seed 1: a numeric gold answer, the Fraction() case
    obs, reward, terminated, truncated, info = env.step(_hostile_action(env, template))
    _check_contract(env, obs, reward, terminated, truncated, info)
    if terminated:  # an answer was given: it is wrong, never a crash
        assert not info["result"]["success"], info
    ended = terminated or truncated
    obs, reward, terminated, truncated, info = env.step(env.unwrapped.oracle_action())  # and the env goes on
    _check_contract(env, obs, reward, terminated, truncated, info, after_end=ended)


_FRAGMENTS = st.sampled_from([
    "<tool_call>", "</tool_call>", '{"name": ', '"search"', '"answer"', '"calculator"', '"sql"', '"guess"',
    '"arguments": ', '{"query": ', '{"answer": ', '"x"', "}", "{", "[", "]", ",", ":", "null", "1e999",
    "<search>", "</search>", "<answer>", "</answer>", "<think>", "</think>", "<information>", " ", "\n", "\\",
])
# The generators that found the crashes of HOSTILE: numbers past what int() and float() take,
# nesting past the JSON reader's recursion, lone surrogates, reasoning blocks in odd spacing.
_BIG_NUMBERS = st.one_of(
    st.integers(4200, 6000).map(lambda n: "9" * n),
    st.integers(300, 2000).map(lambda n: f"1e{n}"),
    st.sampled_from(["2**1e400", "0.5**-1e400", "1e" + "9" * 5000, "-1e999", "NaN", "Infinity", "1" * 40 + ".5e999"]),
)
_NESTED = st.builds(lambda n, open_: open_ * n, st.integers(100, 20_000), st.sampled_from(["[", '{"a":', "[{"]))
_SURROGATES = st.text(st.characters(categories=["Cs"]), min_size=1, max_size=4)
_THINK = st.sampled_from(["<think>", "</think>", "< think >", "<think >", "<THINK>", "<think>\n\n", "\n</think>\n",
                          "<think/>", "<think><think>", "</think></think>", "\t<think>\r\n"])
_PAYLOADS = st.one_of(_BIG_NUMBERS, _NESTED, _SURROGATES, st.text(max_size=20))
_TOOLS = st.sampled_from(["answer", "search", "calculator", "sql", "describe", "list_tables", "guess"])
_ARGUMENT_NAMES = st.sampled_from(["answer", "query", "expression", "table", "like", "word"])


def _hermes_hostile(name, key, payload, how):
    if how == "raw":  # the payload as a JSON value: a number too long to read, or nesting
        return f'<tool_call>{{"name": "{name}", "arguments": {{"{key}": {payload}}}}}</tool_call>'
    if how == "string arguments":  # arguments JSON-encoded in a string, as some models send them
        return "<tool_call>" + json.dumps({"name": name, "arguments": payload}) + "</tool_call>"
    return _hermes_call(name, {key: payload})


_HOSTILE_CALLS = st.one_of(
    st.builds(_hermes_hostile, _TOOLS, _ARGUMENT_NAMES, _PAYLOADS, st.sampled_from(["raw", "string arguments", "value"])),
    st.builds(lambda name, payload: f"<{name}>{payload}</{name}>", _TOOLS, _PAYLOADS),
)
_ACTIONS = st.one_of(
    st.text(max_size=300),
    st.lists(st.one_of(_FRAGMENTS, st.text(max_size=10)), max_size=30).map("".join),
    st.lists(st.one_of(_HOSTILE_CALLS, _THINK, _SURROGATES, _FRAGMENTS), min_size=1, max_size=6).map("".join),
)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["hermes", "tags"])
@pytest.mark.parametrize("env_id", ALL_IDS)
def test_fuzz_step_never_raises(env_id, fmt, make_env):
    env = make_env(env_id, format=fmt, max_action_chars=100_000)
    env.reset(seed=0)

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
    @given(actions=st.lists(_ACTIONS, min_size=1, max_size=4))
    def run(actions):
        env.reset(seed=1)
        ended = False
        for action in actions:
            out = env.step(action)
            _check_contract(env, *out, after_end=ended)
            ended = ended or out[2] or out[3]

    run()


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["hermes", "tags"])
def test_fuzz_async_vector_env_never_dies(fmt):
    envs = gym.make_vec("ToolMath-v0", num_envs=2, vectorization_mode="async", format=fmt, max_action_chars=100_000)
    try:
        envs.reset(seed=0)

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        @given(actions=st.lists(_ACTIONS, min_size=2, max_size=2))
        def run(actions):
            obs, rewards, terminated, truncated, infos = envs.step(actions)
            assert len(obs) == 2 and all(math.isfinite(r) for r in rewards)
            assert not (terminated & truncated).any()

        run()
    finally:
        envs.close()


@pytest.mark.parametrize("env_id", ["ToolMath-v0", "SQLQuery-v0"])
def test_async_vector_env_survives_hostile_actions(env_id, make_env):
    writer = make_env(env_id)
    envs = gym.make_vec(env_id, num_envs=2, vectorization_mode="async", max_action_chars=100_000)
    try:
        for template, _ in HOSTILE.values():
            envs.reset(seed=1)
            obs, rewards, terminated, truncated, infos = envs.step([_hostile_action(writer, template), "\ud800 x \udfff"])
            assert len(obs) == 2 and rewards.shape == (2,)
            assert obs[1][-2]["content"] == "\ud800 x \udfff"  # the text comes back through shared memory as sent
        obs, rewards, *_ = envs.step(["<tool_call>{}</tool_call>"] * 2)  # still alive
        assert all("not a JSON object" in o[-1]["content"] or "rror" in o[-1]["content"] for o in obs)
    finally:
        envs.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_vector_envs(mode, offline_kwargs):
    envs = gym.make_vec("MultiHopQA-v0", num_envs=8, vectorization_mode=mode, **offline_kwargs("MultiHopQA-v0"))
    try:
        obs, infos = envs.reset(seed=0)
        assert len(obs) == 8 and all(o[1]["role"] == "user" for o in obs)
        questions = {o[1]["content"] for o in obs}
        assert len(questions) > 1  # each sub-env is seeded differently
        action = '<tool_call>{"name": "search", "arguments": {"query": "film"}}</tool_call>'
        obs, rewards, terminated, truncated, infos = envs.step([action] * 8)
        assert rewards.shape == (8,) and not terminated.any()
        assert all(o[-1]["role"] == "tool" and o[-1]["content"].startswith("Doc 1") for o in obs)
        assert list(infos["tool_calls"]) == [1] * 8
    finally:
        envs.close()
