"""Time per GRPO step: multi-turn ToolGRPOTrainer vs plain trl.GRPOTrainer on the same number of tokens.

Same demo-size model (random init), LoRA r 32 on all linear layers, 32 completions per step
(8 per prompt), CPU. The multi-turn run plays MultiHopQA (tags, 3 turns, 24 tokens a turn, budget
320 completion tokens); the plain run generates single-turn completions forced to the multi-turn
run's mean completion length (min_new_tokens = max_completion_length), so both train on the same
number of tokens. A third run plays the same env with ``context="window"``: a window of 2 results
(error replies count) never moves in 3 turns, so each episode stays one row; this prices the
sample-row path itself (episodes first, rows handed to TRL), not the re-reading of contexts when
the window moves (``toolgym demo context=window context_window=1`` measures that). Prints a
Markdown table of the median TRL ``step_time``.

    python perf/train_step.py [--steps 4] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import warnings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import GRPOConfig, GRPOTrainer

    from toolgym.trainers.demo import DemoConfig, _make, env_kwargs, env_spec
    from toolgym.trainers.grpo import ToolGRPOTrainer
    from toolgym.trainers.tiny_model import DEMO_SIZE, build_model, build_tokenizer, save_tiny

    torch.set_num_threads(args.threads)
    cfg = DemoConfig(n_people=400)
    env = _make(cfg, env_kwargs(cfg, "train"))
    base = env.unwrapped
    tok = build_tokenizer([p.text for p in base.passages] + [e.question for e in base.examples], vocab_size=1000)
    path = save_tiny(build_model(tok, **DEMO_SIZE), tok, tempfile.mkdtemp())

    def grpo_args(out, **kw):
        return GRPOConfig(output_dir=out, max_steps=args.steps + 1, learning_rate=3e-4, per_device_train_batch_size=32,
                          num_generations=8, temperature=1.0, top_k=0, beta=0.0, logging_steps=1, save_strategy="no",
                          report_to="none", use_cpu=True, bf16=False, seed=0, disable_tqdm=True, **kw)

    def lora():
        return LoraConfig(r=32, lora_alpha=64, target_modules="all-linear", task_type="CAUSAL_LM")

    def step_times(trainer):
        times = [h["step_time"] for h in trainer.state.log_history if "step_time" in h]
        return statistics.median(times[1:])  # the first step pays warm-up costs

    def multi_turn(kwargs):
        trainer = ToolGRPOTrainer(str(path), envs=[env_spec(cfg, kwargs)],
                                  args=grpo_args(tempfile.mkdtemp(), max_completion_length=320), max_turn_tokens=24,
                                  processing_class=tok, peft_config=lora(), num_tasks=512)
        trainer.train()
        return trainer

    multi = multi_turn(env_kwargs(cfg, "train"))
    lengths = [h["episode/length"] for h in multi.state.log_history if "episode/length" in h]
    sampled = [h["completions/mean_length"] for h in multi.state.log_history if "completions/mean_length" in h]
    length = round(statistics.mean(lengths))
    t_multi = step_times(multi)

    obs, _ = env.reset(seed=0)
    prompts = []
    for s in range(64):
        obs, _ = env.reset(seed=s)
        prompts.append([{**m, "content": cfg.system_prompt} if m["role"] == "system" else dict(m) for m in obs])

    def reward(completions, **_):
        return [float(len(c)) for c in completions]

    plain = GRPOTrainer(str(path), reward_funcs=[reward], train_dataset=Dataset.from_dict({"prompt": prompts}),
                        args=grpo_args(tempfile.mkdtemp(), max_completion_length=length,
                                       generation_kwargs={"min_new_tokens": length}),
                        processing_class=tok, peft_config=lora())
    plain.train()
    t_plain = step_times(plain)
    window = multi_turn({**env_kwargs(cfg, "train"), "context": "window"})
    t_window = step_times(window)

    print(f"32 completions/step, demo-size model + LoRA r32, {args.threads} torch thread(s), median step_time of "
          f"steps 2..{args.steps + 1}; multi-turn episodes average {length} completion tokens "
          f"({statistics.mean(sampled):.0f} sampled, the rest env tokens)\n")
    print("| trainer | completion tokens / episode | s / step | ratio |")
    print("|---|---|---|---|")
    print(f"| plain trl.GRPOTrainer (single turn) | {length} | {t_plain:.2f} | 1.00 |")
    print(f"| ToolGRPOTrainer (multi-turn MultiHopQA) | {length} | {t_multi:.2f} | {t_multi / t_plain:.2f} |")
    print(f"| ToolGRPOTrainer, context=window (the sample-row path) | {length} | {t_window:.2f} | "
          f"{t_window / t_plain:.2f} |")


if __name__ == "__main__":
    main()
