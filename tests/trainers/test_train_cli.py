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


def _one_line_error(capsys, argv):
    from toolgym.cli import main

    assert main(argv) == 2, argv
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_train_cli_mistakes_are_one_line_and_nothing_is_written(tiny_dir, tmp_path, capsys):
    out = tmp_path / "run"
    good = _config(tiny_dir, out)
    cases = [
        ({k: v for k, v in good.items() if k != "model"}, [], "missing key 'model'"),
        ({**good, "gamma": "abc"}, [], "gamma must be a number, got str 'abc'"),
        (good, ["credt=step"], "Did you mean 'credit'"),
        (good, ["envs.0.id=MultiHopQA-v1"], "Did you mean 'MultiHopQA-v0'"),
        (good, ["--resume"], f"--resume: no checkpoint-* directory in {out}"),
        ({**good, "model": str(tmp_path / "runs/demo/warm")}, [],
         f"Build the demo's warm model first: toolgym demo rl_steps=0 --output-dir {tmp_path / 'runs/demo'}"),
        ("- not a mapping", [], "the top level must be a mapping"),
        ("model: [unclosed", [], "while parsing"),
    ]
    for k, (data, extra, message) in enumerate(cases):
        path = tmp_path / f"c{k}.yaml"
        path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
        err = _one_line_error(capsys, ["train", "--config", str(path), *extra])
        assert err.startswith("toolgym train: ") and message in err, err
    assert "not found" in _one_line_error(capsys, ["train", "--config", str(tmp_path / "none.yaml")])
    assert "--config is required" in _one_line_error(capsys, ["train"])
    assert not out.exists()  # checked before the model loaded or anything was written


def test_shipped_demo_config_without_its_warm_model_says_how_to_build_it(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # a fresh clone: no runs/
    err = _one_line_error(capsys, ["train", "--config", str(REPO / "configs" / "demo_cpu.yaml"), "grpo.max_steps=2"])
    assert "toolgym demo rl_steps=0 --output-dir runs/demo" in err


def test_ctrl_c_saves_a_checkpoint_at_the_step_end_and_resume_continues(tiny_dir, tmp_path, monkeypatch):
    """The first SIGINT of a run (here raised as step 2 begins) lets the step finish, saves
    checkpoint-2 and stops before step 3, with no final/; --resume runs on from it."""
    import signal

    from transformers import TrainerCallback

    from toolgym.trainers import api

    class CtrlCAtStep2(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == 1:
                signal.raise_signal(signal.SIGINT)

    build = api.build_trainer

    def build_with_ctrl_c(config, **kwargs):
        trainer = build(config, **kwargs)
        trainer.add_callback(CtrlCAtStep2())
        return trainer

    out = tmp_path / "run"
    monkeypatch.setattr(api, "build_trainer", build_with_ctrl_c)
    stopped = api.train(_config(tiny_dir, out, max_steps=4, save_strategy="no"))
    assert stopped.state.global_step == 2
    assert (out / "checkpoint-2" / "adapter_model.safetensors").is_file()
    assert not (out / "final").exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the run's handler is gone
    monkeypatch.setattr(api, "build_trainer", build)
    resumed = api.train(_config(tiny_dir, out, max_steps=3, save_strategy="no"), resume=True)
    assert resumed.state.global_step == 3 and (out / "final" / "adapter_config.json").is_file()
