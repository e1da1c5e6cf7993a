"""The Python entry point of training: ``toolgym.trainers.api.train(config)``.

    from toolgym.trainers.api import train
    trainer = train("configs/demo_cpu.yaml", overrides=["grpo.max_steps=10"])
    trainer = train(config, resume=True)        # continue from the last checkpoint in output_dir
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from toolgym.generation.models import load_model
from toolgym.trainers.algorithms import AlgorithmSettings, GRPOSettings
from toolgym.trainers.config import DEFAULT_OUTPUT_DIR, TrainConfig, apply_overrides
from toolgym.trainers.warm_start import policy_dir, warm_start


def make_trainer(settings: AlgorithmSettings, model, **kwargs):
    """The trainer of ``settings``' algorithm on ``model`` (``envs``, ``args`` and the rest as the
    trainer takes): :class:`~toolgym.trainers.grpo.ToolGRPOTrainer` for :class:`GRPOSettings`,
    :class:`~toolgym.trainers.ppo.ToolPPOTrainer` for PPO and the other estimators. The one place
    that maps settings to a trainer; here, above both trainers, so the settings stay TRL-free."""
    if isinstance(settings, GRPOSettings):
        from toolgym.trainers.grpo import ToolGRPOTrainer  # TRL: the train extra

        return ToolGRPOTrainer(model, credit=settings.credit, gamma=settings.gamma, step_weight=settings.step_weight,
                               **kwargs)
    from toolgym.trainers.ppo import ToolPPOTrainer  # TRL: the train extra

    return ToolPPOTrainer(model, ppo=settings, **kwargs)


def build_trainer(config: TrainConfig, **grpo_overrides):
    """A ready trainer for ``config`` (model loaded, LoRA set): the trainer of its algorithm's
    settings (:meth:`TrainConfig.settings`), :class:`~toolgym.trainers.grpo.ToolGRPOTrainer` for
    ``algorithm: grpo``, :class:`~toolgym.trainers.ppo.ToolPPOTrainer` for ppo and the other estimators."""
    args = config.grpo_config(**grpo_overrides)
    model, tok = load_model(config.model, chat_template=config.chat_template, **config.model_kwargs)
    # a LoRA adapter (a warm start's) is trained on as it is; otherwise the config's LoRA is added
    peft_config = None if hasattr(model, "peft_config") else config.lora.peft_config()
    return make_trainer(
        config.settings(), model, envs=list(config.envs), args=args, max_turn_tokens=config.max_turn_tokens, num_tasks=config.num_tasks,
        log_episodes=config.log_episodes,
        processing_class=tok, peft_config=peft_config,
        chat_template_kwargs=config.chat_template_kwargs or None)


def train(config: TrainConfig | str | Path | dict, overrides: list[str] | None = None,
          resume: bool | str | None = None):
    """Train a policy on the config's envs with its algorithm; returns the trainer after ``train()``.

    Args:
        config: a :class:`TrainConfig`, a dict, or a YAML path.
        overrides: ``key=value`` strings applied on top (``grpo.learning_rate=3e-4``).
        resume: True = the last checkpoint in ``grpo.output_dir``; a path = that checkpoint. The
            step count, optimiser, scheduler and RNG states continue from it.

    The adapter (or the full model when LoRA is off) and the tokenizer are saved to
    ``<output_dir>/final``; checkpoints (adapter + trainer state) to ``<output_dir>/checkpoint-N``.
    Ctrl-C saves a checkpoint at the end of the current step and stops there (no ``final``; a
    second Ctrl-C stops at once).

    With ``warm_start:`` the supervised warm start runs first (:func:`run_warm_start`) and RL starts
    from its model.
    """
    if isinstance(config, (str, Path)):
        config = TrainConfig.from_yaml(config, overrides)
    elif isinstance(config, dict):
        config = TrainConfig.from_dict(apply_overrides(config, overrides or []))
    elif overrides:
        config = TrainConfig.from_dict(apply_overrides(config.to_dict(), overrides))
    config.check_startable(resume)  # before the model loads or anything is written
    out = Path(config.grpo.get("output_dir", DEFAULT_OUTPUT_DIR))
    out.mkdir(parents=True, exist_ok=True)
    (out / "toolgym_config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    policy = config if config.warm_start is None else dataclasses.replace(config, model=run_warm_start(config, out))
    trainer = build_trainer(policy)
    from toolgym.trainers.interrupt import StopOnInterrupt  # transformers: the train extra

    interrupt = StopOnInterrupt()
    trainer.add_callback(interrupt)
    trainer.train(resume_from_checkpoint=resume)
    trainer.save_state()  # trainer_state.json: the logged metrics, which `toolgym view` draws as curves
    if interrupt.interrupted:
        if trainer.is_world_process_zero():
            print(f"stopped at step {trainer.state.global_step}: checkpoint-{trainer.state.global_step} in "
                  f"{out}; continue with the same command and --resume", flush=True)
        return trainer
    trainer.save_model(str(out / "final"))
    trainer.processing_class.save_pretrained(str(out / "final"))
    if trainer.is_world_process_zero():
        checkpoints = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.rpartition("-")[2]))
        print(f"final {'adapter' if config.lora.enabled else 'model'} and tokenizer: {out / 'final'}; "
              f"checkpoints: {', '.join(p.name for p in checkpoints) or 'none'} in {out}; config: "
              f"{out / 'toolgym_config.yaml'}", flush=True)
    return trainer


def run_warm_start(config: TrainConfig, out: Path) -> str:
    """The ``warm_start:`` stage of ``config`` on its envs (reused when ``<out>/warm_start`` is
    complete); returns the directory RL starts from.

    With LoRA the warm adapter is merged into the model and RL trains a new adapter (``lora:``) on
    the merged model, rather than continuing the warm one: the reference policy of GRPO's KL term
    (the model with its adapter off) is then the warm policy, not the model from before the warm
    start that could not call a tool, and the RL adapter keeps its own rank and alpha.
    """
    cfg = config.warm_start
    if not cfg.output_dir:
        cfg = dataclasses.replace(cfg, output_dir=str(out / "warm_start"))
    metrics = warm_start(config.model, config.envs, cfg, chat_template=config.chat_template,
                         chat_template_kwargs=config.chat_template_kwargs or None)
    return str(policy_dir(cfg.output_dir, metrics))
