"""toolgym envs as GEM envs, run by GEM's own vector env and history wrapper."""

from __future__ import annotations

import pytest

pytest.importorskip("gem", reason="the GEM integration needs the 'gem' extra: pip install 'toolgym[gem]'")

import gem  # noqa: E402
import gymnasium as gym  # noqa: E402

from tests.integrations.integration_scripts import ENV_IDS, scripted_actions  # noqa: E402
from toolgym.integrations import gem as tg_gem  # noqa: E402


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gem_vector_loop_gets_the_runner_returns(env_id, bench_returns):
    from gem.wrappers.wrapper_factory import WRAPPER_FACTORY

    (name,) = tg_gem.register([env_id])
    n = 3
    actions = {seed: scripted_actions(env_id, seed) for seed in range(n)}
    twin = gym.make(env_id)
    tasks = {seed: twin.reset(seed=seed)[0][1]["content"] for seed in range(n)}
    expected = bench_returns(env_id, actions)

    envs = gem.make_vec([name] * n, wrappers=[WRAPPER_FACTORY["concat_with_action"]], seed=0)
    obs, _ = envs.reset(seed=0)  # env i: seed i, episode i of the benchmark runner
    returns, steps, finished = [0.0] * n, [0] * n, {}
    while len(finished) < n:
        batch = []
        for i in range(n):
            assert tasks[i] in obs[i] or i in finished  # GEM's wrapper keeps the task in the history
            script = actions[i]
            batch.append(script[steps[i]] if steps[i] < len(script) else "Done.")
        obs, rewards, terminated, truncated, infos = envs.step(batch)
        for i in range(n):
            if i in finished:
                continue
            steps[i] += 1
            returns[i] += float(rewards[i])
            if terminated[i] or truncated[i]:
                finished[i] = True  # (GEM's same-step autoreset already replaced infos[i] with the reset's)
    for i in range(n):
        assert returns[i] == pytest.approx(expected[i], abs=1e-9)
        assert steps[i] == len(actions[i])  # the episode ended on the scripted answer, not a budget


def test_reset_seed_and_tool_flag():
    (name,) = tg_gem.register(["MultiHopQA-v0"])
    assert tg_gem.register(["MultiHopQA-v0"]) == [name]
    env = gem.make(name, seed=4, top_k=1)
    first, _ = env.reset()
    again, _ = gem.make(name, top_k=1).reset(seed=4)
    assert first == again and "Question:" in first
    text, reward, terminated, truncated, info = env.step(env.episode.base.call("search", query="anything"))
    assert info["use_tool"] and text and reward == pytest.approx(0.02) and not (terminated or truncated)
    text, *_, info = env.step("no call here")
    assert not info["use_tool"] and "no tool call found" in text
    text, reward, terminated, truncated, info = env.step(env.episode.base.call("answer", answer="x"))
    assert terminated and info["episode_return"] == pytest.approx(0.02 - 0.1 + reward)
    assert sum(info["episode_terms"].values()) == pytest.approx(info["episode_return"])
