"""Multi-turn rollouts of toolgym envs with an LLM: token in, token out.

A :class:`RolloutEngine` steps a batch of envs in lock-step. Each turn it asks a
:class:`GenerationBackend` for one completion per live episode (one batched call), hands the decoded
text to ``env.step``, and turns the env's new messages into tokens by rendering the chat template
and keeping only the suffix beyond what is already held. The ids it returns for training are the
ids that were sampled (never re-tokenised text); env tokens carry ``env_mask`` 0.

    engine = RolloutEngine(envs, tokenizer, HFBackend(model, tokenizer), max_completion_tokens=256)
    episodes = engine.run(seeds=[0, 0, 1, 1])

Envs whose context is not append-only (``env.unwrapped.context_append_only`` False, e.g. a sliding
window) cannot be one growing token sequence. Their episodes are cut into samples
(:attr:`Episode.samples`): a step whose context is the previous one extended continues the current
sample (env tokens masked, as above), a step whose context changed otherwise (an old tool result
elided) starts a new one whose prompt is that context. Each step is trained on the context it was
sampled in; steps share a sample only where that context merely grew.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from toolgym.trainers._deps import require


class TokenMismatchError(RuntimeError):
    """The chat template re-rendered the conversation differently from the tokens already held."""


@dataclass
class Generation:
    """One sampled completion: token ids and the sampling log-probability of each."""

    ids: list[int]
    logprobs: list[float]


class GenerationBackend(Protocol):
    """Batched sampling from token ids. ``generate`` returns one :class:`Generation` per prompt."""

    def generate(self, prompts: Sequence[Sequence[int]], max_new_tokens: int) -> list[Generation]: ...

    def any_alive(self, alive: bool) -> bool:
        """True if any process still has a live episode (collective backends must all keep calling)."""
        ...


@dataclass
class Step:
    """One agent turn. ``start:end`` is the span of its sampled tokens in the completion of
    ``Episode.samples[sample]`` (for append-only contexts the one sample, ``Episode.completion_ids``)."""

    start: int
    end: int
    reward: float
    terms: dict[str, float]
    parse_error: str | None = None
    tool_error: str | None = None
    sample: int = 0
    state: str = ""  # observation_key of the observation this turn was sampled on (GiGPO's anchor state)


@dataclass
class Sample:
    """A training sample: ``prompt_ids`` then ``completion_ids``; ``env_mask`` 1 on sampled tokens."""

    prompt_ids: list[int]
    completion_ids: list[int]
    env_mask: list[int]
    logprobs: list[float]


@dataclass
class Episode:
    """One episode as tokens, rewards and the env's final info.

    For append-only contexts ``prompt_ids``/``completion_ids``/``env_mask``/``logprobs`` hold the
    whole episode (sampled turns interleaved with masked env tokens) and ``samples`` is
    ``[that one sample]``; otherwise ``samples`` holds a sample per run of steps whose context only
    grew (see the module docstring) and ``prompt_ids`` is the first context.
    """

    prompt_ids: list[int]
    completion_ids: list[int] = field(default_factory=list)
    env_mask: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    terminated: bool = False
    truncated: bool = False  # by the env's budgets
    budget_truncated: bool = False  # by the completion-token budget of the trainer
    tokens_used: int = 0  # completion tokens (sampled + env) counted against the budget
    info: dict[str, Any] = field(default_factory=dict)
    messages: list[dict] = field(default_factory=list)
    append_only: bool = True

    @property
    def ret(self) -> float:
        """The episode return: the sum of the step rewards."""
        return float(sum(s.reward for s in self.steps))

    @property
    def step_rewards(self) -> list[float]:
        return [s.reward for s in self.steps]

    @property
    def step_states(self) -> list[str]:
        return [s.state for s in self.steps]

    @property
    def step_spans(self) -> list[tuple[int, int]]:
        return [(s.start, s.end) for s in self.steps]

    @property
    def sampled_tokens(self) -> int:
        return sum(s.end - s.start for s in self.steps)

    def sample_steps(self, j: int) -> list[tuple[int, tuple[int, int]]]:
        """The steps ``samples[j]`` trains, as ``(step index, span of its tokens in that sample's completion)``."""
        return [(k, (s.start, s.end)) for k, s in enumerate(self.steps) if s.sample == j]

    def term_totals(self) -> dict[str, float]:
        """Each reward term summed over the episode."""
        totals: dict[str, float] = {}
        for s in self.steps:
            for k, v in s.terms.items():
                totals[k] = totals.get(k, 0.0) + float(v)
        return totals


def observation_key(messages: Sequence[dict]) -> str:
    """A hash of an observation (the chat messages): equal keys = the same state, exactly."""
    import hashlib
    import json

    return hashlib.blake2b(json.dumps(list(messages), sort_keys=True, default=str).encode(), digest_size=16).hexdigest()


def step_returns(rewards: Sequence[float], gamma: float = 1.0) -> list[float]:
    """Discounted return from each step on: ``G_t = r_t + gamma * G_{t+1}``."""
    out, g = [0.0] * len(rewards), 0.0
    for t in range(len(rewards) - 1, -1, -1):
        g = float(rewards[t]) + gamma * g
        out[t] = g
    return out


class RolloutEngine:
    """Steps ``envs`` in lock-step with one batched generation call per turn.

    Args:
        envs: Gymnasium envs following the toolgym contract (observations are chat messages); episode
            ``i`` of a :meth:`run` uses ``envs[i]``.
        tokenizer: the policy's tokenizer, with a chat template.
        backend: where completions come from (:class:`HFBackend`, :class:`VLLMBackend`, a fake in tests).
        max_completion_tokens: budget of completion tokens per episode, summed over all turns,
            sampled and env tokens alike (it bounds the trained sequence). An episode that runs out
            ends with ``budget_truncated``.
        max_turn_tokens: most tokens sampled in one turn.
        chat_template_kwargs: passed to ``apply_chat_template`` (e.g. ``enable_thinking``).
    """

    def __init__(self, envs: Sequence, tokenizer, backend: GenerationBackend, *, max_completion_tokens: int = 512,
                 max_turn_tokens: int = 256, chat_template_kwargs: dict | None = None):
        if max_completion_tokens < 1 or max_turn_tokens < 1:
            raise ValueError(f"max_completion_tokens and max_turn_tokens must be >= 1, got "
                             f"{max_completion_tokens} and {max_turn_tokens}")
        if tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no eos_token; set it to the end-of-turn token (Qwen: <|im_end|>)")
        self.envs = list(envs)
        self.tokenizer = tokenizer
        self.backend = backend
        self.max_completion_tokens = max_completion_tokens
        self.max_turn_tokens = max_turn_tokens
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self._stop_ids = {tokenizer.eos_token_id}
        # A fast tokenizer's Rust core gives the same ids as tokenizer(text) without the Python
        # wrapper's per-call overhead, which is most of the engine's own time per turn.
        self._fast_encoder = getattr(tokenizer, "backend_tokenizer", None)

    # -- text <-> tokens -------------------------------------------------------------------------------
    def _render(self, env, messages) -> str:
        tools = getattr(env.unwrapped, "chat_tools", None)
        return self.tokenizer.apply_chat_template(
            list(messages), tools=tools, tokenize=False, add_generation_prompt=True, **self.chat_template_kwargs
        )

    def _encode(self, text: str) -> list[int]:
        if self._fast_encoder is not None:
            return self._fast_encoder.encode(text, add_special_tokens=False).ids
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False)

    # -- the loop ----------------------------------------------------------------------------------------
    def run(self, seeds: Sequence[int | None], options: Sequence[dict | None] | None = None) -> list[Episode]:
        """Run one episode per seed (``envs[i]`` is reset with ``seeds[i]``) and return them in order."""
        n = len(seeds)
        if n > len(self.envs):
            raise ValueError(f"{n} seeds but only {len(self.envs)} envs; pass at least as many envs as episodes")
        options = list(options) if options is not None else [None] * n
        episodes: list[Episode] = []
        held_text: list[str] = []  # the text that prompt+completion ids decode to, per episode
        context_ids: list[list[int]] = []  # what the model conditions on next, per episode
        for i in range(n):
            env = self.envs[i]
            obs, info = env.reset(seed=seeds[i], options=options[i])
            text = self._render(env, obs)
            ids = self._encode(text)
            append_only = bool(getattr(env.unwrapped, "context_append_only", True))
            episodes.append(Episode(prompt_ids=list(ids), info=dict(info), messages=list(obs), append_only=append_only,
                                    samples=[] if append_only else [Sample(list(ids), [], [], [])]))
            held_text.append(text)
            context_ids.append(list(ids))

        alive = list(range(n))
        while self.backend.any_alive(bool(alive)):
            limits = {i: min(self.max_turn_tokens, self._budget_left(episodes[i])) for i in alive}
            gens = self.backend.generate([context_ids[i] for i in alive], max(limits.values(), default=1))
            still = []
            for i, gen in zip(alive, gens, strict=True):
                if self._advance(i, episodes[i], gen, limits[i], held_text, context_ids):
                    still.append(i)
            alive = still

        for ep in episodes:
            if ep.append_only:
                ep.samples = [Sample(ep.prompt_ids, ep.completion_ids, ep.env_mask, ep.logprobs)]
            elif not ep.samples[-1].completion_ids:  # a context opened after the last step
                ep.samples.pop()
        return episodes

    def _budget_left(self, ep: Episode) -> int:
        return max(self.max_completion_tokens - ep.tokens_used, 0)

    def _advance(self, i: int, ep: Episode, gen: Generation, limit: int, held_text: list[str],
                 context_ids: list[list[int]]) -> bool:
        """Record one sampled turn, step the env, extend the context. Returns True if the episode goes on."""
        ids, logprobs = list(gen.ids[:limit]), list(gen.logprobs[:limit])
        for k, tok in enumerate(ids):  # keep up to and including the first end-of-turn token
            if tok in self._stop_ids:
                ids, logprobs = ids[: k + 1], logprobs[: k + 1]
                break
        if len(logprobs) != len(ids):
            raise ValueError(f"backend returned {len(gen.logprobs)} logprobs for {len(gen.ids)} ids; they must match")
        ended_turn = bool(ids) and ids[-1] in self._stop_ids
        text = self._decode(ids[:-1] if ended_turn else ids)

        env = self.envs[i]
        obs, reward, terminated, truncated, info = env.step(text)
        seq = ep if ep.append_only else ep.samples[-1]  # the token sequence this turn extends
        start = len(seq.completion_ids)
        seq.completion_ids += ids
        seq.env_mask += [1] * len(ids)
        seq.logprobs += logprobs
        held_text[i] += self._decode(ids)
        ep.tokens_used += len(ids)
        ep.steps.append(Step(start, start + len(ids), float(reward), dict(info.get("reward_terms", {})),
                             info.get("parse_error"), info.get("tool_error"), sample=max(len(ep.samples) - 1, 0),
                             state=observation_key(ep.messages)))  # ep.messages: the obs this turn saw
        ep.info = dict(info)
        ep.messages = list(obs)
        if terminated or truncated:
            ep.terminated, ep.truncated = bool(terminated), bool(truncated)
            return False

        text = self._render(env, obs)
        if not text.startswith(held_text[i]):
            if ep.append_only:
                raise TokenMismatchError(_mismatch_message(held_text[i], text))
            # the window moved: the next turn is sampled on a new context, its own sample
            ep.samples.append(Sample(self._encode(text), [], [], []))
            held_text[i], context_ids[i] = text, list(ep.samples[-1].prompt_ids)
            if self._budget_left(ep) <= 0:
                ep.budget_truncated = True
                return False
            return True
        suffix_ids = self._encode(text[len(held_text[i]):])
        if ep.tokens_used + len(suffix_ids) >= self.max_completion_tokens:
            ep.budget_truncated = True  # no room left to sample after the env's reply
            return False
        seq.completion_ids += suffix_ids
        seq.env_mask += [0] * len(suffix_ids)
        seq.logprobs += [0.0] * len(suffix_ids)
        ep.tokens_used += len(suffix_ids)
        held_text[i] = text
        context_ids[i] = seq.prompt_ids + seq.completion_ids
        return True


