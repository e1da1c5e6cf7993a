"""Time of one demo warm-start step (batch of scripted episodes, demo-size model, the demo's world).

Compares the loss the demo uses (``sampled_token_loss``: the LM head only on labelled tokens) with
HF's ``model(labels=...).loss`` on the same batches, for each ``--threads`` value, and times the
rollout engine's encode of an env reply through the tokenizer's Rust core against ``tokenizer()``.
Prints Markdown tables.

    python perf/warm_start_step.py [--steps 60] [--batch 8] [--threads 1 2]
    python perf/warm_start_step.py --smoke --steps 1 --batch 2 --threads 1   # checks it runs
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--smoke", action="store_true",
                    help="the smallest setting (60-person worlds, 8 scripted episodes, 20 encodes): checks it runs")
    args = ap.parse_args()
    n_pool, n_encode = (8, 20) if args.smoke else (400, 2000)

    import numpy as np
    import torch

    from toolgym.trainers import demo as D
    from toolgym.trainers.rollout import RolloutEngine
    from toolgym.trainers.tiny_model import DEMO_SIZE, build_model, build_tokenizer

    cfg = D.DemoConfig(n_people=60) if args.smoke else D.DemoConfig()
    fresh = [[D.env_spec(cfg, D.env_kwargs(cfg, "train", world_seed=D.FRESH_WORLD_SEED + k)).make() for _ in range(32)]
             for k in range(2)]
    tok = build_tokenizer(D.tokenizer_texts([envs[0] for envs in fresh]), vocab_size=cfg.vocab_size)
    pool = D.warm_trajectories(tok, fresh, n_pool, cfg.warm_mix, np.random.default_rng(0), cfg.max_completion_length)
    print(f"{len(pool)} scripted episodes, {np.mean([len(p) + len(c) for p, c, _ in pool]):.0f} tokens each, "
          f"{np.mean([sum(m) for _, _, m in pool]):.0f} of them labelled; batch {args.batch}, {args.steps} steps\n")

    losses = {"sampled_token_loss (the demo's)": D.sampled_token_loss,
              "model(labels=...).loss": lambda m, i, a, labels: m(input_ids=i, attention_mask=a, labels=labels).loss}
    print("| loss | threads | s / step |\n|---|---:|---:|")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for name, loss in losses.items():
            D.sampled_token_loss, kept = loss, D.sampled_token_loss  # what supervised_warm_start calls
            try:
                model = build_model(tok, **DEMO_SIZE, seed=0)
                start = time.perf_counter()
                D.supervised_warm_start(model, pool, steps=args.steps, batch=args.batch, lr=1e-3, seed=0,
                                        pad_id=tok.pad_token_id, progress=False)
                print(f"| {name} | {threads} | {(time.perf_counter() - start) / args.steps:.3f} |", flush=True)
            finally:
                D.sampled_token_loss = kept

    engine = RolloutEngine(fresh[0][:1], tok, backend=None)
    reply = ('<|im_end|>\n<|im_start|>user\n<information>Doc 1 (Title: "Zano") Zano is a 2008 documentary '
             'film directed by Kipo.</information><|im_end|>\n<|im_start|>assistant\n')
    calls = {"engine (Rust core)": lambda: engine._encode(reply),
             "tokenizer()": lambda: tok(reply, add_special_tokens=False)["input_ids"]}
    print("\n| encode of an env reply | ms / call |\n|---|---:|")
    for name, call in calls.items():
        start = time.perf_counter()
        for _ in range(n_encode):
            call()
        print(f"| {name} | {(time.perf_counter() - start) / n_encode * 1e3:.3f} |")


if __name__ == "__main__":
    main()
