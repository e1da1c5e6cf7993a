"""The demo's pipeline: worlds, tokenizer and tiny model, the warm start and the numbers before RL
(:func:`warm_start`), then RL with LoRA and the numbers after (:func:`reinforce`); :func:`run_demo`
runs both."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toolgym.generation.chat import template_name
from toolgym.trainers.algorithms import settings_for
from toolgym.trainers.api import make_trainer
from toolgym.trainers.demo.config import FRESH_WORLD_SEED, DemoConfig, env_kwargs, make_env, rl_env_specs
from toolgym.trainers.demo.evaluation import copy_accuracy, evaluate, naive_rag
from toolgym.trainers.demo.plots import plot
from toolgym.trainers.demo.reports import summary
from toolgym.trainers.demo.supervised import supervised_warm_start, tokenizer_texts
from toolgym.trainers.demo.warm_pool import can_fork, warm_trajectories
from toolgym.trainers.tiny_model import (
    DEMO_SIZE,
    build_model,
    build_tokenizer,
    load_tiny,
    save_tiny,
    with_chat_template,
)


def printer(progress: bool):
    """``print`` with flush when ``progress``, else a no-op."""
    return (lambda *a: print(*a, flush=True)) if progress else (lambda *a: None)


@dataclass
class WarmStart:
    """What the RL stage starts from: the warm model, its tokenizer, the envs and the 'before' numbers."""

    model: Any
    tokenizer: Any
    test_envs: list
    before: dict[str, float]
    before_greedy: dict[str, float]
    naive_rag: dict[str, float]
    copy_accuracy: list[float]
    timings: dict[str, float]


def held_out_eval(cfg: DemoConfig, ws: WarmStart, model, temperature: float = 1.0) -> dict[str, float]:
    """``evaluate`` on the warm start's test envs with the demo's settings (temperature 0: greedy)."""
    return evaluate(model, ws.tokenizer, ws.test_envs, cfg.eval_questions, cfg.eval_samples, temperature=temperature,
                    max_turn_tokens=cfg.max_turn_tokens, max_completion_length=cfg.max_completion_length, seed=cfg.seed,
                    chat_template_kwargs=cfg.chat_template_kwargs)


def warm_start(cfg: DemoConfig, progress: bool = True) -> WarmStart:
    """Steps 1-3: worlds, tokenizer and tiny model (or ``cfg.warm_model``), supervised warm start,
    and the held-out numbers before RL (sampled and greedy EM, copy accuracy, naive RAG)."""
    import torch

    t0 = time.time()
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    timings: dict[str, float] = {"warm_start_s": 0.0}
    log = printer(progress)

    # 1. worlds: the training world (train split for learning, test split held out) and fresh ones
    train_envs = [make_env(cfg, env_kwargs(cfg, "train")) for _ in range(64)]
    test_envs = [make_env(cfg, env_kwargs(cfg, "test", acting=True)) for _ in range(64)]
    scripted_test = test_envs if cfg.context == "full" else [make_env(cfg, env_kwargs(cfg, "test")) for _ in range(64)]
    log(f"world: {len(train_envs[0].unwrapped.examples)} train / {len(test_envs[0].unwrapped.examples)} test "
        f"questions; fresh worlds: {cfg.fresh_worlds}")

    if cfg.warm_model:
        model, tok = load_tiny(cfg.warm_model)
        log(f"warm model loaded from {cfg.warm_model}")
        if cfg.chat_template != DemoConfig.chat_template and template_name(tok) != cfg.chat_template:
            raise ValueError(f"chat_template={cfg.chat_template!r}, but the warm model {cfg.warm_model!r} was built "
                             f"with {template_name(tok)!r}; drop chat_template= or build a warm model with it")
    else:
        fresh = [[make_env(cfg, env_kwargs(cfg, "train", world_seed=FRESH_WORLD_SEED + k)) for _ in range(64)]
                 for k in range(cfg.fresh_worlds)]
        # 2. tokenizer on text the model will see, never on the held-out world's text
        tok = build_tokenizer(tokenizer_texts([envs[0] for envs in fresh]), vocab_size=cfg.vocab_size)
        if template_name(tok) != cfg.chat_template:
            tok = with_chat_template(tok, cfg.chat_template)
        model = build_model(tok, **DEMO_SIZE, seed=cfg.seed)

        # 3. warm start on scripted trajectories
        t = time.time()
        processes = (cfg.threads or os.cpu_count() or 1) if can_fork() else 1
        log(f"scripted warm-start pool: {cfg.warm_pool} episodes over {1 + len(fresh)} worlds, {processes} processes")
        pool = warm_trajectories(tok, [train_envs] + fresh, cfg.warm_pool, cfg.warm_mix, rng, cfg.max_completion_length,
                                 first_share=cfg.warm_world_share, processes=processes,
                                 chat_template_kwargs=cfg.chat_template_kwargs)
        log(f"pool built in {time.time() - t:.0f} s")
        supervised_warm_start(model, pool, tokenizer=tok, steps=cfg.warm_steps, batch=cfg.warm_batch, lr=cfg.warm_lr,
                              seed=cfg.seed, progress=progress)
        timings["warm_start_s"] = time.time() - t
        save_tiny(model, tok, out / "warm")
    heldout = warm_trajectories(tok, [scripted_test], 2 * min(cfg.eval_questions, 32), (1.0, 0.0, 0.0),
                                np.random.default_rng(cfg.seed + 1), cfg.max_completion_length,
                                chat_template_kwargs=cfg.chat_template_kwargs)
    copy_acc = copy_accuracy(model, tok, heldout)
    log(f"teacher-forced held-out copy accuracy per expert turn (film, director, birthplace): "
        f"{[round(a, 2) for a in copy_acc]}")

    ws = WarmStart(model, tok, test_envs, {}, {}, naive_rag(test_envs, cfg.eval_questions), copy_acc, timings)
    t = time.time()
    ws.before, ws.before_greedy = held_out_eval(cfg, ws, model), held_out_eval(cfg, ws, model, 0.0)
    timings["eval_s"] = time.time() - t
    timings["setup_s"] = time.time() - t0  # this whole stage: worlds, tokenizer, warm start, 'before' numbers
    log(f"after warm start: sampled EM {ws.before['em']:.2f}, greedy EM {ws.before_greedy['em']:.2f}; "
        f"naive RAG EM {ws.naive_rag['em']:.2f}")
    return ws


def reinforce(cfg: DemoConfig, ws: WarmStart, model, out: Path, progress: bool = True) -> dict[str, Any]:
    """Step 4-5: RL with LoRA (``cfg.algorithm``) from ``model``, held-out EM every ``eval_every``
    steps, the final numbers; writes ``results.json``, ``demo.png`` and the adapter under ``out``."""
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import GRPOConfig


    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    log = printer(progress)
    timings = dict(ws.timings)
    curve = [{"step": 0, **ws.before}]

    class HeldOut(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if cfg.eval_every and state.global_step % cfg.eval_every == 0:
                te = time.time()
                curve.append({"step": state.global_step, **held_out_eval(cfg, ws, model)})
                timings["eval_s"] += time.time() - te
                log(f"{cfg.algorithm} step {state.global_step}: held-out sampled EM {curve[-1]['em']:.2f}, "
                    f"return {curve[-1]['return']:.3f}")

    args = GRPOConfig(
        output_dir=str(out / "grpo"), max_steps=cfg.rl_steps, learning_rate=cfg.lr, lr_scheduler_type="constant",
        per_device_train_batch_size=cfg.completions_per_step, num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length, temperature=1.0, top_k=0, beta=0.0,
        logging_steps=5, save_strategy="steps", save_steps=20, save_total_limit=1, report_to="none",
        use_cpu=True, bf16=False, seed=cfg.seed, disable_tqdm=not progress,
    )
    common = dict(
        envs=rl_env_specs(cfg),
        args=args, max_turn_tokens=cfg.max_turn_tokens, processing_class=ws.tokenizer, callbacks=[HeldOut()],
        peft_config=LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0,
                               target_modules="all-linear", task_type="CAUSAL_LM"),
        num_tasks=cfg.rl_steps * cfg.completions_per_step, chat_template_kwargs=cfg.chat_template_kwargs or None,
    )
    settings = settings_for(cfg.algorithm, credit=cfg.credit, step_weight=cfg.step_weight)
    trainer = make_trainer(settings, model, **common)
    eval_before = timings["eval_s"]
    trainer.train()
    timings["rl_s"] = time.time() - t0 - (timings["eval_s"] - eval_before)  # without the held-out evals
    trainer.save_model(str(out / "final"))

    after, after_greedy = held_out_eval(cfg, ws, trainer.model), held_out_eval(cfg, ws, trainer.model, 0.0)
    if curve[-1]["step"] != cfg.rl_steps:
        curve.append({"step": cfg.rl_steps, **after})
    timings["total_s"] = timings["setup_s"] + time.time() - t0
    reach = next((c["step"] for c in curve if c["em"] >= 0.8), None)
    results = {"config": asdict(cfg), "before": ws.before, "before_greedy": ws.before_greedy, "after": after,
               "after_greedy": after_greedy, "naive_rag": ws.naive_rag, "copy_accuracy": ws.copy_accuracy,
               "curve": curve, "steps_to_em_0.8": reach, "timings": timings, "train_log": trainer.state.log_history}
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    plot(results, out / "demo.png")
    log(summary(results))
    log(f"results: {out / 'results.json'}, plot: {out / 'demo.png'}, final adapter: {out / 'final'}, "
        f"checkpoints: {out / 'grpo'}" + ("" if cfg.warm_model else f", warm model: {Path(cfg.output_dir) / 'warm'}"))
    return results


def run_demo(cfg: DemoConfig, progress: bool = True) -> dict[str, Any]:
    """Build, warm up, evaluate, train with RL, evaluate; returns (and writes) the results.
    With ``rl_steps=0`` it stops after the warm start: the warm model is saved in
    ``<output_dir>/warm`` (what ``configs/demo_cpu.yaml`` trains from)."""
    ws = warm_start(cfg, progress)
    if cfg.rl_steps == 0:
        where = cfg.warm_model or Path(cfg.output_dir) / "warm"
        printer(progress)(f"rl_steps=0: no RL. Warm model and tokenizer: {where}")
        return {"config": asdict(cfg), "before": ws.before, "before_greedy": ws.before_greedy,
                "naive_rag": ws.naive_rag, "copy_accuracy": ws.copy_accuracy, "timings": ws.timings,
                "warm_model": str(where)}
    return reinforce(cfg, ws, ws.model, Path(cfg.output_dir), progress)
