"""toolgym envs as a verifiers v1 taskset and env, run by vf-eval itself."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("verifiers.v1", reason="the verifiers integration needs the 'verifiers' extra: "
                    "pip install 'toolgym[verifiers]'")

import gymnasium as gym  # noqa: E402

from tests.integrations.integration_scripts import ENV_IDS, ScriptedChatServer, scripted_actions  # noqa: E402
from toolgym.integrations.verifiers import ToolgymTaskset, ToolgymTasksetConfig  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def test_taskset_yields_the_env_episodes_by_seed():
    taskset = ToolgymTaskset(ToolgymTasksetConfig(id="toolgym-verifiers", env_id="ToolMath-v0", n=3, seed=5))
    tasks = list(taskset)
    env = gym.make("ToolMath-v0")
    for i, task in enumerate(tasks):
        obs, _ = env.reset(seed=5 + i)
        assert task.data.system_prompt == obs[0]["content"]
        assert task.data.prompt[0].content == obs[1]["content"]
        assert task.data.info == {"env_id": "ToolMath-v0", "env_kwargs": {}, "seed": 5 + i}
    with pytest.raises(ValueError, match="append-only"):
        list(ToolgymTaskset(ToolgymTasksetConfig(id="toolgym-verifiers", env_kwargs={"context": "window"})))


@pytest.mark.slow
def test_verifiers_loads_the_taskset_and_env_by_id():
    from verifiers.v1.utils.loaders import environment_class, taskset_class

    from toolgym.integrations.verifiers import ToolgymEnv

    assert taskset_class("toolgym-verifiers") is ToolgymTaskset
    assert environment_class("toolgym-verifiers") is ToolgymEnv


def _uv() -> str | None:
    return shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_vf_eval_gets_the_runner_returns(env_id, tmp_path, bench_returns):
    """vf-eval's own loop (null harness, subprocess runtime) against a loopback scripted model."""
    if _uv() is None:
        pytest.skip("verifiers' null harness runs its chat program with uv: pip install uv")
    env = gym.make(env_id)
    actions = {seed: scripted_actions(env_id, seed) for seed in range(2)}
    by_task = {env.reset(seed=seed)[0][1]["content"]: actions[seed] for seed in actions}
    expected = bench_returns(env_id, actions)
    server = ScriptedChatServer(by_task)
    try:
        run_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
                   "PATH": os.pathsep.join([str(Path(_uv()).parent), os.environ["PATH"]]), "OPENAI_API_KEY": "none"}
        done = subprocess.run(
            [sys.executable, "-c", "import sys; from verifiers.v1.cli.eval.main import main; sys.exit(main())",
             "toolgym-verifiers", "--env.taskset.env-id", env_id, "--env.taskset.n", "2", "-m", "scripted",
             "--client.base-url", server.base_url, "--env.player.runtime.type", "subprocess", "--no-push",
             "-o", str(tmp_path / "vf"), "--clean", "True"],
            env=run_env, capture_output=True, text=True, timeout=600, cwd=tmp_path,
        )
    finally:
        server.close()
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (traces,) = (tmp_path / "vf").glob("*/traces.jsonl")
    episodes = [json.loads(line) for line in traces.read_text().splitlines()]
    assert len(episodes) == 2
    for episode in episodes:
        (trace,) = episode["traces"]
        assert trace["ok"], trace["errors"]
        seed = trace["task"]["data"]["info"]["seed"]
        total = sum(r["score"] * r["weight"] for r in trace["rewards"].values())
        assert total == pytest.approx(expected[seed], abs=1e-9)
        assert trace["rewards"]["format"]["score"] == pytest.approx(-0.2)  # no call, then bad arguments
        assert trace["metrics"]["turns"] == len(actions[seed])
        assert trace["metrics"]["success"] == 1.0
