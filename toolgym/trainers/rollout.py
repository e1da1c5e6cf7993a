"""Multi-turn rollouts of toolgym envs with an LLM: token in, token out.

A :class:`RolloutEngine` steps a batch of envs in lock-step. Each turn it asks a
:class:`GenerationBackend` for one completion per live episode (one batched call; a backend with
``generate_as_completed`` returns each as it finishes, and its env steps at once, while the rest
still generate), hands the decoded text to ``env.step``, and turns the env's new messages into tokens with
:class:`toolgym.generation.ChatTemplate`: rendered after a fixed dummy conversation, never by
re-rendering the past (templates rewrite past turns, e.g. Qwen3 re-spaces reasoning). The ids it
returns for training are the ids that were sampled (never re-tokenised text); env tokens carry
``env_mask`` 0.

    engine = RolloutEngine(envs, tokenizer, HFBackend(model, tokenizer), max_completion_tokens=256)
    episodes = engine.run(seeds=[0, 0, 1, 1])

Envs whose context is not append-only (``env.unwrapped.context_append_only`` False, e.g. a sliding
window) cannot be one growing token sequence. Their episodes are cut into samples
(:attr:`Episode.samples`): a step whose messages extend the previous ones continues the current
sample (env tokens masked, as above), a step whose context changed otherwise (an old tool result
elided) starts a new one whose prompt is that context, rendered whole. Each step is trained on the context it was
sampled in; steps share a sample only where that context merely grew.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from toolgym.envs.batch import iter_as_completed, run_ahead
from toolgym.envs.record import EpisodeLog, read_action
from toolgym.generation.backend import Generation, GenerationBackend, HFBackend
from toolgym.generation.chat import ChatTemplate
from toolgym.trainers._deps import require

__all__ = ["Episode", "Generation", "GenerationBackend", "HFBackend", "RolloutEngine", "Sample", "Step",
           "TokenMismatchError", "VLLMBackend", "step_returns"]


class TokenMismatchError(RuntimeError):
    """An append-only env changed earlier messages, so the tokens held no longer match its context."""


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
    log: EpisodeLog = field(default_factory=EpisodeLog)  # the conversation as text, for episode records

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

    Raises:
        toolgym.generation.TemplateUnsupportedError: the tokenizer's chat template cannot carry a
            multi-turn tool conversation (at construction, naming the template and what it lacks).
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
        self.template = ChatTemplate(tokenizer, self.chat_template_kwargs)
        self._stop_ids = self.template.stop_ids
        # A fast tokenizer's Rust core gives the same ids as tokenizer(text) without the Python
        # wrapper's per-call overhead, which is most of the engine's own time per turn.
        self._fast_encoder = getattr(tokenizer, "backend_tokenizer", None)

    # -- text <-> tokens -------------------------------------------------------------------------------
    def _render(self, env, messages) -> str:
        """A whole context: the first prompt, or a context that changed (not append-only)."""
        tools = getattr(env.unwrapped, "chat_tools", None)
        return self.template.prompt(messages, tools, parse_calls=lambda text: _calls(env, text))

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
        context_ids: list[list[int]] = []  # what the model conditions on next, per episode
        for i in range(n):
            env = self.envs[i]
            obs, info = env.reset(seed=seeds[i], options=options[i])
            text = self._render(env, obs)
            ids = self._encode(text)
            append_only = bool(getattr(env.unwrapped, "context_append_only", True))
            episodes.append(Episode(prompt_ids=list(ids), info=dict(info), messages=list(obs), append_only=append_only,
                                    samples=[] if append_only else [Sample(list(ids), [], [], [])]))
            context_ids.append(list(ids))

        reset = getattr(self.backend, "reset", None)
        if reset is not None:  # cached states of earlier runs were computed with older weights
            reset()
        alive = list(range(n))
        stream = getattr(self.backend, "generate_as_completed", None)
        while self.backend.any_alive(bool(alive)):
            limits = {i: min(self.max_turn_tokens, self._budget_left(episodes[i])) for i in alive}
            prompts, width = [context_ids[i] for i in alive], max(limits.values(), default=1)
            if stream is not None and alive:  # each env steps as its completion arrives
                goes_on = set()
                for i, turn, out in self._stream_turn(stream(prompts, width), alive, limits):
                    if self._advance(i, episodes[i], turn, context_ids, out):
                        goes_on.add(i)
                alive = [i for i in alive if i in goes_on]
                continue
            gens = self.backend.generate(prompts, width)
            turns = [self._sampled(gen, limits[i]) for i, gen in zip(alive, gens, strict=True)]
            run_ahead([self.envs[i] for i in alive], [text for _, _, text in turns])  # the turn's searches: one batch
            still = []
            for i, turn in zip(alive, turns, strict=True):
                if self._advance(i, episodes[i], turn, context_ids):
                    still.append(i)
            alive = still

        for ep in episodes:
            if ep.append_only:
                ep.samples = [Sample(ep.prompt_ids, ep.completion_ids, ep.env_mask, ep.logprobs)]
            elif not ep.samples[-1].completion_ids:  # a context opened after the last step
                ep.samples.pop()
        return episodes

    def _stream_turn(self, completions, alive: list[int], limits: dict[int, int]):
        """``(episode, sampled turn, step output)`` as each env steps, its completion having come from
        ``completions`` (``(k, Generation)`` of ``alive[k]``, in any order)."""
        turns: dict[int, tuple] = {}

        def arrivals():
            for k, gen in completions:
                if not (isinstance(k, int) and 0 <= k < len(alive)) or k in turns:
                    raise ValueError(f"generate_as_completed gave completion {k!r} twice or out of range "
                                     f"(0-{len(alive) - 1}); it must give one per prompt")
                turns[k] = self._sampled(gen, limits[alive[k]])
                yield k, turns[k][2]

        stepped = 0
        for k, out in iter_as_completed([self.envs[i] for i in alive], arrivals()):
            stepped += 1
            yield alive[k], turns[k], out
        if stepped != len(alive):
            raise ValueError(f"generate_as_completed gave {stepped} completions for {len(alive)} prompts")

    def _budget_left(self, ep: Episode) -> int:
        return max(self.max_completion_tokens - ep.tokens_used, 0)

    def _sampled(self, gen: Generation, limit: int) -> tuple[list[int], list[float], str]:
        """The ids and logprobs of a turn (cut at ``limit`` and after the first end-of-turn token) and its text."""
        ids, logprobs = list(gen.ids[:limit]), list(gen.logprobs[:limit])
        for k, tok in enumerate(ids):  # keep up to and including the first end-of-turn token
            if tok in self._stop_ids:
                ids, logprobs = ids[: k + 1], logprobs[: k + 1]
                break
        if len(logprobs) != len(ids):
            raise ValueError(f"backend returned {len(gen.logprobs)} logprobs for {len(gen.ids)} ids; they must match")
        ended_turn = bool(ids) and ids[-1] in self._stop_ids
        return ids, logprobs, self._decode(ids[:-1] if ended_turn else ids)

    def _advance(self, i: int, ep: Episode, turn: tuple[list[int], list[float], str],
                 context_ids: list[list[int]], out: tuple | None = None) -> bool:
        """Record one sampled turn, step the env (or take ``out``, the step already taken), extend the
        context. Returns True if the episode goes on."""
        ids, logprobs, text = turn
        ended_turn = bool(ids) and ids[-1] in self._stop_ids
        env = self.envs[i]
        before = ep.messages
        obs, reward, terminated, truncated, info = env.step(text) if out is None else out
        ep.log.step(env, before, text, obs, reward, info, tokens_in=len(context_ids[i]), tokens_out=len(ids))
        seq = ep if ep.append_only else ep.samples[-1]  # the token sequence this turn extends
        start = len(seq.completion_ids)
        seq.completion_ids += ids
        seq.env_mask += [1] * len(ids)
        seq.logprobs += logprobs
        ep.tokens_used += len(ids)
        ep.steps.append(Step(start, start + len(ids), float(reward), dict(info.get("reward_terms", {})),
                             info.get("parse_error"), info.get("tool_error"), sample=max(len(ep.samples) - 1, 0),
                             state=observation_key(ep.messages)))  # ep.messages: the obs this turn saw
        ep.info = dict(info)
        ep.messages = list(obs)
        if terminated or truncated:
            ep.terminated, ep.truncated = bool(terminated), bool(truncated)
            return False

        n = len(before)
        grew = len(obs) > n and list(obs[:n]) == before and obs[n].get("role") == "assistant"
        if not grew:
            if ep.append_only:
                raise TokenMismatchError(_mismatch_message(before, list(obs)))
            # the window moved: the next turn is sampled on a new context, its own sample
            ep.samples.append(Sample(self._encode(self._render(env, obs)), [], [], []))
            context_ids[i] = list(ep.samples[-1].prompt_ids)
            if self._budget_left(ep) <= 0:
                ep.budget_truncated = True
                return False
            return True
        stop = self.tokenizer.convert_ids_to_tokens(ids[-1]) if ended_turn else None
        suffix = self.template.suffix(obs[n + 1:], stopped=stop, call_names=self._call_names(env, text, obs[n + 1:]))
        suffix_ids = self._encode(suffix)
        if ep.tokens_used + len(suffix_ids) >= self.max_completion_tokens:
            ep.budget_truncated = True  # no room left to sample after the env's reply
            return False
        seq.completion_ids += suffix_ids
        seq.env_mask += [0] * len(suffix_ids)
        seq.logprobs += [0.0] * len(suffix_ids)
        ep.tokens_used += len(suffix_ids)
        context_ids[i] = seq.prompt_ids + seq.completion_ids
        return True

    def _call_names(self, env, text: str, new: Sequence[dict]) -> list[str]:
        """The tools ``text`` called, for templates that name them beside their results."""
        if not self.template.names_matter or not any(m.get("role") == "tool" for m in new):
            return []
        return [name for name, _ in _calls(env, text)[1]]


def _calls(env, text: str) -> tuple[str, list[tuple[str, Any]]]:
    """``text`` as (content, [(tool, arguments)...]) read with the env's own format."""
    content, calls = read_action(env, text)
    return content, [(c["name"], c["arguments"]) for c in calls]


def _mismatch_message(held: list[dict], now: list[dict]) -> str:
    k = next((j for j, (a, b) in enumerate(zip(held, now, strict=False)) if a != b), min(len(held), len(now)))
    seen = now[k] if k < len(now) else "(no message)"
    return (
        "the env changed its earlier messages, so the tokens already sampled no longer match its context and "
        f"the ids trained would not be the ids sampled. First difference at message {k}:\n"
        f"  held: {held[k] if k < len(held) else '(no message)'!r:.200}\n  now:  {seen!r:.200}\n"
        "An env whose context is not append-only must say so (context_append_only False, e.g. context='window'): "
        "then each changed context is trained as its own sample."
    )


# -- backends ------------------------------------------------------------------------------------------------
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
