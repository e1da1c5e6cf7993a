"""Every registered id: Gymnasium's checker, determinism, pickling, vector envs, and bad input."""

from __future__ import annotations

import json
import math
import pickle
import warnings

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
        assert info.get("em", info.get("success")) == 1.0


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


_FRAGMENTS = st.sampled_from([
    "<tool_call>", "</tool_call>", '{"name": ', '"search"', '"answer"', '"calculator"', '"sql"', '"guess"',
    '"arguments": ', '{"query": ', '{"answer": ', '"x"', "}", "{", "[", "]", ",", ":", "null", "1e999",
    "<search>", "</search>", "<answer>", "</answer>", "<think>", "</think>", "<information>", " ", "\n", "\\",
])
_ACTIONS = st.one_of(
    st.text(max_size=300),
    st.lists(st.one_of(_FRAGMENTS, st.text(max_size=10)), max_size=30).map("".join),
)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_fuzz_step_never_raises(env_id, make_env):
    env = make_env(env_id)
    env.reset(seed=0)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(actions=st.lists(_ACTIONS, min_size=1, max_size=4))
    def run(actions):
        env.reset(seed=0)
        for action in actions:
            obs, reward, terminated, truncated, info = env.step(action)
            assert env.observation_space.contains(obs)
            assert isinstance(reward, float) and math.isfinite(reward)
            assert not (terminated and truncated)
            json.dumps(info)

    run()


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
