"""The setting the step-time scripts share (train_step.py, credit_step.py, ppo_step.py).

The demo's synthetic world (``DemoConfig``), a byte-level BPE trained on its passages and
questions, a demo-size random model saved once, LoRA r 32 on all linear layers, 32 episodes a step
in groups of 8, CPU. ``--smoke`` is the smallest setting that runs the same code (a 60-person
world, the test-size model, 4 episodes a step in groups of 2): it checks that a script runs and
measures nothing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--smoke", action="store_true",
                    help="the smallest setting (60-person world, test-size model, 4 episodes a step in groups of "
                         "2): checks the script runs, measures nothing")


@dataclass
class StepSetting:
    cfg: Any  # toolgym.trainers.demo.DemoConfig
    tokenizer: Any
    model_dir: Path
    episodes: int  # per step
    group: int  # episodes per task (num_generations)

    @property
    def tasks(self) -> int:
        return self.episodes // self.group

    def env(self, split: str = "train", acting: bool = False, **kwargs):
        """The demo's env spec for ``split`` (``kwargs`` override the env arguments)."""
        from toolgym.trainers.demo import env_kwargs, env_spec

        return env_spec(self.cfg, {**env_kwargs(self.cfg, split, acting=acting), **kwargs})

    def grpo_args(self, max_steps: int, max_completion_length: int, **kwargs):
        from trl import GRPOConfig

        return GRPOConfig(output_dir=tempfile.mkdtemp(), max_steps=max_steps, learning_rate=3e-4,
                          per_device_train_batch_size=self.episodes, num_generations=self.group,
                          max_completion_length=max_completion_length, temperature=1.0, top_k=0, beta=0.0,
                          logging_steps=1, save_strategy="no", report_to="none", use_cpu=True, bf16=False, seed=0,
                          disable_tqdm=True, **kwargs)

    def lora(self):
        from peft import LoraConfig

        return LoraConfig(r=32, lora_alpha=64, target_modules="all-linear", task_type="CAUSAL_LM")

    def describe(self) -> str:
        size = "test-size" if self.episodes < 32 else "demo-size"
        return f"{self.episodes} episodes/step ({self.tasks} tasks x {self.group}), {size} model + LoRA r32"


def step_setting(args: argparse.Namespace, **demo) -> StepSetting:
    """Build the world, the tokenizer and the saved random model; ``demo`` overrides ``DemoConfig`` fields."""
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    import torch

    from toolgym.trainers.demo import DemoConfig
    from toolgym.trainers.tiny_model import DEMO_SIZE, TEST_SIZE, build_model, build_tokenizer, save_tiny

    torch.set_num_threads(args.threads)
    cfg = DemoConfig(n_people=60 if args.smoke else 400, **demo)
    setting = StepSetting(cfg, None, Path(), episodes=4 if args.smoke else 32, group=2 if args.smoke else 8)
    base = setting.env().make().unwrapped
    tok = build_tokenizer([p.text for p in base.passages] + [e.question for e in base.examples],
                          vocab_size=400 if args.smoke else 1000)
    setting.tokenizer = tok
    setting.model_dir = save_tiny(build_model(tok, **(TEST_SIZE if args.smoke else DEMO_SIZE)), tok, tempfile.mkdtemp())
    return setting
