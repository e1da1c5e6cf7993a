"""The trainers' fake envs are ToolEnvs that keep the env contract (checked as a third-party env is)."""

import gymnasium as gym
import pytest
from tests.trainers.trainer_fakes import KEYS, VALUES, FakeQAEnv, SingleTurnQAEnv, register_fakes

from toolgym.envs.checker import check_tool_env

register_fakes()


@pytest.mark.parametrize("env", [FakeQAEnv(), FakeQAEnv(context="window", max_turns=4), SingleTurnQAEnv()],
                         ids=["full", "window", "single-turn"])
def test_fakes_pass_the_checker(env):
    # Gymnasium's determinism check steps twice: a one-step env cannot pass it
    check_tool_env(env, skip_gymnasium_check=env.max_turns == 1)


@pytest.mark.parametrize("env_id", ["FakeQA-v0", "FakeQAWindow-v0"])
def test_registered_fakes_pass_the_checker(env_id):
    check_tool_env(gym.make(env_id))


def test_fake_rewards_and_result():
    env = FakeQAEnv()
    env.reset(seed=0)
    key, value = env.key, env.value
    assert VALUES[KEYS.index(key)] == value
    action = env.oracle_action()
    obs, reward, terminated, truncated, info = env.step(action)
    assert obs[-1] == {"role": "tool", "content": f"{key} has code {value}"}
    assert info["reward_terms"] == pytest.approx({"valid_call": 0.0, "evidence": 0.2, "brevity": -len(action) / 1000})
    obs, reward, terminated, truncated, info = env.step(env.oracle_action())
    assert terminated and info["result"] == {"success": True, "score": 1.0, "answer": value, "gold": value,
                                             "extras": {}}
