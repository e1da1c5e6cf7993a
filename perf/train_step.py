"""Time per GRPO step: multi-turn ToolGRPOTrainer vs plain trl.GRPOTrainer on the same number of tokens.

The setting of ``perf/_step_setting.py``: demo-size model (random init), LoRA r 32 on all linear
layers, 32 completions per step (8 per prompt), CPU. The multi-turn run plays MultiHopQA (tags, 3
turns, 24 tokens a turn, budget 320 completion tokens); the plain run generates single-turn completions forced to the multi-turn
run's mean completion length (min_new_tokens = max_completion_length), so both train on the same
number of tokens. A third run plays the same env with ``context="window"``: a window of 2 results
(error replies count) never moves in 3 turns, so each episode stays one row; this prices the
sample-row path itself (episodes first, rows handed to TRL), not the re-reading of contexts when
the window moves (``toolgym demo context=window context_window=1`` measures that). Prints a
Markdown table of the median TRL ``step_time``.

    python perf/train_step.py [--steps 4] [--threads 1]
    python perf/train_step.py --smoke --steps 1     # the smallest setting: checks it runs
"""

from __future__ import annotations

import argparse
import statistics

from _step_setting import add_arguments, step_setting


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4)
    add_arguments(ap)
    args = ap.parse_args()
    setting = step_setting(args)

    from datasets import Dataset
    from trl import GRPOTrainer

    from toolgym.trainers.grpo import ToolGRPOTrainer

    cfg, tok, path = setting.cfg, setting.tokenizer, setting.model_dir
    env = setting.env().make()

    def step_times(trainer):
        times = [h["step_time"] for h in trainer.state.log_history if "step_time" in h]
        return statistics.median(times[1:])  # the first step pays warm-up costs

    def multi_turn(**env_kwargs):
        trainer = ToolGRPOTrainer(str(path), envs=[setting.env(**env_kwargs)],
                                  args=setting.grpo_args(args.steps + 1, max_completion_length=320), max_turn_tokens=24,
                                  processing_class=tok, peft_config=setting.lora(), num_tasks=512)
        trainer.train()
        return trainer

    multi = multi_turn()
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
                        args=setting.grpo_args(args.steps + 1, max_completion_length=length,
                                               generation_kwargs={"min_new_tokens": length}),
                        processing_class=tok, peft_config=setting.lora())
    plain.train()
    t_plain = step_times(plain)
    window = multi_turn(context="window")
    t_window = step_times(window)

    print(f"{setting.describe()}, {args.threads} torch thread(s), median step_time of "
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
