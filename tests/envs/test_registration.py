"""How the ids get registered: ``import toolgym``, or Gymnasium's ``module:id`` form of ``gym.make``."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym

import toolgym
from toolgym.envs.registration import env_ids, register_envs


def test_module_prefix_registers_the_ids_without_an_import():
    # Gymnasium 1.4 loads no plugin entry points: "toolgym:" makes gym.make import the package itself.
    code = ("import sys, gymnasium as gym\n"
            "assert 'toolgym' not in sys.modules and 'ToolMath-v0' not in gym.registry\n"
            "env = gym.make('toolgym:ToolMath-v0')\n"
            "print(type(env.unwrapped).__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ToolMathEnv"


def test_registering_again_changes_nothing():
    before = {env_id: gym.registry[env_id] for env_id in env_ids()}
    register_envs()
    assert toolgym.__version__ and all(gym.registry[env_id] is spec for env_id, spec in before.items())
