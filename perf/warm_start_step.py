"""Time of one demo warm-start step (batch of scripted episodes, demo-size model, the demo's world).

Times the demo's supervised pass (``supervised_warm_start``: TRL's ``SFTTrainer`` with its fused LM
head, which runs the head only on labelled tokens) for each ``--threads`` value, and times the
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

    print("| warm start | threads | s / step |\n|---|---:|---:|")
    for threads in args.threads:
        torch.set_num_threads(threads)
        model = build_model(tok, **DEMO_SIZE, seed=0)
        start = time.perf_counter()
        D.supervised_warm_start(model, pool, tokenizer=tok, steps=args.steps, batch=args.batch, lr=1e-3, seed=0,
                                progress=False)
        print(f"| SFTTrainer, fused head | {threads} | {(time.perf_counter() - start) / args.steps:.3f} |", flush=True)

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