def _mismatch_message(held: str, rendered: str) -> str:
    k = next((j for j, (a, b) in enumerate(zip(held, rendered, strict=False)) if a != b), min(len(held), len(rendered)))
    return (
        "the chat template rendered the conversation differently from the tokens already sampled, so the ids "
        f"trained would not be the ids sampled. First difference at character {k}:\n"
        f"  held:     {held[max(0, k - 60):k + 60]!r}\n  rendered: {rendered[max(0, k - 60):k + 60]!r}\n"
        "Causes: the env edited an earlier message (use context='window' for non-append-only contexts, which "
        "trains each step as its own sample), or the chat template changes earlier turns when new ones are "
        "added (e.g. it strips reasoning from past assistant turns); use a template that renders past turns verbatim."
    )


# -- backends ------------------------------------------------------------------------------------------------
class HFBackend:
    """Batched sampling with ``model.generate`` (left padding), returning the sampling log-probabilities.

    Args:
        model: a causal LM (a peft model works).
        tokenizer: gives the pad and eos ids.
        temperature, top_k, top_p: sampling parameters; ``top_k=0`` samples from the full distribution
            (HF's own default is 50, which is not what RL should train on).
        batch_size: generate in chunks of at most this many prompts (None: all at once).
    """

    def __init__(self, model, tokenizer, *, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                 batch_size: int | None = None):
        self.model, self.tokenizer = model, tokenizer
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p
        self.batch_size = batch_size

    def any_alive(self, alive: bool) -> bool:
        return alive

    def generate(self, prompts: Sequence[Sequence[int]], max_new_tokens: int) -> list[Generation]:
        if not prompts:
            return []
        step = self.batch_size or len(prompts)
        out: list[Generation] = []
        for k in range(0, len(prompts), step):
            out += self._generate(prompts[k:k + step], max_new_tokens)
        return out

    def _generate(self, prompts, max_new_tokens):
        torch = require("torch", "train")
        from transformers import GenerationConfig

        pad = self.tokenizer.pad_token_id
        width = max(len(p) for p in prompts)
        device = next(self.model.parameters()).device
        input_ids = torch.tensor([[pad] * (width - len(p)) + list(p) for p in prompts], device=device)
        attention_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
        sampling = dict(do_sample=True, temperature=self.temperature, top_k=self.top_k, top_p=self.top_p)
        config = GenerationConfig(
            **(sampling if self.temperature > 0 else dict(do_sample=False)), max_new_tokens=max_new_tokens,
            eos_token_id=self.tokenizer.eos_token_id, pad_token_id=pad,
            return_dict_in_generate=True, output_scores=True,
        )
        with torch.no_grad():
            res = self.model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config)
        new = res.sequences[:, width:]
        # scores are the processed logits (after temperature/top-k/top-p): their log-softmax is the
        # distribution the token was drawn from.
        scores = torch.stack(res.scores, dim=1).float().log_softmax(-1)
        lps = scores.gather(-1, new[:, : scores.size(1)].unsqueeze(-1)).squeeze(-1)
        gens = []
        for row, lp in zip(new.tolist(), lps.tolist(), strict=True):
            if self.tokenizer.eos_token_id in row:
                cut = row.index(self.tokenizer.eos_token_id) + 1
                row, lp = row[:cut], lp[:cut]
            gens.append(Generation(row, [x if math.isfinite(x) else 0.0 for x in lp]))
        return gens


