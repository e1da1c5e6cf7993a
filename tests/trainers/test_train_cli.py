"""End to end through the config / CLI path, resume, and accelerate with two CPU processes."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def _config(tiny_dir, out, context="full", **grpo):
    g = dict(output_dir=str(out), max_steps=2, per_device_train_batch_size=6, num_generations=3,
             max_completion_length=64, learning_rate=1e-2, logging_steps=1, save_strategy="steps", save_steps=1,
             report_to="none", use_cpu=True, bf16=False, seed=0, beta=0.0, disable_tqdm=True)
    g.update(grpo)
    # a window of one result moves at the third turn (each reply, errors included, is a result)
    window = {"context_window": 1, "max_turns": 3} if context == "window" else {}
    return {"model": str(tiny_dir), "credit": "step", "max_turn_tokens": 8, "num_tasks": 64,
            "lora": {"r": 4, "alpha": 8},
            "envs": [{"id": "MultiHopQA-v0", "kwargs": {"format": "tags", "max_turns": 2, "context": context,
                                                         "world": {"n_people": 40, "seed": 0}, **window}}],
            "grpo": g}


@pytest.mark.slow
def test_resume_continues_step_count_and_optimizer(tiny_dir, tmp_path):
    from toolgym.trainers.api import train

    out = tmp_path / "run"
    first = train(_config(tiny_dir, out))
    assert first.state.global_step == 2 and (out / "checkpoint-2").is_dir()
    assert (out / "checkpoint-2" / "adapter_model.safetensors").is_file()
    assert (out / "final" / "adapter_config.json").is_file()
    second = train(_config(tiny_dir, out, max_steps=3), resume=True)
    assert second.state.global_step == 3
    steps = {int(s["step"]) for s in second.optimizer.state_dict()["state"].values()}
    assert steps == {3}  # Adam's step counter continued from the checkpoint (a fresh optimiser would say 1)


@pytest.mark.slow
@pytest.mark.parametrize("context", ["full", "window"])
def test_accelerate_two_cpu_processes(tiny_dir, tmp_path, context):
    room = {"max_completion_length": 400} if context == "window" else {}  # room for three turns
    cfg = _config(tiny_dir, tmp_path / "run", context, per_device_train_batch_size=3, num_generations=2,
                  save_strategy="no", **room)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    # --multi_gpu picks accelerate's torchrun launcher, which on a machine without GPUs runs CPU processes
    # over gloo (--cpu alone would pick the single-process launcher). 3 rows per process with groups of 2:
    # a group straddles the two processes, which the step credit handles by gathering. With
    # context="window" each process hands TRL one row per step, as many rows as the busier process.
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "toolgym.cli", "train",
           "--config", str(path)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "'episode/turns'" in res.stdout and "'step_time'" in res.stdout and (tmp_path / "run" / "final" / "adapter_config.json").is_file()


@pytest.mark.slow
def test_algorithm_ppo_trains_through_the_config_path(tiny_dir, tmp_path):
    from toolgym.trainers.api import train
    from toolgym.trainers.ppo import ToolPPOTrainer

    cfg = _config(tiny_dir, tmp_path / "run", max_steps=1, save_strategy="no")
    cfg.update(algorithm="ppo", ppo={"vf_coef": 0.5})
    trainer = train(cfg)
    assert isinstance(trainer, ToolPPOTrainer) and trainer.state.global_step == 1
    assert (tmp_path / "run" / "final" / "value_head.safetensors").is_file()
