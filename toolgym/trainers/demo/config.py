"""The demo's settings and the env they describe: ``DemoConfig``, the MultiHopQA kwargs of its
worlds (warm start, RL, held-out evaluation) and the RL task mix."""

from __future__ import annotations

from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any

from toolgym.envs.errors import check_choice, unknown_name_error
from toolgym.envs.multihop_qa.synthetic import TEMPLATES
from toolgym.envs.tool_env import CONTEXT_MODES
from toolgym.generation.chat import shipped_templates
from toolgym.trainers.names import ALGORITHMS, CREDITS
from toolgym.trainers.tasks import EnvSpec

TEMPLATE = "film_director_birthplace"
FRESH_WORLD_SEED, RL_WORLD_SEED = 1000, 2000  # warm-start worlds 1000.., RL-only worlds 2000..
# --compare credit: arm -> (algorithm, credit)
CREDIT_ARMS = {"outcome": ("grpo", "outcome"), "step": ("grpo", "step"), "gigpo": ("grpo", "gigpo"),
               "ppo": ("ppo", "outcome")}
SHORT_PROMPT = "Search one fact at a time with <search>query</search>, then reply <answer>answer</answer>."
# Settings renamed since: old name -> new name. The old name is an error that names the new one.
RENAMED_SETTINGS = {"grpo_steps": "rl_steps"}


def renamed_setting_error(name: str) -> ValueError | None:
    """The error for a renamed demo setting ``name`` (None when ``name`` was not renamed)."""
    if name not in RENAMED_SETTINGS:
        return None
    new = RENAMED_SETTINGS[name]
    return ValueError(f"the demo setting {name} is now called {new} (it counts the RL steps of any algorithm): "
                      f"write {new}=..., e.g. toolgym demo {new}=0")


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
    rl_steps: int = field(default=60, metadata={"help": "RL optimiser steps (GRPO or the chosen algorithm); "
                                                        "0: build and save the warm model only"})
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

    # renamed rl_steps: given, it is an error naming the new name (not a field: not in results or --help-config)
    grpo_steps: InitVar[int | None] = None

    def __post_init__(self, grpo_steps: int | None):
        if grpo_steps is not None:
            raise renamed_setting_error("grpo_steps")
        check_choice("credit", self.credit, CREDITS)
        check_choice("algorithm", self.algorithm, ALGORITHMS)
        if self.warm_model and not Path(self.warm_model).is_dir():
            raise FileNotFoundError(f"warm_model {self.warm_model!r}: no such directory. Build it with: toolgym demo "
                                    f"rl_steps=0 --output-dir {Path(self.warm_model).parent}")
        if self.rl_steps < 0:
            raise ValueError(f"rl_steps must be >= 0 (0: build and save the warm model only), got {self.rl_steps}")
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
        if self.template not in TEMPLATES or TEMPLATES[self.template].type != "bridge":
            raise unknown_name_error("bridge template", self.template,
                                     [n for n, t in TEMPLATES.items() if t.type == "bridge"])
        if not 0 <= self.warm_world_share <= 1:
            raise ValueError(f"warm_world_share must be in [0, 1], got {self.warm_world_share}")
        if len(self.warm_mix) != 3 or abs(sum(self.warm_mix) - 1) > 1e-6 or min(self.warm_mix) < 0:
            raise ValueError(f"warm_mix must be three shares summing to 1, got {self.warm_mix}")
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

    return EnvSpec("MultiHopQA-v0", kwargs, system_prompt=cfg.system_prompt or None)


def make_env(cfg: DemoConfig, kwargs):
    """The demo's env with ``kwargs`` (see :func:`env_kwargs`), made."""
    return env_spec(cfg, kwargs).make()


def rl_env_specs(cfg: DemoConfig) -> list:
    """The RL task mix: the training world's train split and ``cfg.rl_worlds`` worlds that neither the
    warm start nor the evaluation ever saw, one equal share each."""
    worlds = [cfg.world_seed] + [RL_WORLD_SEED + k for k in range(cfg.rl_worlds)]
    return [env_spec(cfg, env_kwargs(cfg, "train", world_seed=w, acting=True)) for w in worlds]
