"""How fast the demo's tiny model learns to copy unseen names (the diagnostics in docs/experiments.md).

Supervised training only (no RL), teacher-forced copy accuracy on held-out names every ``--every``
steps (``toolgym.trainers.demo.copy_accuracy``: the tokens after the action tag). Two tasks:

* ``pure``: one turn, ``Question: Where was the director of NAME born?`` -> ``<search> NAME</search>``,
  names from fresh synthetic worlds, held-out names from the demo's test world; also prints
  per-position token accuracy.
* ``episodes``: expert-only scripted episodes (film, director, birthplace) on fresh worlds,
  held out on the demo world's test split; prints film / director / birthplace accuracy.

    python perf/copy_learning.py --task pure --steps 800
    python perf/copy_learning.py --task pure --short-names --vocab 3000 --steps 600
    python perf/copy_learning.py --task episodes --steps 800
    python perf/copy_learning.py --task episodes --short-names --vocab 3000 --steps 600
    python perf/copy_learning.py --task episodes --hidden 256 --layers 4 --short-names --vocab 3000
    python perf/copy_learning.py --task episodes --short-names --facts-only --vocab 3000 --steps 1000 --every 200
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=("pure", "episodes"), default="pure")
    parser.add_argument("--short-names", action="store_true", help="one-word people and films (WorldConfig)")
    parser.add_argument("--facts-only", action="store_true", help="passages without the unasked facts (WorldConfig)")
    parser.add_argument("--vocab", type=int, default=1000)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--ffn", type=int, default=0, help="MLP width (0: 4 x hidden)")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--kv-heads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=600, help="supervised steps (cosine schedule over them)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--worlds", type=int, default=20, help="fresh training worlds (n_people=300 each)")
    parser.add_argument("--pool", type=int, default=12000, help="scripted episodes (task episodes)")
    parser.add_argument("--every", type=int, default=100)
    args = parser.parse_args()

    import torch

    from toolgym.trainers import demo as D
    from toolgym.trainers.tiny_model import build_model, build_tokenizer

    torch.set_num_threads(1)
    world = dict(short_names=args.short_names, facts_only=args.facts_only)
    train_cfg = D.DemoConfig(n_people=300, **world)
    test_cfg = D.DemoConfig(**world)
    # 32 envs per world: scripted episodes are rolled out 32 at a time
    fresh = [[D.env_spec(train_cfg, D.env_kwargs(train_cfg, "train", world_seed=D.FRESH_WORLD_SEED + k)).make()
              for _ in range(32)] for k in range(args.worlds)]
    tok = build_tokenizer(D.tokenizer_texts([envs[0] for envs in fresh[:6]]), vocab_size=args.vocab)
    model = build_model(tok, hidden_size=args.hidden, intermediate_size=args.ffn or 4 * args.hidden, num_hidden_layers=args.layers,
                        num_attention_heads=args.heads, num_key_value_heads=args.kv_heads, seed=0)

    if args.task == "pure":
        system = fresh[0][0].reset(seed=0)[0][0]

        def sample(name: str):
            messages = [system, {"role": "user", "content": f"Question: Where was the director of {name} born?"}]
            prompt = tok(tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False),
                         add_special_tokens=False)["input_ids"]
            completion = tok(f"<search> {name}</search>", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
            return list(prompt), completion, [1] * len(completion)

        names = sorted({p.title for envs in fresh for p in envs[0].unwrapped.passages})
        test = D.env_spec(test_cfg, D.env_kwargs(test_cfg, "test")).make().unwrapped
        unseen = sorted({p.title for p in test.passages} - set(names))
        if args.short_names:  # the one-word kinds only
            names, unseen = [n for n in names if " " not in n], [n for n in unseen if " " not in n]
        pool, held = [sample(n) for n in names], [sample(n) for n in unseen[:64]]
    else:
        test_envs = [D.env_spec(test_cfg, D.env_kwargs(test_cfg, "test")).make() for _ in range(32)]
        pool = D.warm_trajectories(tok, fresh, args.pool, (1.0, 0.0, 0.0), np.random.default_rng(0), 320)
        held = D.warm_trajectories(tok, [test_envs], 64, (1.0, 0.0, 0.0), np.random.default_rng(1), 320)
    name_tokens = [sum(m) for _, _, m in held]
    print(f"task {args.task}: {len(pool)} training samples, {len(held)} held out, "
          f"{np.mean(name_tokens):.1f} sampled tokens per held-out sample", flush=True)

    def per_position(width: int = 8) -> list[float]:
        hits, counts = np.zeros(width), np.zeros(width)
        with torch.no_grad():
            for prompt, completion, _ in held:
                pred = model(torch.tensor([prompt + completion])).logits[0].argmax(-1).tolist()
                for j in range(min(len(completion), width)):
                    hits[j] += pred[len(prompt) + j - 1] == completion[j]
                    counts[j] += 1
        return np.round(hits / np.maximum(counts, 1), 2).tolist()

    start = time.time()
    header = "copy accuracy" if args.task == "pure" else "copy accuracy film / director / birthplace"
    print(f"| step | s | {header} |" + (" per-position token accuracy |" if args.task == "pure" else ""))
    print("|---:|---:|---|" + ("---|" if args.task == "pure" else ""))

    def report(step: int) -> None:
        acc = D.copy_accuracy(model, tok, held)
        shown = f"{acc[0]:.2f}" if args.task == "pure" else " / ".join(f"{a:.2f}" for a in acc)
        extra = f" {per_position()} |" if args.task == "pure" else ""
        print(f"| {step} | {time.time() - start:.0f} | {shown} |{extra}", flush=True)

    D.supervised_warm_start(model, pool, tokenizer=tok, steps=args.steps, batch=args.batch, lr=args.lr, seed=0,
                            progress=False, callback=report, every=args.every)


if __name__ == "__main__":
    main()