class VLLMBackend:
    """Generation through TRL's vLLM integration (``use_vllm: true``, colocate or server mode).

    Every process must make the same number of vLLM calls, so ``any_alive`` is collective and each
    call pads the per-process prompt lists to a common length. Not run here (no GPU): the tests
    cover everything up to the ``VLLMGeneration.generate`` call with a fake.
    """

    def __init__(self, trainer):
        if not getattr(trainer, "use_vllm", False):
            raise ValueError("VLLMBackend needs a GRPOTrainer built with use_vllm=True")
        self.trainer = trainer

    def any_alive(self, alive: bool) -> bool:
        torch = require("torch", "train")
        acc = self.trainer.accelerator
        flag = torch.tensor([1 if alive else 0], device=acc.device)
        return bool(acc.gather(flag).sum().item() > 0)

    def generate(self, prompts: Sequence[Sequence[int]], max_new_tokens: int) -> list[Generation]:
        torch = require("torch", "train")
        acc = self.trainer.accelerator
        n = len(prompts)
        width = int(acc.gather(torch.tensor([n], device=acc.device)).max().item())
        filler = [self.trainer.processing_class.eos_token_id]
        padded = [list(p) for p in prompts] + [filler] * (width - n)
        vg = self.trainer.vllm_generation
        saved = vg.max_completion_length
        vg.max_completion_length = max_new_tokens
        try:
            _, completion_ids, logprobs, _ = vg.generate(prompts=padded, images=None, num_generations=1)
        finally:
            vg.max_completion_length = saved
        return [Generation(list(c), [float("nan") if lp[0] is None else lp[0] for lp in lps])
                for c, lps in zip(completion_ids[:n], logprobs[:n], strict=True)]
