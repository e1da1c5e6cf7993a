"""A real pretrained model on this CPU: generation speed, a benchmark episode, a GRPO step, memory.

    python perf/real_model.py                                  # SmolLM2-135M-Instruct from PyPI, every phase
    python perf/real_model.py --phases speed bench --questions 30
    python perf/real_model.py --model path/to/model.gguf --phases grpo --episodes 32

Each phase runs in a process of its own, so its peak RSS is its own. Phases:

- ``speed``: prefill tokens/s (one 1,024-token prompt; 8 of them) and decode tokens/s at batch 1,
  8 and 32, through ``HFBackend`` (toolgym's decode loop), beside transformers' ``generate``.
- ``bench``: the ``tool-call`` agent on the first ``--questions`` HotpotQA questions (the shared
  sample, ``corpus=example``, 4 turns): seconds an episode (wall / questions), time-outs; with the
  cache kept between turns and, for comparison, with every turn prefilled whole again.
- ``grpo``: ``--steps`` GRPO steps of ``--episodes`` episodes with LoRA (4 turns), with the
  settings of ``configs/smollm2_agent_r1.yaml`` (its micro-batches, bf16 where native): seconds an
  episode for the rollout and for the whole step. Give ``--warm`` a warm-started model: an
  untrained one writes no tool call, so its episodes are one short turn.
- ``vocab151k``: the rollout loop at batch 64 with a model built from config with Qwen2.5's
  151,646-token vocabulary (hidden 64, 2 layers): peak RSS (logits of one step are 39 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TOOLGYM_TEST_DATA", REPO.parent / "shared" / "data"))
HOTPOT = DATA / "hotpotqa_dev_distractor.sample.json"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _env_kwargs(n: int, offset: int = 0) -> dict:
    return {"data_files": str(HOTPOT), "corpus": "example", "max_turns": 4, "top_k": 2, "limit": n,
            "offset": offset, "max_tool_result_chars": 1200}


def phase_speed(args) -> list[dict]:
    import torch

    from toolgym.generation.backend import HFBackend
    from toolgym.generation.models import load_model

    model, tok = load_model(args.model)
    model.eval()
    g = torch.Generator().manual_seed(0)
    rows = []

    def prompts(n, length):
        return [torch.randint(200, len(tok) - 200, (length,), generator=g).tolist() for _ in range(n)]

    for batch in (1, 8):
        backend = HFBackend(model, tok, temperature=1.0, stop_ids=[-1])
        p = prompts(batch, 1024)
        t = time.perf_counter()
        backend.generate(p, 1)
        rows.append({"phase": "speed", "setting": f"prefill, batch {batch} x 1,024 tokens",
                     "figure": f"{batch * 1024 / (time.perf_counter() - t):.0f} tokens/s"})
    for batch in (1, 8, 32):
        backend = HFBackend(model, tok, temperature=1.0, stop_ids=[-1])
        p = prompts(batch, 256)
        backend.generate(p, 1)  # prefill, then decode 32 tokens on the cached prompt
        p = [x + [5] for x in p]
        t = time.perf_counter()
        backend.generate(p, 32)
        rows.append({"phase": "speed", "setting": f"decode, batch {batch} (HFBackend)",
                     "figure": f"{batch * 32 / (time.perf_counter() - t):.0f} tokens/s"})
    for batch in (8,):  # transformers' generate, sampling, no scores: the reference
        ids = torch.tensor(prompts(batch, 256))
        t = time.perf_counter()
        model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=1, do_sample=True, top_k=0,
                       pad_token_id=tok.pad_token_id)
        prefill = time.perf_counter() - t
        t = time.perf_counter()
        model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=33, min_new_tokens=33,
                       do_sample=True, top_k=0, pad_token_id=tok.pad_token_id)
        rows.append({"phase": "speed", "setting": f"decode, batch {batch} (transformers generate)",
                     "figure": f"{batch * 32 / max(time.perf_counter() - t - prefill, 1e-9):.0f} tokens/s"})
    return rows


def phase_bench(args) -> list[dict]:
    from toolgym.benchmarks import BenchConfig, run_benchmark
    from toolgym.benchmarks.agents import make_agent

    rows = []
    for reuse in (True, False):
        out = Path(tempfile.mkdtemp(prefix="perf-bench-"))
        agent = make_agent("tool-call", model=args.model, engine="hf", max_new_tokens=args.max_new_tokens,
                           batch_size=args.batch)
        if not reuse:
            agent.chat_model.backend.reuse_prefix = False
        config = BenchConfig(agent="tool-call", model=args.model, envs=["HotpotQA-v0"], n=args.questions,
                             out=str(out), batch_size=args.batch, max_new_tokens=args.max_new_tokens,
                             env_kwargs=_env_kwargs(args.questions), progress=False, reports=False)
        t = time.perf_counter()
        run_benchmark(config, agent=agent)
        wall = time.perf_counter() - t
        records = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
        timeouts = sum(r["status"] == "timeout" for r in records)
        calls = sum(r["tool_calls"] for r in records)
        rows.append({"phase": "bench", "setting": f"tool-call, {args.questions} questions, batch {args.batch}, "
                                                  f"{'cache kept between turns' if reuse else 'every turn prefilled again'}",
                     "figure": f"{wall / len(records):.1f} s/episode ({wall:.0f} s; {timeouts} time-outs; "
                               f"{calls} tool calls; {sum(r['turns'] for r in records)} turns)"})
        agent.close()
    return rows


def phase_grpo(args) -> list[dict]:
    import yaml
    from transformers import TrainerCallback

    from toolgym.trainers.api import build_trainer
    from toolgym.trainers.config import TrainConfig

    data = yaml.safe_load((REPO / "configs" / "smollm2_agent_r1.yaml").read_text())
    data["model"] = args.warm or args.model
    data.pop("warm_start")  # --warm gives the warm-started model; the phase times RL steps
    for env in data["envs"]:
        env["kwargs"]["data_files"] = str(DATA / Path(env["kwargs"]["data_files"]).name)
    micro = min(data["grpo"]["per_device_train_batch_size"], args.episodes)
    if args.episodes % micro:
        sys.exit(f"--episodes {args.episodes} is not a multiple of the config's micro-batch of {micro}")
    data["grpo"].update(output_dir=tempfile.mkdtemp(prefix="perf-grpo-"), max_steps=args.steps, save_steps=100_000,
                        per_device_train_batch_size=micro, gradient_accumulation_steps=args.episodes // micro,
                        logging_steps=1)
    trainer = build_trainer(TrainConfig.from_dict(data))
    timings: list[float] = []
    rollout = trainer.env_rollout
    run = rollout._run

    def timed(*a, **kw):
        t = time.perf_counter()
        eps = run(*a, **kw)
        timings.append(time.perf_counter() - t)
        return eps

    rollout._run = timed
    steps: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, *a, **kw):
            steps.append(time.perf_counter())

        def on_step_end(self, *a, **kw):
            steps[-1] = time.perf_counter() - steps[-1]

    trainer.add_callback(StepTimer())
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    rows = []
    for k, (seconds, roll) in enumerate(zip(steps, timings, strict=False)):
        log = logs[k] if k < len(logs) else {}
        rows.append({"phase": "grpo", "setting": f"step {k + 1}: {args.episodes} episodes, LoRA r=16, 4 turns",
                     "figure": f"{seconds / args.episodes:.1f} s/episode for the step ({roll / args.episodes:.1f} "
                               f"rollout); parse errors {log.get('tools/parse_error_rate', float('nan')):.2f}, "
                               f"frac_reward_zero_std {log.get('frac_reward_zero_std', float('nan')):.2f}"})
    return rows


def phase_vocab151k(args) -> list[dict]:
    import gymnasium as gym

    import toolgym  # noqa: F401
    from toolgym.generation.backend import HFBackend
    from toolgym.trainers.rollout import RolloutEngine
    from toolgym.trainers.tiny_model import TEST_SIZE, build_model, build_tokenizer

    tok = build_tokenizer(["toolgym"] * 10, vocab_size=300)
    tok.add_tokens([f"<extra_{k}>" for k in range(151_646 - len(tok))])
    model = build_model(tok, **TEST_SIZE)
    model.eval()
    envs = [gym.make("MultiHopQA-v0") for _ in range(args.vocab_batch)]
    engine = RolloutEngine(envs, tok, HFBackend(model, tok), max_completion_tokens=512, max_turn_tokens=64)
    t = time.perf_counter()
    episodes = engine.run(list(range(args.vocab_batch)))
    return [{"phase": "vocab151k", "setting": f"rollout of {args.vocab_batch} episodes, vocabulary {len(tok):,}",
             "figure": f"{time.perf_counter() - t:.0f} s, {sum(e.sampled_tokens for e in episodes):,} tokens sampled"}]


PHASES = {"speed": phase_speed, "bench": phase_bench, "grpo": phase_grpo, "vocab151k": phase_vocab151k}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="pypi:smollm2-135m-instruct")
    p.add_argument("--phases", nargs="+", default=list(PHASES), choices=list(PHASES))
    p.add_argument("--questions", type=int, default=30)
    p.add_argument("--batch", type=int, default=16, help="bench: episodes stepped together")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--episodes", type=int, default=32, help="grpo: episodes a step")
    p.add_argument("--steps", type=int, default=1)
    p.add_argument("--warm", default=None, help="grpo: start from this warm-started adapter or model (default --model)")
    p.add_argument("--vocab-batch", type=int, default=64, help="vocab151k: episodes in the rollout")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        rows = PHASES[args.child](args)
        for row in rows:
            row["peak RSS"] = f"{_rss_mb():,.0f} MB"
        print("ROWS " + json.dumps(rows), flush=True)
        return
    if not HOTPOT.is_file() and set(args.phases) & {"bench", "grpo"}:
        sys.exit(f"the HotpotQA sample is not at {HOTPOT}: set TOOLGYM_TEST_DATA or put shared/data beside the repo")
    table = []
    for phase in args.phases:
        argv = [sys.executable, __file__, "--child", phase] + [a for a in sys.argv[1:] if a != "--phases"
                                                                and a not in PHASES]
        done = subprocess.run(argv, capture_output=True, text=True)
        line = next((x for x in done.stdout.splitlines() if x.startswith("ROWS ")), None)
        if done.returncode != 0 or line is None:
            sys.exit(f"phase {phase} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        table += json.loads(line[5:])
    print("| phase | setting | figure | peak RSS |\n|---|---|---|---|")
    for row in table:
        print(f"| {row['phase']} | {row['setting']} | {row['figure']} | {row['peak RSS']} |")


if __name__ == "__main__":
    main()
