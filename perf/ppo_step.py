"""Time of a PPO step vs a GRPO step on the same batch (target: PPO <= 2x GRPO).

The setting of perf/_step_setting.py, as perf/train_step.py: demo-size model (random init), LoRA r
32 on all linear layers, MultiHopQA (tags, 3 turns, 24 tokens a turn, 320 completion tokens), 32
episodes per step (8 per task), CPU. Two measurements:

1. Same batch: both trainers roll out the same 32 episodes (same seed, same initial policy: the
   ids are checked equal), then each is timed on (a) rollout + scoring (PPO adds its value forward
   and GAE) and (b) the update (loss, backward, optimiser step; PPO adds the value loss), medians
   of ``--repeats``.
2. Training: TRL's ``step_time`` median over ``--steps`` steps of ``train()`` (the rollouts then
   differ as the policies move apart), also for the critic-free estimators of ToolPPOTrainer.

    python perf/ppo_step.py [--repeats 3] [--steps 4] [--threads 1]
    python perf/ppo_step.py --smoke --repeats 1 --steps 1 --algorithms grpo ppo   # checks it runs
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import time

from _step_setting import add_arguments, step_setting


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=4, help="train() steps per algorithm (0: skip part 2)")
    ap.add_argument("--algorithms", nargs="*", default=["grpo", "ppo", "rloo", "reinforce_pp", "reinforce_pp_baseline"])
    add_arguments(ap)
    args = ap.parse_args()
    setting = step_setting(args)

    import torch

    from toolgym.trainers.grpo import ToolGRPOTrainer
    from toolgym.trainers.ppo import PPOSettings, ToolPPOTrainer

    envs = [setting.env()]

    def build(algorithm: str, max_steps: int = 1):
        kw = dict(envs=envs, args=setting.grpo_args(max_steps, max_completion_length=320), max_turn_tokens=24,
                  processing_class=setting.tokenizer, num_tasks=512, peft_config=setting.lora())
        if algorithm == "grpo":
            return ToolGRPOTrainer(str(setting.model_dir), **kw)
        return ToolPPOTrainer(str(setting.model_dir), ppo=PPOSettings(algorithm=algorithm), **kw)

    # -- 1. the same batch ---------------------------------------------------------------------------
    trainers = {"grpo": build("grpo"), "ppo": build("ppo")}
    inputs = [{"prompt": p} for p in trainers["grpo"].train_dataset[:setting.tasks]["prompt"]
              for _ in range(setting.group)]
    rows, batches, gae_times = {}, {}, []
    gae_batch = trainers["ppo"]._gae_batch

    def timed_gae(*a):  # PPO's own share of the scoring: the value forward and GAE
        t = time.perf_counter()
        out = gae_batch(*a)
        gae_times.append(time.perf_counter() - t)
        return out

    trainers["ppo"]._gae_batch = timed_gae
    for name, tr in trainers.items():
        tr.model.train()
        tr.current_gradient_accumulation_steps = 1
        opt = torch.optim.AdamW([p for p in tr.model.parameters() if p.requires_grad], lr=3e-4)
        gen, upd = [], []
        for _ in range(args.repeats):  # the initial policy and the same seed: the same batch every time
            torch.manual_seed(0)
            t = time.perf_counter()
            batch = tr._generate_and_score_completions([dict(x) for x in inputs])
            gen.append(time.perf_counter() - t)
        batches[name] = batch
        for _ in range(args.repeats):
            t = time.perf_counter()
            tr.compute_loss(tr.model, batch).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            upd.append(time.perf_counter() - t)
        rows[name] = (statistics.median(gen), statistics.median(upd))
    same = torch.equal(batches["grpo"]["completion_ids"], batches["ppo"]["completion_ids"])
    tokens = int(batches["grpo"]["completion_mask"].sum())
    print(f"\nSame batch: {setting.describe()}, {tokens} completion tokens, ids identical in both trainers: {same} "
          f"(median of {args.repeats}, {args.threads} thread(s))\n")
    print("| algorithm | rollout + scoring (s) | update (s) | step (s) | vs GRPO |")
    print("|---|---:|---:|---:|---:|")
    g_step = sum(rows["grpo"])
    for name, (g, u) in rows.items():
        print(f"| {name} | {g:.2f} | {u:.2f} | {g + u:.2f} | {(g + u) / g_step:.2f}x |")
    print(f"\nPPO's value forward + GAE inside its scoring: {statistics.median(gae_times):.2f} s; "
          f"update only: PPO / GRPO = {rows['ppo'][1] / rows['grpo'][1]:.2f}x")

    # -- 2. training steps ------------------------------------------------------------------------------
    if args.steps <= 0:
        return
    print(f"\nTRL step_time, median of steps 2..{args.steps + 1} of train()\n")
    print("| algorithm | step (s) | vs GRPO | episode length (tokens) |")
    print("|---|---:|---:|---:|")
    base_time = None
    for name in args.algorithms:
        tr = build(name, max_steps=args.steps + 1)
        with contextlib.redirect_stdout(io.StringIO()):  # TRL prints every log line without tqdm
            tr.train()
        logs = tr.state.log_history
        step = statistics.median([h["step_time"] for h in logs if "step_time" in h][1:])
        length = statistics.mean([h["episode/length"] for h in logs if "episode/length" in h])
        base_time = base_time or step
        print(f"| {name} | {step:.2f} | {step / base_time:.2f}x | {length:.0f} |", flush=True)


if __name__ == "__main__":
    main()
