"""Where a demo policy goes wrong on held-out questions: each sampled episode's actions as a pattern.

Loads ``<run>/warm`` (and the LoRA adapter in ``<run>/final`` unless ``--warm-only``), samples
``--samples`` episodes per test question at ``--temperature``, and counts the action patterns:
``sF`` a search for the film, ``sD`` for the director, ``aA`` the right answer, ``?`` any other
argument, ``BAD`` an unparsable turn. ``sF sD aA`` is the expert; ``s? ...`` miscopied the film.

    python perf/demo_failures.py runs/demo                # after `toolgym demo`
    python perf/demo_failures.py runs/demo --warm-only    # the warm model before RL
    python perf/demo_failures.py runs/demo --confidence   # teacher-forced: where a copy is uncertain
    python perf/demo_failures.py runs/demo --warm-only --questions 2 --samples 1   # a quick look

``--confidence`` scores the scripted expert episode of each test question instead: the chance that
sampling at temperature 1 reproduces it, and every sampled token the model gives less than 0.9,
with the name it belongs to and the model's preferred other token (a recalled name where a copy
was due shows up here).
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path


def pattern(actions: list[str], film: str, director: str, answer: str) -> str:
    labels = {film: "F", director: "D", answer: "A"}
    out = []
    for action in actions:
        m = re.fullmatch(r"<(search|answer)> ?(.*?)</\1>", action.strip())
        out.append("BAD" if m is None else m.group(1)[0] + labels.get(m.group(2), "?"))
    return " ".join(out)


def confidence(model, tok, envs) -> None:
    """Print how likely a temperature-1 sample reproduces each expert episode, and its unsure tokens."""
    import numpy as np
    import torch

    from toolgym.trainers.demo import sampled_spans, warm_trajectories

    examples = envs[0].unwrapped.examples
    episodes = warm_trajectories(tok, [envs], 2 * len(examples), (1.0, 0.0, 0.0), np.random.default_rng(1), 320)
    chances, rows = [], []
    with torch.no_grad():
        for prompt, completion, mask in episodes:
            probs = model(torch.tensor([prompt + completion])).logits[0, len(prompt) - 1:-1].float().softmax(-1)
            chance = 1.0
            for start, end in sampled_spans(mask):
                turn = tok.decode(completion[start:end]).split("<|im_end|>")[0]
                for j in range(start, end):
                    p = probs[j, completion[j]].item()
                    chance *= p
                    if p < 0.9:
                        other = probs[j].clone()
                        other[completion[j]] = 0
                        rows.append((turn, tok.decode([completion[j]]), p, tok.decode([int(other.argmax())]),
                                     other.max().item()))
            chances.append(chance)
    print(f"{len(episodes)} expert episodes on test questions drawn at random; chance that a temperature-1 sample is the "
          f"expert episode: mean {np.mean(chances):.3f}, median {np.median(chances):.3f}\n")
    print("| turn | token | p | preferred instead | p |\n|---|---|---:|---|---:|")
    for turn, t, p, other, q in rows:
        print(f"| `{turn}` | `{t!r}` | {p:.2f} | `{other!r}` | {q:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a `toolgym demo --output-dir` directory")
    ap.add_argument("--warm-only", action="store_true", help="the warm model, without the RL adapter")
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--confidence", action="store_true", help="teacher-forced token confidence on expert episodes")
    ap.add_argument("--questions", type=int, default=None, help="only the first this many test questions")
    args = ap.parse_args()

    import torch

    from toolgym.trainers.demo import DemoConfig, env_kwargs, env_spec, held_out_episodes
    from toolgym.trainers.tiny_model import load_tiny

    torch.set_num_threads(args.threads)
    model, tok = load_tiny(args.run / "warm")
    if not args.warm_only:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, args.run / "final")
    model.eval()
    cfg = DemoConfig()
    envs = [env_spec(cfg, env_kwargs(cfg, "test")).make() for _ in range(64)]
    if args.confidence:
        confidence(model, tok, envs)
        return
    examples = envs[0].unwrapped.examples
    order = [q for q in range(min(len(examples), args.questions or len(examples))) for _ in range(args.samples)]
    episodes = held_out_episodes(model, tok, envs, order, temperature=args.temperature, seed=args.seed,
                                 max_turn_tokens=cfg.max_turn_tokens, max_completion_length=cfg.max_completion_length)

    counts = collections.Counter()
    for q, ep in zip(order, episodes, strict=True):
        ex = examples[q]
        film, director = ex.supporting_titles[:2]
        counts[pattern([m["content"] for m in ep.messages if m["role"] == "assistant"], film, director, ex.answer)] += 1
    print(f"{len(episodes)} held-out episodes, {args.run}{' (warm only)' if args.warm_only else ''}, "
          f"temperature {args.temperature}\n\n| episodes | actions |\n|---:|---|")
    for actions, n in counts.most_common():
        print(f"| {n} | `{actions}` |")


if __name__ == "__main__":
    main()
