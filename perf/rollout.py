"""Rollout speed: batched lock-step multi-turn rollouts vs episodes one by one.

Tiny demo-size Qwen2 (random init, so every episode runs to max_turns), MultiHopQA synthetic
world, tags format, 3 turns, 24 tokens a turn. Prints a Markdown table: sampled tokens/s, episodes/s,
the share of wall time spent outside generation (env steps, chat-template rendering,
tokenisation, bookkeeping), and the share of the env-token path alone (rendering the env's
messages with the chat template and tokenising them).

    python perf/rollout.py [--episodes 16] [--batch 16] [--repeats 3] [--threads 1] [--template qwen3]
    python perf/rollout.py --smoke --episodes 2 --batch 2 --repeats 1   # checks it runs
"""

from __future__ import annotations

import argparse
import statistics
import time


class Stopwatch:
    """Accumulates the time spent in the wrapped callables (the engine's env-token path)."""

    def __init__(self):
        self.seconds = 0.0

    def wrap(self, fn):
        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t
        return timed


class Timed:
    """Wraps a backend and accumulates the time spent in generate()."""

    def __init__(self, inner):
        self.inner, self.seconds = inner, 0.0

    def any_alive(self, alive):
        return self.inner.any_alive(alive)

    def generate(self, prompts, max_new_tokens):
        t = time.perf_counter()
        out = self.inner.generate(prompts, max_new_tokens)
        self.seconds += time.perf_counter() - t
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=16)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--template", default=None, help="a chat template TRL ships (default: the tiny model's Qwen2.5)")
    ap.add_argument("--smoke", action="store_true", help="a 60-person world and the test-size model: checks it runs")
    args = ap.parse_args()

    import torch

    from toolgym.trainers.demo import DemoConfig, env_kwargs, env_spec
    from toolgym.trainers.rollout import HFBackend, RolloutEngine
    from toolgym.trainers.tiny_model import DEMO_SIZE, TEST_SIZE, build_model, build_tokenizer

    torch.set_num_threads(args.threads)
    cfg = DemoConfig(n_people=60 if args.smoke else 400)
    envs = [env_spec(cfg, env_kwargs(cfg, "train")).make() for _ in range(args.batch)]
    base = envs[0].unwrapped
    tok = build_tokenizer([p.text for p in base.passages] + [e.question for e in base.examples], vocab_size=1000)
    if args.template:
        import importlib.resources

        tok.chat_template = importlib.resources.files("trl").joinpath(f"chat_templates/{args.template}.jinja").read_text()
    model = build_model(tok, **(TEST_SIZE if args.smoke else DEMO_SIZE)).eval()

    def run(batch: int):
        backend = Timed(HFBackend(model, tok))
        watch = Stopwatch()
        t, eps = time.perf_counter(), []
        for k in range(0, args.episodes, batch):
            n = min(batch, args.episodes - k)
            engine = RolloutEngine(envs[:n], tok, backend, max_completion_tokens=320, max_turn_tokens=24)
            engine._encode = watch.wrap(engine._encode)
            engine._render = watch.wrap(engine._render)
            if hasattr(engine, "template"):  # the env-message suffix (rendered after a dummy turn)
                engine.template.suffix = watch.wrap(engine.template.suffix)
            eps += engine.run(list(range(k, k + n)))
        wall = time.perf_counter() - t
        return wall, backend.seconds, sum(e.sampled_tokens for e in eps), sum(len(e.steps) for e in eps), watch.seconds

    run(args.batch)  # warm-up
    rows = {}
    for name, batch in (("one by one", 1), (f"batched ({args.batch})", args.batch)):
        runs = [run(batch) for _ in range(args.repeats)]
        wall = statistics.median(r[0] for r in runs)
        gen = statistics.median(r[1] for r in runs)
        toks = statistics.median(r[2] for r in runs)
        turns = statistics.median(r[3] for r in runs)
        path = statistics.median(r[4] for r in runs)
        rows[name] = (wall, gen, toks, turns, path)

    print(f"{args.episodes} episodes, MultiHopQA synthetic (tags, 3 turns, 24 tokens/turn), demo-size model, "
          f"{args.threads} torch thread(s), chat template {args.template or 'qwen2_5'}, median of {args.repeats}\n")
    print("| rollout | wall s | sampled tokens/s | episodes/s | env + bookkeeping share | env-token path share | speed-up |")
    print("|---|---|---|---|---|---|---|")
    base_wall = rows["one by one"][0]
    for name, (wall, gen, toks, _turns, path) in rows.items():
        print(f"| {name} | {wall:.2f} | {toks / wall:.0f} | {args.episodes / wall:.2f} | "
              f"{100 * (wall - gen) / wall:.1f}% | {100 * path / wall:.1f}% | {base_wall / wall:.1f}x |")


if __name__ == "__main__":
    main()
