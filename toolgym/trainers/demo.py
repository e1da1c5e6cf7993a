"""``toolgym demo``: RL that visibly works on a CPU in minutes.

On the synthetic MultiHopQA world ("Where was the director of FILM born?", 2 hops, tags format),
it builds a tiny Qwen2 model offline, warms it up with a supervised pass on scripted trajectories
(a mix of expert and naive ones, so there is room to improve), measures it on held-out questions
(test split: unseen films and directors), runs GRPO with LoRA through :class:`ToolGRPOTrainer`,
measures again, and compares with a naive-RAG baseline (search the question once, answer with what
comes back). Writes ``results.json``, ``demo.png`` and checkpoints under ``output_dir``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from toolgym.trainers.rollout import Generation, RolloutEngine

TEMPLATE = "film_director_birthplace"
FRESH_WORLD_SEED, RL_WORLD_SEED = 1000, 2000  # warm-start worlds 1000.., RL-only worlds 2000..
# --compare credit: arm -> (algorithm, credit)
CREDIT_ARMS = {"outcome": ("grpo", "outcome"), "step": ("grpo", "step"), "gigpo": ("grpo", "gigpo"),
               "ppo": ("ppo", "outcome")}
SHORT_PROMPT = "Search one fact at a time with <search>query</search>, then reply <answer>answer</answer>."


@dataclass
class DemoConfig:
    """Settings of ``toolgym demo`` (defaults: the measured CPU setting of docs/training.md)."""

    output_dir: str = field(default="runs/demo", metadata={"help": "where results, plots and checkpoints go"})
    seed: int = field(default=0, metadata={"help": "seed of the model init, warm-start data and GRPO"})
    credit: str = field(default="outcome", metadata={"help": "GRPO credit: outcome, step or gigpo"})
    step_weight: float = field(default=1.0, metadata={"help": "credit=gigpo: omega, the weight of the step-level "
                                                             "(anchor-state) advantage"})
    seeds: int = field(default=3, metadata={"help": "--compare credit: RL seeds per arm (seed, seed+1, ...), all from "
                                                    "the one warm model"})
    arms: str = field(default="outcome,step,gigpo,ppo", metadata={
        "help": "--compare credit: the arms, comma-separated: outcome, step, gigpo (GRPO with that credit), "
                "ppo (critic + GAE over turns)"})
    algorithm: str = field(default="grpo", metadata={"help": "grpo, ppo (critic + GAE over turns), rloo, reinforce_pp "
                                                             "or reinforce_pp_baseline"})
    world_seed: int = field(default=0, metadata={"help": "seed of the synthetic world trained and tested on"})
    template: str = field(default=TEMPLATE, metadata={
        "help": "the synthetic world's bridge question template, e.g. film_director_birth_country (3 hops: "
                "set max_turns=4 and a longer max_completion_length)"})
    n_people: int = field(default=1000, metadata={"help": "world size (questions ~ n_people/4)"})
    short_names: bool = field(default=True, metadata={"help": "one-word names for people and films in every world "
                                                               "(WorldConfig.short_names): shorter copies"})
    facts_only: bool = field(default=True, metadata={"help": "passages state only the film's director and the "
                                                              "person's birthplace (WorldConfig.facts_only)"})
    fresh_worlds: int = field(default=24, metadata={"help": "extra worlds whose invented names the warm start "
                                                           "also uses, so copying names generalises"})
    vocab_size: int = field(default=3000, metadata={"help": "byte-level BPE vocabulary size"})
    warm_steps: int = field(default=4000, metadata={"help": "supervised warm-start steps"})
    warm_batch: int = field(default=8, metadata={"help": "warm-start batch size (small batches: the most learning "
                                                         "per CPU second here)"})
    warm_lr: float = field(default=3e-3, metadata={"help": "warm-start peak learning rate (cosine)"})
    warm_mix: tuple[float, float, float] = field(default=(0.4, 0.35, 0.25), metadata={
        "help": "shares of expert (two searches, right answer), one search then the director as answer, "
                "the film as immediate answer"})
    warm_pool: int = field(default=32000, metadata={"help": "scripted trajectories generated for the warm start"})
    warm_world_share: float = field(default=0.04, metadata={
        "help": "share of the warm-start pool on the training world's questions, the rest spread over the fresh "
                "worlds (0.04: about one world's share; each name is seen a few times, so names are copied, not "
                "recalled)"})
    rl_worlds: int = field(default=0, metadata={"help": "worlds never seen in the warm start mixed into the RL tasks, "
                                                        "one share each beside the training world's: unseen names, so RL "
                                                        "rewards copying rather than recall"})
    grpo_steps: int = field(default=60, metadata={"help": "RL optimiser steps (GRPO or the chosen algorithm)"})
    lr: float = field(default=3e-4, metadata={"help": "GRPO learning rate (LoRA)"})
    lora_r: int = field(default=32, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=64, metadata={"help": "LoRA alpha"})
    completions_per_step: int = field(default=32, metadata={"help": "episodes per GRPO step"})
    num_generations: int = field(default=8, metadata={"help": "episodes per question (GRPO group size)"})
    max_turns: int = field(default=3, metadata={"help": "env max_turns"})
    context: str = field(default="full", metadata={
        "help": "env context in RL and the held-out evaluation: full, or window (only the last context_window "
                "search results in full; each step trains on the context it saw). The warm start is on full contexts"})
    context_window: int = field(default=2, metadata={"help": "search results kept in full with context=window"})
    max_turn_tokens: int = field(default=24, metadata={"help": "tokens sampled per turn at most"})
    max_completion_length: int = field(default=320, metadata={"help": "completion tokens per episode (all turns)"})
    eval_questions: int = field(default=40, metadata={"help": "held-out questions evaluated (test split)"})
    eval_samples: int = field(default=4, metadata={"help": "sampled episodes per held-out question (T=1)"})
    eval_every: int = field(default=10, metadata={"help": "GRPO steps between held-out evaluations (0: none)"})
    warm_model: str = field(default="", metadata={
        "help": "a saved warm model (e.g. runs/demo/warm) to start RL from, instead of building and warming one"})
    system_prompt: str = field(default=SHORT_PROMPT, metadata={
        "help": "system message shown instead of the env's (empty: the env's own); short keeps the tiny model fast"})
    threads: int = field(default=0, metadata={"help": "torch threads and warm-pool processes (0: all cores). Use 1 "
                                                      "when other jobs share the machine: far faster then"})
    chat_template: str = field(default="qwen2_5", metadata={
        "help": "the chat template TRL ships that the tiny tokenizer carries (qwen2_5, qwen3, llama3_1...), with "
                "its special tokens and end-of-turn token; a warm_model keeps the template it was saved with"})
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "apply_chat_template kwargs for the warm start, RL and the held-out evaluation "
                "(e.g. chat_template_kwargs.enable_thinking=true)"})

    def __post_init__(self):
        if self.credit not in ("outcome", "step", "gigpo"):
            raise ValueError(f"credit must be 'outcome', 'step' or 'gigpo', got {self.credit!r}")
        from toolgym.envs.errors import unknown_name_error
        from toolgym.envs.tool_env import CONTEXT_MODES
        from toolgym.trainers.ppo_settings import ALGORITHMS, PPOSettings

        if self.algorithm not in ALGORITHMS:
            PPOSettings(algorithm=self.algorithm)  # raises naming the valid ones and the closest
        if self.warm_model and not Path(self.warm_model).is_dir():
            raise FileNotFoundError(f"warm_model {self.warm_model!r}: no such directory. Build it with: toolgym demo "
                                    f"grpo_steps=0 --output-dir {Path(self.warm_model).parent}")
        if self.grpo_steps < 0:
            raise ValueError(f"grpo_steps must be >= 0 (0: build and save the warm model only), got {self.grpo_steps}")
        for arm in self.arms.split(","):
            if arm not in CREDIT_ARMS:
                raise unknown_name_error("credit arm", arm, CREDIT_ARMS)
        if self.seeds < 1 or self.step_weight < 0:
            raise ValueError(f"seeds must be >= 1 and step_weight >= 0, got {self.seeds} and {self.step_weight}")
        if self.completions_per_step % self.num_generations:
            raise ValueError(f"completions_per_step ({self.completions_per_step}) must be a multiple of "
                             f"num_generations ({self.num_generations})")
        if self.context not in CONTEXT_MODES:
            raise unknown_name_error("context", self.context, CONTEXT_MODES)
        from toolgym.envs.multihop_qa.synthetic import TEMPLATES

        if self.template not in TEMPLATES or TEMPLATES[self.template].type != "bridge":
            raise unknown_name_error("bridge template", self.template,
                                     [n for n, t in TEMPLATES.items() if t.type == "bridge"])
        if not 0 <= self.warm_world_share <= 1:
            raise ValueError(f"warm_world_share must be in [0, 1], got {self.warm_world_share}")
        if len(self.warm_mix) != 3 or abs(sum(self.warm_mix) - 1) > 1e-6 or min(self.warm_mix) < 0:
            raise ValueError(f"warm_mix must be three shares summing to 1, got {self.warm_mix}")
        from toolgym.generation.chat import shipped_templates

        if self.chat_template not in shipped_templates():
            raise unknown_name_error("chat_template", self.chat_template, shipped_templates())
        if not isinstance(self.chat_template_kwargs, dict) or not all(isinstance(k, str)
                                                                      for k in self.chat_template_kwargs):
            raise ValueError(f"chat_template_kwargs must map names to values (e.g. {{'enable_thinking': True}}), "
                             f"got {self.chat_template_kwargs!r}")


def env_kwargs(cfg: DemoConfig, split: str, world_seed: int | None = None, acting: bool = False) -> dict[str, Any]:
    """The demo's MultiHopQA kwargs; ``acting``: an env the policy acts in (RL, held-out evaluation),
    which takes ``cfg.context`` (scripted warm-start episodes are always on full contexts)."""
    context = dict(context=cfg.context, context_window=cfg.context_window) if acting and cfg.context != "full" else {}
    return dict(dataset="synthetic", split=split, format="tags", max_turns=cfg.max_turns, top_k=1,
                world={"seed": cfg.world_seed if world_seed is None else world_seed, "n_people": cfg.n_people,
                       "templates": [cfg.template], "short_names": cfg.short_names,
                       "facts_only": cfg.facts_only}, **context)


def env_spec(cfg: DemoConfig, kwargs):
    """The demo's env as an :class:`EnvSpec`: MultiHopQA with ``kwargs`` and the demo's system prompt."""
    from toolgym.trainers.grpo import EnvSpec

    return EnvSpec("MultiHopQA-v0", kwargs, system_prompt=cfg.system_prompt or None)


def _make(cfg: DemoConfig, kwargs):
    return env_spec(cfg, kwargs).make()


def tok_template_text(messages) -> str:
    """The Qwen2.5 rendering of ``messages`` (for training the tokenizer on the chat scaffolding)."""
    import jinja2

    from toolgym.trainers.tiny_model import qwen_chat_template

    return jinja2.Template(qwen_chat_template()).render(messages=messages, add_generation_prompt=True)


def tokenizer_texts(envs) -> list[str]:
    """What the demo's tokenizer is trained on: each env's world (passages, questions, titles
    thrice) and its chat scaffolding (prompts, action and result syntax)."""
    texts = []
    for env in envs:
        u = env.unwrapped
        texts += [p.text for p in u.passages] + [ex.question for ex in u.examples] + [p.title for p in u.passages] * 3
        obs, _ = env.reset(seed=0)
        scaffold = [*obs, {"role": "assistant", "content": "<search>x</search>"},
                    {"role": "user", "content": '<information>Doc 1 (Title: "x") x</information>'}]
        texts += [tok_template_text(scaffold)] * 100
    return texts


# -- scripted trajectories for the warm start --------------------------------------------------------
class ScriptedBackend:
    """A generation backend that 'samples' scripted texts: plans[question] = list of turn texts."""

    def __init__(self, tokenizer, plans: dict[str, list[str]]):
        self.tok, self.plans = tokenizer, plans

    def any_alive(self, alive):
        return alive

    def generate(self, prompts, max_new_tokens):
        out = []
        for p in prompts:
            text = self.tok.decode(p[-400:])
            asked = text[text.rindex("Question: "):]
            q = max((k for k in self.plans if asked.startswith(k)), key=len)
            turn = asked.count("<information>")  # one search result per past turn, whatever the chat template
            plan = self.plans[q]
            ids = self.tok(plan[min(turn, len(plan) - 1)], add_special_tokens=False)["input_ids"]
            ids = ids + [self.tok.eos_token_id]
            out.append(Generation(ids, [0.0] * len(ids)))
        return out


def _plan(kind: str, example) -> list[str]:
    """Scripted turns. The naive plans answer wrongly but still copy a name from the context (the
    last entity reached, the question's film), as naive RAG does: every target is then a copy, which
    is what the tiny model must learn, and the naive branches keep EM at 0. ``one_search`` stops one
    hop short (2 hops: search the film, answer its director; 3 hops: two searches, then the city)."""
    titles = list(example.supporting_titles)
    # A space after the opening tag: names then tokenise as they do in the question and passages
    # (" Zano", not "Zano"), so copying is token-for-token.
    if kind == "expert":
        return [f"<search> {t}</search>" for t in titles] + [f"<answer> {example.answer}</answer>"]
    if kind == "one_search":
        return [f"<search> {t}</search>" for t in titles[:-1]] + [f"<answer> {titles[-1]}</answer>"]
    return [f"<answer> {titles[0]}</answer>"]


def warm_trajectories(tokenizer, envs_by_world: list[list], n: int, mix, rng, max_completion_length: int,
                      first_share: float = 0.5, processes: int = 1, chat_template_kwargs: dict | None = None):
    """``n`` scripted episodes (prompt_ids, completion_ids, env_mask), ``first_share`` of them on the
    first world (the training world), the rest spread evenly over the others; kinds drawn with ``mix``.

    Every batch's questions and kinds are drawn here first, in one fixed order; the rollouts then
    run in ``processes`` forked workers (scripted rollouts are deterministic), so the pool is the
    same for any number of processes.
    """
    kinds = ("expert", "one_search", "immediate")
    first = n if len(envs_by_world) == 1 else round(n * first_share)
    per_world = [first] + [max(1, (n - first) // max(len(envs_by_world) - 1, 1))] * (len(envs_by_world) - 1)
    jobs = []
    for w, (envs, count) in enumerate(zip(envs_by_world, per_world, strict=True)):
        n_questions = len(envs[0].unwrapped.examples)
        for done in range(0, count, len(envs)):
            idx = rng.integers(n_questions, size=min(len(envs), count - done))
            jobs.append((w, [(int(i), kinds[int(rng.choice(3, p=list(mix)))]) for i in idx]))
    global _SCRIPTED
    _SCRIPTED = (tokenizer, envs_by_world, max_completion_length, chat_template_kwargs)
    try:
        if processes > 1 and can_fork():
            with multiprocessing.get_context("fork").Pool(processes) as pool:  # workers inherit the envs
                batches = pool.map(_scripted_batch, jobs)
        else:
            batches = [_scripted_batch(job) for job in jobs]
    finally:
        _SCRIPTED = None
    return [sample for batch in batches for sample in batch]


def can_fork() -> bool:
    """Whether forking worker processes is safe here: fork copies only the calling thread, so a lock
    another thread holds at that moment stays held in the child (a hang seen in the test suite);
    fork only from a single-threaded process, else work in-process."""
    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


_SCRIPTED: tuple | None = None  # (tokenizer, envs_by_world, max_completion_length, chat_template_kwargs) while built


def _scripted_batch(job) -> list[tuple]:
    """One lock-step batch of scripted episodes: ``job`` = (world index, [(question index, kind), ...])."""
    tokenizer, envs_by_world, max_completion_length, chat_template_kwargs = _SCRIPTED
    w, drawn = job
    envs = envs_by_world[w]
    examples = envs[0].unwrapped.examples
    # one plan per question in this batch: duplicate questions share the last one drawn
    plans = {f"Question: {examples[i].question}": _plan(kind, examples[i]) for i, kind in drawn}
    engine = RolloutEngine(envs[:len(drawn)], tokenizer, ScriptedBackend(tokenizer, plans),
                           max_completion_tokens=max_completion_length, max_turn_tokens=64,
                           chat_template_kwargs=chat_template_kwargs)
    episodes = engine.run([0] * len(drawn), options=[{"index": i} for i, _ in drawn])
    return [(e.prompt_ids, e.completion_ids, e.env_mask) for e in episodes]


def sampled_token_loss(model, input_ids, attention_mask, labels):
    """``model(..., labels=labels).loss`` (mean next-token loss over labelled tokens), with the LM
    head run only where a label is: most tokens of an episode are the env's, and the head over the
    vocabulary is a large share of this tiny model's compute."""
    import torch

    hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    target = labels[:, 1:]
    keep = target != -100
    logits = model.get_output_embeddings()(hidden[:, :-1][keep])
    return torch.nn.functional.cross_entropy(logits.float(), target[keep])


def supervised_warm_start(model, samples, *, steps: int, batch: int, lr: float, seed: int, pad_id: int,
                          progress: bool = True, callback=None, every: int = 0):
    """Next-token loss on the sampled (env_mask 1) tokens of scripted episodes; AdamW, cosine."""
    import torch
    from tqdm.auto import tqdm

    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / steps, 1.0))))
    model.train()
    bar = tqdm(range(steps), desc="warm start", disable=not progress)
    for step in bar:
        pick = torch.randint(len(samples), (batch,), generator=g).tolist()
        seqs = [samples[k][0] + samples[k][1] for k in pick]
        width = max(len(s) for s in seqs)
        ids = torch.full((batch, width), pad_id)
        att = torch.zeros((batch, width), dtype=torch.long)
        labels = torch.full((batch, width), -100)
        for r, k in enumerate(pick):
            p, c, m = samples[k]
            n = len(p) + len(c)
            ids[r, :n] = torch.tensor(p + c)
            att[r, :n] = 1
            labels[r, len(p):n] = torch.tensor([t if keep else -100 for t, keep in zip(c, m, strict=True)])
        loss = sampled_token_loss(model, ids, att, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if callback is not None and every and (step + 1) % every == 0:
            model.eval()
            callback(step + 1)
            model.train()
    model.eval()
    return model


# -- evaluation ------------------------------------------------------------------------------------
def sampled_spans(mask) -> list[tuple[int, int]]:
    """``(start, end)`` of each run of sampled tokens (``env_mask`` 1) in a completion: its assistant turns."""
    spans, start = [], None
    for k, sampled in enumerate([*mask, 0]):
        if sampled and start is None:
            start = k
        elif not sampled and start is not None:
            spans.append((start, k))
            start = None
    return spans


def copy_accuracy(model, tokenizer, samples) -> list[float]:
    """Teacher-forced accuracy of the copied names on held-out expert episodes, per turn (1: the
    film copied from the question, 2: the director copied from a passage, 3: the birthplace, and so
    on for longer questions): a
    turn counts when every token after its action tag (``<search>``, ``<answer>``) is predicted.
    The tag itself is left out: in the warm-start mix the same context leads to either tag. RL does
    not repair copying (DESIGN.md), so check this after the warm start."""
    import torch

    hits: list[list[int]] = [[] for _ in range(max((len(sampled_spans(m)) for _, _, m in samples), default=3))]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for prompt, completion, mask in samples:
            pred = model(torch.tensor([prompt + completion])).logits[0].argmax(-1).tolist()
            for turn, (start, end) in enumerate(sampled_spans(mask)):
                name = start + next((j for j in range(1, end - start + 1)
                                     if tokenizer.decode(completion[start:start + j]).endswith(">")), 0)
                hits[turn].append(int(all(pred[len(prompt) + j - 1] == completion[j] for j in range(name, end))))
    model.train(was_training)
    return [sum(h) / len(h) if h else 0.0 for h in hits]


def held_out_episodes(model, tokenizer, envs, order: list[int], *, temperature: float = 1.0,
                      max_turn_tokens: int = 24, max_completion_length: int = 320, seed: int = 0,
                      chat_template_kwargs: dict | None = None) -> list:
    """One sampled episode per entry of ``order`` (question indices of ``envs``' split), rolled out
    ``len(envs)`` at a time; temperature 0 is greedy."""
    import torch

    from toolgym.trainers.rollout import HFBackend

    torch.manual_seed(seed)
    backend = HFBackend(model, tokenizer, temperature=temperature, top_k=0)
    episodes = []
    was_training = model.training
    model.eval()
    for k in range(0, len(order), len(envs)):
        chunk = order[k:k + len(envs)]
        engine = RolloutEngine(envs[:len(chunk)], tokenizer, backend, max_completion_tokens=max_completion_length,
                               max_turn_tokens=max_turn_tokens, chat_template_kwargs=chat_template_kwargs)
        episodes += engine.run([0] * len(chunk), options=[{"index": q} for q in chunk])
    model.train(was_training)
    return episodes


def evaluate(model, tokenizer, envs, n_questions: int, samples: int, *, temperature: float = 1.0,
             max_turn_tokens: int = 24, max_completion_length: int = 320, seed: int = 0,
             chat_template_kwargs: dict | None = None) -> dict[str, float]:
    """Held-out metrics: ``samples`` episodes per question (0 temperature = greedy, one each)."""
    from toolgym.trainers.grpo import episode_metrics

    questions = range(min(n_questions, len(envs[0].unwrapped.examples)))
    reps = 1 if temperature == 0 else samples
    episodes = held_out_episodes(model, tokenizer, envs, [q for q in questions for _ in range(reps)],
                                 temperature=temperature, max_turn_tokens=max_turn_tokens,
                                 max_completion_length=max_completion_length, seed=seed,
                                 chat_template_kwargs=chat_template_kwargs)
    m = episode_metrics(episodes)
    return {"em": m["answer/em"], "f1": m["answer/f1"], "return": m["episode/return"], "tool_calls": m["tools/calls"],
            "turns": m["episode/turns"], "episodes": len(episodes)}


def naive_rag(envs, n_questions: int) -> dict[str, float]:
    """The naive-RAG baseline: search with the question, answer with the first new title."""
    from toolgym.envs.multihop_qa.scripted import SCRIPTED_AGENTS, run_episode
    from toolgym.envs.result import EpisodeResult

    agent = SCRIPTED_AGENTS["naive-search"]()
    env = envs[0]
    rows = [run_episode(env, agent, seed=0, options={"index": q})
            for q in range(min(n_questions, len(env.unwrapped.examples)))]
    n = len(rows)
    ends = [EpisodeResult.from_info(r) for r in rows]
    return {"em": sum(float(r.success) for r in ends) / n, "f1": sum(r.score for r in ends) / n,
            "return": sum(r["return"] for r in rows) / n, "tool_calls": sum(r["tool_calls"] for r in rows) / n,
            "episodes": n}


# -- the whole demo ------------------------------------------------------------------------------------
def _printer(progress: bool):
    """``print`` with flush when ``progress``, else a no-op."""
    return (lambda *a: print(*a, flush=True)) if progress else (lambda *a: None)


@dataclass
class WarmStart:
    """What the RL stage starts from: the warm model, its tokenizer, the envs and the 'before' numbers."""

    model: Any
    tokenizer: Any
    test_envs: list
    before: dict[str, float]
    before_greedy: dict[str, float]
    naive_rag: dict[str, float]
    copy_accuracy: list[float]
    timings: dict[str, float]


def held_out_eval(cfg: DemoConfig, ws: WarmStart, model, temperature: float = 1.0) -> dict[str, float]:
    return evaluate(model, ws.tokenizer, ws.test_envs, cfg.eval_questions, cfg.eval_samples, temperature=temperature,
                    max_turn_tokens=cfg.max_turn_tokens, max_completion_length=cfg.max_completion_length, seed=cfg.seed,
                    chat_template_kwargs=cfg.chat_template_kwargs)


def warm_start(cfg: DemoConfig, progress: bool = True) -> WarmStart:
    """Steps 1-3: worlds, tokenizer and tiny model (or ``cfg.warm_model``), supervised warm start,
    and the held-out numbers before RL (sampled and greedy EM, copy accuracy, naive RAG)."""
    import numpy as np
    import torch

    from toolgym.generation.chat import template_name
    from toolgym.trainers.tiny_model import (
        DEMO_SIZE,
        build_model,
        build_tokenizer,
        load_tiny,
        save_tiny,
        with_chat_template,
    )

    t0 = time.time()
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    timings: dict[str, float] = {"warm_start_s": 0.0}
    log = _printer(progress)

    # 1. worlds: the training world (train split for learning, test split held out) and fresh ones
    train_envs = [_make(cfg, env_kwargs(cfg, "train")) for _ in range(64)]
    test_envs = [_make(cfg, env_kwargs(cfg, "test", acting=True)) for _ in range(64)]
    scripted_test = test_envs if cfg.context == "full" else [_make(cfg, env_kwargs(cfg, "test")) for _ in range(64)]
    log(f"world: {len(train_envs[0].unwrapped.examples)} train / {len(test_envs[0].unwrapped.examples)} test "
        f"questions; fresh worlds: {cfg.fresh_worlds}")

    if cfg.warm_model:
        model, tok = load_tiny(cfg.warm_model)
        log(f"warm model loaded from {cfg.warm_model}")
        if cfg.chat_template != DemoConfig.chat_template and template_name(tok) != cfg.chat_template:
            raise ValueError(f"chat_template={cfg.chat_template!r}, but the warm model {cfg.warm_model!r} was built "
                             f"with {template_name(tok)!r}; drop chat_template= or build a warm model with it")
    else:
        fresh = [[_make(cfg, env_kwargs(cfg, "train", world_seed=FRESH_WORLD_SEED + k)) for _ in range(64)]
                 for k in range(cfg.fresh_worlds)]
        # 2. tokenizer on text the model will see, never on the held-out world's text
        tok = build_tokenizer(tokenizer_texts([envs[0] for envs in fresh]), vocab_size=cfg.vocab_size)
        if template_name(tok) != cfg.chat_template:
            tok = with_chat_template(tok, cfg.chat_template)
        model = build_model(tok, **DEMO_SIZE, seed=cfg.seed)

        # 3. warm start on scripted trajectories
        t = time.time()
        processes = (cfg.threads or os.cpu_count() or 1) if can_fork() else 1
        log(f"scripted warm-start pool: {cfg.warm_pool} episodes over {1 + len(fresh)} worlds, {processes} processes")
        pool = warm_trajectories(tok, [train_envs] + fresh, cfg.warm_pool, cfg.warm_mix, rng, cfg.max_completion_length,
                                 first_share=cfg.warm_world_share, processes=processes,
                                 chat_template_kwargs=cfg.chat_template_kwargs)
        log(f"pool built in {time.time() - t:.0f} s")
        supervised_warm_start(model, pool, steps=cfg.warm_steps, batch=cfg.warm_batch, lr=cfg.warm_lr, seed=cfg.seed,
                              pad_id=tok.pad_token_id, progress=progress)
        timings["warm_start_s"] = time.time() - t
        save_tiny(model, tok, out / "warm")
    heldout = warm_trajectories(tok, [scripted_test], 2 * min(cfg.eval_questions, 32), (1.0, 0.0, 0.0),
                                np.random.default_rng(cfg.seed + 1), cfg.max_completion_length,
                                chat_template_kwargs=cfg.chat_template_kwargs)
    copy_acc = copy_accuracy(model, tok, heldout)
    log(f"teacher-forced held-out copy accuracy per expert turn (film, director, birthplace): "
        f"{[round(a, 2) for a in copy_acc]}")

    ws = WarmStart(model, tok, test_envs, {}, {}, naive_rag(test_envs, cfg.eval_questions), copy_acc, timings)
    t = time.time()
    ws.before, ws.before_greedy = held_out_eval(cfg, ws, model), held_out_eval(cfg, ws, model, 0.0)
    timings["eval_s"] = time.time() - t
    timings["setup_s"] = time.time() - t0  # this whole stage: worlds, tokenizer, warm start, 'before' numbers
    log(f"after warm start: sampled EM {ws.before['em']:.2f}, greedy EM {ws.before_greedy['em']:.2f}; "
        f"naive RAG EM {ws.naive_rag['em']:.2f}")
    return ws


def rl_env_specs(cfg: DemoConfig) -> list:
    """The RL task mix: the training world's train split and ``cfg.rl_worlds`` worlds that neither the
    warm start nor the evaluation ever saw, one equal share each."""
    worlds = [cfg.world_seed] + [RL_WORLD_SEED + k for k in range(cfg.rl_worlds)]
    return [env_spec(cfg, env_kwargs(cfg, "train", world_seed=w, acting=True)) for w in worlds]


def reinforce(cfg: DemoConfig, ws: WarmStart, model, out: Path, progress: bool = True) -> dict[str, Any]:
    """Step 4-5: RL with LoRA (``cfg.algorithm``) from ``model``, held-out EM every ``eval_every``
    steps, the final numbers; writes ``results.json``, ``demo.png`` and the adapter under ``out``."""
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import GRPOConfig

    from toolgym.trainers.grpo import ToolGRPOTrainer

    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    log = _printer(progress)
    timings = dict(ws.timings)
    curve = [{"step": 0, **ws.before}]

    class HeldOut(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if cfg.eval_every and state.global_step % cfg.eval_every == 0:
                te = time.time()
                curve.append({"step": state.global_step, **held_out_eval(cfg, ws, model)})
                timings["eval_s"] += time.time() - te
                log(f"{cfg.algorithm} step {state.global_step}: held-out sampled EM {curve[-1]['em']:.2f}, "
                    f"return {curve[-1]['return']:.3f}")

    args = GRPOConfig(
        output_dir=str(out / "grpo"), max_steps=cfg.grpo_steps, learning_rate=cfg.lr, lr_scheduler_type="constant",
        per_device_train_batch_size=cfg.completions_per_step, num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length, temperature=1.0, top_k=0, beta=0.0,
        logging_steps=5, save_strategy="steps", save_steps=20, save_total_limit=1, report_to="none",
        use_cpu=True, bf16=False, seed=cfg.seed, disable_tqdm=not progress,
    )
    common = dict(
        envs=rl_env_specs(cfg),
        args=args, max_turn_tokens=cfg.max_turn_tokens, processing_class=ws.tokenizer, callbacks=[HeldOut()],
        peft_config=LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0,
                               target_modules="all-linear", task_type="CAUSAL_LM"),
        num_tasks=cfg.grpo_steps * cfg.completions_per_step, chat_template_kwargs=cfg.chat_template_kwargs or None,
    )
    if cfg.algorithm == "grpo":
        trainer = ToolGRPOTrainer(model, credit=cfg.credit, step_weight=cfg.step_weight, **common)
    else:  # PPO and the critic-free estimators share the rollouts and TRL's machinery
        from toolgym.trainers.ppo import PPOSettings, ToolPPOTrainer

        trainer = ToolPPOTrainer(model, ppo=PPOSettings(algorithm=cfg.algorithm, credit=cfg.credit,
                                                        step_weight=cfg.step_weight), **common)
    eval_before = timings["eval_s"]
    trainer.train()
    timings["rl_s"] = time.time() - t0 - (timings["eval_s"] - eval_before)  # without the held-out evals
    trainer.save_model(str(out / "final"))

    after, after_greedy = held_out_eval(cfg, ws, trainer.model), held_out_eval(cfg, ws, trainer.model, 0.0)
    if curve[-1]["step"] != cfg.grpo_steps:
        curve.append({"step": cfg.grpo_steps, **after})
    timings["total_s"] = timings["setup_s"] + time.time() - t0
    reach = next((c["step"] for c in curve if c["em"] >= 0.8), None)
    results = {"config": asdict(cfg), "before": ws.before, "before_greedy": ws.before_greedy, "after": after,
               "after_greedy": after_greedy, "naive_rag": ws.naive_rag, "copy_accuracy": ws.copy_accuracy,
               "curve": curve, "steps_to_em_0.8": reach, "timings": timings, "train_log": trainer.state.log_history}
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    plot(results, out / "demo.png")
    log(summary(results))
    log(f"results: {out / 'results.json'}, plot: {out / 'demo.png'}, final adapter: {out / 'final'}, "
        f"checkpoints: {out / 'grpo'}" + ("" if cfg.warm_model else f", warm model: {Path(cfg.output_dir) / 'warm'}"))
    return results


def run_demo(cfg: DemoConfig, progress: bool = True) -> dict[str, Any]:
    """Build, warm up, evaluate, train with RL, evaluate; returns (and writes) the results.
    With ``grpo_steps=0`` it stops after the warm start: the warm model is saved in
    ``<output_dir>/warm`` (what ``configs/demo_cpu.yaml`` trains from)."""
    ws = warm_start(cfg, progress)
    if cfg.grpo_steps == 0:
        where = cfg.warm_model or Path(cfg.output_dir) / "warm"
        _printer(progress)(f"grpo_steps=0: no RL. Warm model and tokenizer: {where}")
        return {"config": asdict(cfg), "before": ws.before, "before_greedy": ws.before_greedy,
                "naive_rag": ws.naive_rag, "copy_accuracy": ws.copy_accuracy, "timings": ws.timings,
                "warm_model": str(where)}
    return reinforce(cfg, ws, ws.model, Path(cfg.output_dir), progress)


def compare_algorithms(cfg: DemoConfig, algorithms: list[str], progress: bool = True) -> dict[str, Any]:
    """One warm start, then each algorithm from a copy of the same warm model with the same seed;
    writes ``<output_dir>/<algorithm>/`` for each, ``curves.json`` and ``curves.png`` (held-out
    return and sampled EM against the RL step, one line per algorithm)."""
    import copy

    ws = warm_start(cfg, progress)
    runs = {}
    for algorithm in algorithms:
        run_cfg = dataclasses.replace(cfg, algorithm=algorithm)
        runs[algorithm] = reinforce(run_cfg, ws, copy.deepcopy(ws.model), Path(cfg.output_dir) / algorithm, progress)
    curves = {a: {"curve": r["curve"], "rl_s": r["timings"]["rl_s"], "steps_to_em_0.8": r["steps_to_em_0.8"]}
              for a, r in runs.items()}
    out = Path(cfg.output_dir)
    (out / "curves.json").write_text(json.dumps({"config": asdict(cfg), "naive_rag": ws.naive_rag,
                                                 "algorithms": curves}, indent=2))
    plot_curves(curves, ws.naive_rag, out / "curves.png", title=f"toolgym demo: algorithms (credit={cfg.credit}, "
                                                                 f"seed={cfg.seed})")
    log = _printer(progress)
    log(f"{'algorithm':<22} {'return':>7} {'sampled EM':>10} {'tool calls':>10} {'RL s':>6}")
    for a, r in runs.items():
        log(f"{a:<22} {r['after']['return']:>7.3f} {r['after']['em']:>10.2f} {r['after']['tool_calls']:>10.2f} "
            f"{r['timings']['rl_s']:>6.0f}")
    return runs


def compare_credit(cfg: DemoConfig, progress: bool = True) -> dict[str, Any]:
    """One warm model, then every arm of ``cfg.arms`` (outcome, step, gigpo credit with GRPO; PPO's
    GAE over turns) for ``cfg.seeds`` RL seeds, each from a copy of that model, into
    ``<output_dir>/<arm>-s<seed>/``. A run whose ``results.json`` exists is read, not re-run (so
    arms can run in separate processes from a saved ``warm_model`` and be gathered by a last call).
    Writes ``credit.json``, ``credit.md`` (the table) and ``credit.png`` (held-out sampled EM and
    return against the RL step and the RL wall time, mean over seeds, min-max shaded)."""
    import copy

    out = Path(cfg.output_dir)
    arms = cfg.arms.split(",")
    seeds = list(range(cfg.seed, cfg.seed + cfg.seeds))
    todo = [(a, s) for s in seeds for a in arms if not (out / f"{a}-s{s}" / "results.json").exists()]
    ws = warm_start(cfg, progress) if todo else None
    runs: dict[str, list[dict]] = {a: [] for a in arms}
    for s in seeds:
        for a in arms:
            path = out / f"{a}-s{s}"
            if (a, s) in todo:
                algorithm, credit = CREDIT_ARMS[a]
                run_cfg = dataclasses.replace(cfg, algorithm=algorithm, credit=credit, seed=s)
                runs[a].append(reinforce(run_cfg, ws, copy.deepcopy(ws.model), path, progress))
            else:
                runs[a].append(json.loads((path / "results.json").read_text()))
    table = credit_table(runs)
    naive = next(iter(runs.values()))[0]["naive_rag"]
    (out / "credit.json").write_text(json.dumps({"config": asdict(cfg), "naive_rag": naive, "table": table,
                                                 "curves": {a: [r["curve"] for r in rs] for a, rs in runs.items()},
                                                 "rl_s": {a: [r["timings"]["rl_s"] for r in rs] for a, rs in runs.items()}},
                                                indent=2))
    (out / "credit.md").write_text(credit_markdown(table))
    plot_credit(runs, naive, out / "credit.png", title=f"toolgym demo: credit ({cfg.template}, {len(seeds)} seeds)")
    _printer(progress)(credit_markdown(table))
    return {"runs": runs, "table": table}


def em_interval(em: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a rate ``em`` over ``n`` episodes."""
    if n <= 0:
        return 0.0, 1.0
    centre = (em + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(em * (1 - em) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def credit_table(runs: dict[str, list[dict]], target: float = 0.8) -> list[dict[str, Any]]:
    """Per arm: held-out sampled EM after RL (mean over seeds, each seed, and the 95% Wilson interval
    of all seeds' episodes pooled), return, EM curve (mean over seeds), RL steps to ``target`` EM
    (per seed) and RL seconds (mean)."""
    rows = []
    for arm, rs in runs.items():
        ems = [r["after"]["em"] for r in rs]
        n = sum(r["after"]["episodes"] for r in rs)
        pooled = sum(r["after"]["em"] * r["after"]["episodes"] for r in rs) / max(n, 1)
        steps = sorted({c["step"] for r in rs for c in r["curve"]})
        curve = [sum(next((c["em"] for c in r["curve"] if c["step"] == st), float("nan")) for r in rs) / len(rs)
                 for st in steps]
        rows.append({"arm": arm, "seeds": len(rs), "em": pooled, "em_per_seed": ems, "em_ci": em_interval(pooled, n),
                     "episodes": n, "return": sum(r["after"]["return"] for r in rs) / len(rs),
                     "greedy_em": sum(r["after_greedy"]["em"] for r in rs) / len(rs),
                     "steps": steps, "em_curve": curve,
                     "steps_to_target": [next((c["step"] for c in r["curve"] if c["em"] >= target), None) for r in rs],
                     "rl_s": sum(r["timings"]["rl_s"] for r in rs) / len(rs)})
    return rows


def credit_markdown(table: list[dict[str, Any]]) -> str:
    steps = table[0]["steps"] if table else []
    head = ("| arm | seeds | sampled EM after (95% CI, pooled) | per seed | greedy EM | return | EM at steps "
            f"{', '.join(map(str, steps))} (mean) | steps to 0.8 | RL s / run |")
    lines = [head, "|" + "---|" * 9]
    for r in table:
        lo, hi = r["em_ci"]
        lines.append(f"| {r['arm']} | {r['seeds']} | {r['em']:.2f} ({lo:.2f}-{hi:.2f}) | "
                     f"{', '.join(f'{e:.2f}' for e in r['em_per_seed'])} | {r['greedy_em']:.2f} | {r['return']:.2f} | "
                     f"{', '.join(f'{e:.2f}' for e in r['em_curve'])} | "
                     f"{', '.join('-' if s is None else str(s) for s in r['steps_to_target'])} | {r['rl_s']:.0f} |")
    return "\n".join(lines) + "\n"


def plot_credit(runs: dict[str, list[dict]], naive: dict[str, float], path: Path, title: str) -> None:
    """Held-out sampled EM against the RL step and against RL wall time, and return against the RL
    step: one line per arm (mean over seeds), the seeds' min-max shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    for arm, rs in runs.items():
        steps = sorted({c["step"] for r in rs for c in r["curve"]})
        for ax, key, clock in ((axes[0], "em", False), (axes[1], "em", True), (axes[2], "return", False)):
            vals = np.array([[next((c[key] for c in r["curve"] if c["step"] == st), np.nan) for st in steps]
                             for r in rs])
            x = np.array(steps, dtype=float)
            if clock:  # RL seconds, at a constant pace per step (the held-out evaluations left out)
                x = x * np.mean([r["timings"]["rl_s"] for r in rs]) / max(steps[-1], 1)
            line, = ax.plot(x, np.nanmean(vals, 0), marker="o", ms=3, label=arm)
            ax.fill_between(x, np.nanmin(vals, 0), np.nanmax(vals, 0), color=line.get_color(), alpha=0.15)
    for ax, key, label, xlabel in ((axes[0], "em", "held-out sampled EM", "RL step"),
                                   (axes[1], "em", "held-out sampled EM", "RL wall time (s)"),
                                   (axes[2], "return", "held-out episode return", "RL step")):
        ax.axhline(naive[key], ls=":", color="gray", label="naive RAG")
        ax.set_title(label)
        ax.set_xlabel(xlabel)
    axes[0].set_ylim(-0.02, 1)
    axes[1].set_ylim(-0.02, 1)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def summary(r: dict) -> str:
    after = f"after {r['config'].get('algorithm', 'grpo')}"
    rows = [("naive RAG", r["naive_rag"], None), ("warm start", r["before"], r["before_greedy"]),
            (after, r["after"], r["after_greedy"])]
    lines = [f"{'agent':<27} {'sampled EM':>10} {'greedy EM':>9} {'F1':>6} {'return':>7} {'tool calls':>10}"]
    for name, m, g in rows:
        greedy = f"{g['em']:.2f}" if g else "-"
        lines.append(f"{name:<27} {m['em']:>10.2f} {greedy:>9} {m['f1']:>6.2f} {m['return']:>7.2f} "
                     f"{m['tool_calls']:>10.2f}")
    t = r["timings"]
    lines.append("held-out teacher-forced copy accuracy after the warm start (film, director, birthplace): "
                 + ", ".join(f"{a:.2f}" for a in r.get("copy_accuracy", [])))
    lines.append(f"RL steps to held-out sampled EM >= 0.8: {r['steps_to_em_0.8']}; total {t['total_s']:.0f} s "
                 f"(warm start {t['warm_start_s']:.0f} s)")
    return "\n".join(lines)


def plot(r: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    names = ["naive RAG", "warm start", "after GRPO"]
    for ax, key, title in zip(axes[:3], ["return", "em", "tool_calls"], ["episode return", "EM (sampled)",
                                                                        "tool calls / episode"], strict=True):
        vals = [r["naive_rag"][key], r["before"][key], r["after"][key]]
        ax.bar(names, vals, color=["#999999", "#6a9fd4", "#2a6f2a"])
        ax.set_title(title)
        for k, v in enumerate(vals):
            ax.text(k, v, f"{v:.2f}", ha="center", va="bottom")
    steps = [c["step"] for c in r["curve"]]
    axes[3].plot(steps, [c["em"] for c in r["curve"]], marker="o")
    axes[3].axhline(0.8, ls="--", color="gray")
    axes[3].set_xlabel("GRPO step")
    axes[3].set_title("held-out sampled EM")
    axes[3].set_ylim(0, 1)
    fig.suptitle(f"toolgym demo ({r['config'].get('algorithm', 'grpo')}, credit={r['config']['credit']}, "
                 f"seed={r['config']['seed']})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_curves(curves: dict[str, dict], naive: dict[str, float], path: Path, title: str) -> None:
    """Held-out return, sampled EM and tool calls against the RL step, one line per algorithm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("return", "held-out episode return"), ("em", "held-out sampled EM"), ("tool_calls", "tool calls / episode")]
    fig, axes = plt.subplots(1, len(panels), figsize=(15, 3.8))
    for ax, (key, label) in zip(axes, panels, strict=True):
        for algorithm, c in curves.items():
            ax.plot([p["step"] for p in c["curve"]], [p[key] for p in c["curve"]], marker="o", ms=3, label=algorithm)
        ax.axhline(naive[key], ls=":", color="gray", label="naive RAG")
        ax.set_xlabel("RL step")
        ax.set_title(label)
    axes[1].axhline(0.8, ls="--", color="gray", lw=0.8)
    axes[1].set_ylim(-0.02, 1)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
