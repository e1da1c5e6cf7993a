"""Cost of GiGPO credit: one GRPO step with ``credit="gigpo"`` against ``"outcome"`` and ``"step"``
on the same batch.

The setting of ``perf/_step_setting.py`` (demo-size model, random init, + LoRA r 32, 32 episodes a
step in groups of 8, CPU) on the demo's 3-hop MultiHopQA world (``film_director_birth_country``,
tags, 4 turns, 24 tokens a turn, budget 448). Each round runs, for each credit mode with the same torch seed (so the same
sampled episodes: checked), TRL's scoring (``_generate_and_score_completions``: the rollout, which
hashes every step's observation whatever the credit, old log-probs and the advantages) then the loss
and its backward pass; the modes take turns within a round, and the table gives the median over
rounds. Also the advantage computation alone (``advantages.step_advantages`` on the batch's step
rewards and states) and the observation hashing alone (``rollout.observation_key`` per step).

    python perf/credit_step.py [--rounds 3] [--threads 1]
    python perf/credit_step.py --smoke --rounds 1   # the smallest setting: checks it runs
"""

from __future__ import annotations

import argparse
import statistics
import time

from _step_setting import add_arguments, step_setting


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    add_arguments(ap)
    args = ap.parse_args()
    setting = step_setting(args, template="film_director_birth_country", max_turns=4, max_completion_length=448)

    import torch

    from toolgym.trainers import advantages as A
    from toolgym.trainers.grpo import ToolGRPOTrainer
    from toolgym.trainers.rollout import observation_key

    cfg, group = setting.cfg, setting.group
    trainer = ToolGRPOTrainer(
        str(setting.model_dir), envs=[setting.env(acting=True)],
        args=setting.grpo_args(1, max_completion_length=cfg.max_completion_length),
        max_turn_tokens=cfg.max_turn_tokens, processing_class=setting.tokenizer, num_tasks=64,
        peft_config=setting.lora())
    trainer.current_gradient_accumulation_steps = 1  # set by train(); here the step is driven by hand
    trainer.model.train()
    inputs = [{"prompt": p} for p in trainer.train_dataset[:setting.tasks]["prompt"] for _ in range(group)]

    modes = ("outcome", "step", "gigpo")
    times: dict[str, list[float]] = {m: [] for m in modes}
    ids = {}
    for _ in range(args.rounds):
        for credit in modes:
            trainer.credit = credit
            torch.manual_seed(0)
            t = time.perf_counter()
            out = trainer._generate_and_score_completions([dict(x) for x in inputs])
            trainer.compute_loss(trainer.model, out).backward()
            times[credit].append(time.perf_counter() - t)
            trainer.model.zero_grad(set_to_none=True)
            ids.setdefault(credit, out["completion_ids"].tolist())
    if not all(ids[m] == ids["outcome"] for m in modes):
        raise RuntimeError("the credit modes did not train on the same batch")

    eps = trainer.env_rollout.last_episodes
    rewards, states = [e.step_rewards for e in eps], [e.step_states for e in eps]
    reps = 200
    adv_ms = {}
    for credit in modes:
        t = time.perf_counter()
        for _ in range(reps):
            A.step_advantages(rewards, group, credit=credit, step_states=states)
        adv_ms[credit] = (time.perf_counter() - t) / reps * 1e3
    n_steps = sum(len(e.steps) for e in eps)
    t = time.perf_counter()
    for e in eps:  # the observation each step was sampled on: its prefix of the final conversation
        for k in range(len(e.steps)):
            observation_key(e.messages[:2 + 2 * k])
    hash_ms = (time.perf_counter() - t) * 1e3
    stats = A.anchor_stats(A.pad_steps(A.state_ids(states), dtype=torch.long)[0],
                           A.discounted_returns(*A.pad_steps(rewards)), A.pad_steps(rewards)[1], group)

    print(f"{setting.describe()}, {n_steps} steps, {args.threads} torch "
          f"thread(s), median of {args.rounds} rounds; scoring (rollout, old log-probs, advantages) + loss + backward\n")
    print("| credit | s / step | ratio to outcome | advantages alone (ms) |")
    print("|---|---|---|---|")
    t_out = statistics.median(times["outcome"])
    for credit in modes:
        t_c = statistics.median(times[credit])
        print(f"| {credit} | {t_c:.2f} | {t_c / t_out:.3f} | {adv_ms[credit]:.2f} |")
    print(f"\nobservation hashing: {hash_ms:.1f} ms for the batch's {n_steps} steps (done in every credit mode); "
          f"steps sharing a state in their group: {stats['anchor_step_share']:.2f}")


if __name__ == "__main__":
    main()
