"""toolgym envs through SkyRL-gym's env API, driven the way SkyRL's generator drives them."""

from __future__ import annotations

import pytest

pytest.importorskip("skyrl_gym", reason="the SkyRL integration needs the 'skyrl' extra: pip install 'toolgym[skyrl]'")

import skyrl_gym  # noqa: E402

from tests.integrations.integration_scripts import ENV_IDS, reply_for, scripted_actions  # noqa: E402
from toolgym.integrations import skyrl as tg_skyrl  # noqa: E402


def agent_loop(row: dict, env_config: dict, model) -> tuple[float, list[float], dict]:
    """skyrl-train's ``SkyRLGymGenerator.agent_loop`` reduced to its env contract: make the env from
    the row's ``env_class`` and extras, ``init`` with the prompt, then generate and ``step`` until
    ``done``, appending the observations to the chat history. (skyrl-train itself needs Python 3.12.)"""
    extras = {k: v for k, v in row.items() if k not in ("prompt", "env_class")}
    env = skyrl_gym.make(row["env_class"], env_config=env_config, extras=extras)
    chat, _ = env.init(row["prompt"])
    turn_rewards, done = [], False
    while not done:
        text = model(chat)
        out = env.step(text)
        turn_rewards.append(out["reward"])
        chat = chat + [{"role": "assistant", "content": text}] + out["observations"]
        done = out["done"]
    metrics = env.get_metrics()
    env.close()
    return sum(turn_rewards), turn_rewards, metrics


def test_register_is_idempotent_and_names_every_id():
    names = tg_skyrl.register()
    assert tg_skyrl.register() == names
    assert {"toolgym-MultiHopQA-v0", "toolgym-ToolMath-v0", "toolgym-Wordle-v0"} <= set(skyrl_gym.registry)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_skyrl_loop_gets_the_runner_returns(env_id, bench_returns):
    tg_skyrl.register([env_id])
    rows = tg_skyrl.rows(env_id, 3)
    actions = {row["seed"]: scripted_actions(env_id, row["seed"]) for row in rows}
    by_task = {row["prompt"][1]["content"]: actions[row["seed"]] for row in rows}
    expected = bench_returns(env_id, actions)
    for row in rows:
        total, turns, metrics = agent_loop(row, {}, lambda chat: reply_for(by_task, chat))
        assert total == pytest.approx(expected[row["seed"]], abs=1e-9)
        assert len(turns) == len(actions[row["seed"]])
        assert turns[0] == pytest.approx(-0.1)  # the message without a call: toolgym's format penalty
        assert metrics["return"] == pytest.approx(total)
        assert sum(v for k, v in metrics.items() if k.startswith("reward/")) == pytest.approx(total)
        assert metrics["success"] == 1.0 and metrics["score"] == 1.0


def test_env_config_reaches_gym_make_and_rows_must_pick_the_task():
    from omegaconf import OmegaConf

    tg_skyrl.register(["ToolMath-v0"])
    env = skyrl_gym.make("toolgym-ToolMath-v0", env_config=OmegaConf.create({"max_turns": 2}), extras={"seed": 1})
    env.init([])
    assert env.step("no call")["done"] is False
    out = env.step("still no call")
    assert out["done"] is True and out["metadata"]["truncated_by"] == "turns"
    with pytest.raises(ValueError, match="no seed"):
        skyrl_gym.make("toolgym-ToolMath-v0", env_config={}, extras={}).init([])
