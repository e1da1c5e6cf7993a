"""Sampling backends: token ids in, sampled token ids and their log-probabilities out.

Training rollouts and the model-based benchmark agents sample through these, so a model samples
the same way in both. The vLLM backend of training lives with the trainer (it drives TRL's vLLM
integration); the benchmark's offline vLLM backend lives with the benchmark models.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from toolgym.envs.deps import require
from toolgym.generation.chat import stop_token_ids


@dataclass
class Generation:
    """One sampled completion: token ids and the sampling log-probability of each."""

    ids: list[int]
    logprobs: list[float]


class GenerationBackend(Protocol):
    """Batched sampling from token ids. ``generate`` returns one :class:`Generation` per prompt.

    A backend whose engine returns each completion as it finishes may also define
    ``generate_as_completed(prompts, max_new_tokens) -> Iterator[tuple[int, Generation]]``, yielding
    ``(k, completion of prompts[k])`` in the order they finish: the rollout engine then steps each
    episode's env while the rest of the batch still generates (``toolgym.envs.batch.iter_as_completed``).
    A class that subclasses it explicitly inherits ``any_alive`` for a single process.
    """

    def generate(self, prompts: Sequence[Sequence[int]], max_new_tokens: int) -> list[Generation]: ...

    def any_alive(self, alive: bool) -> bool:
        """True if any process still has a live episode (collective backends must all keep calling)."""
        return alive


class HFBackend:
    """Batched sampling from a transformers causal LM, returning the sampling log-probabilities.

    Its own decode loop over the model's forward pass rather than ``model.generate``, for two
    things ``generate`` cannot give on a CPU:

    - the log-probability of each sampled token is taken at the step it is drawn, so memory holds
      one step's logits (``generate(output_scores=True)`` keeps batch x tokens x vocabulary floats:
      3 GB at 30 x 512 x 49k);
    - the key/value cache of each sequence is kept between calls (``reuse_prefix``): the next turn
      of an episode (the same tokens plus the sampled turn and the env's reply) is matched to the
      cached sequence sharing its longest prefix, and only the new tokens are prefilled. A turn
      costs its new tokens, not the whole conversation again; identical prompts in one call (a
      GRPO group) are prefilled once. Call :meth:`reset` when the weights change (the rollout
      engine does at the start of every run).

    Sampling uses transformers' own logits warpers (temperature, top-k, top-p), and the
    log-probability is that of the distribution the token was drawn from (after the warpers).

    Args:
        model: a causal LM (a peft model works).
        tokenizer: gives the pad and eos ids.
        temperature, top_k, top_p: sampling parameters; ``top_k=0`` samples from the full distribution
            (HF's own default is 50, which is not what RL should train on); ``temperature=0`` is greedy.
        stop_ids: tokens that end a turn (kept as the last sampled token). Default: the chat
            template's end-of-turn tokens and the tokenizer's eos
            (:func:`toolgym.generation.chat.stop_token_ids`).
        reuse_prefix: keep the cache between calls (off for models with sliding-window layers, whose
            window would count the cache's padding).
        prefill_chunk: tokens per prefill forward pass (bounds the attention's memory on long prompts).
    """

    def __init__(self, model, tokenizer, *, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                 stop_ids: Iterable[int] | None = None, reuse_prefix: bool = True, prefill_chunk: int = 512):
        if prefill_chunk < 1:
            raise ValueError(f"prefill_chunk must be >= 1, got {prefill_chunk}")
        self.model, self.tokenizer = model, tokenizer
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p
        self.stop_ids = sorted(stop_token_ids(tokenizer) if stop_ids is None else set(stop_ids))
        self.reuse_prefix = reuse_prefix and not _has_sliding_layers(model)
        self.prefill_chunk = prefill_chunk
        self._cache_kwarg = _cache_kwarg(model)
        # A model prepared by accelerate for mixed precision (a trainer's, with bf16) has its forward
        # wrapped in autocast. Autocast caches the casts of weights that require grad only, so with LoRA
        # every frozen weight is cast again at every decode step: SmolLM2 at batch 32 took 790 ms a step
        # that way and 340 ms in float32. Decode steps run the forward accelerate wrapped; prefills,
        # whose matmuls are large, keep the autocast (5.0 s against 8.2 s for 3,600 tokens); the cache
        # keeps the model's dtype, so both read it (see _new_cache).
        self._unwrapped_forward = getattr(model, "_original_forward", None)
        self._decode_forward = model
        self.stats = {"prefilled": 0, "reused": 0, "decoded": 0}  # tokens, for perf scripts
        self.reset()

    def reset(self) -> None:
        """Forget the cached sequences (after a weight update they no longer hold this model's states)."""
        self._cache = None  # transformers DynamicCache over the rows below
        self._rows: list[list[int]] = []  # the tokens whose states each cache row holds
        self._mask = None  # [rows, cache length] bool: which cache positions are a row's real tokens

    def any_alive(self, alive: bool) -> bool:
        return alive

    def generate(self, prompts: Sequence[Sequence[int]], max_new_tokens: int) -> list[Generation]:
        if not prompts:
            return []
        torch = require("torch", "train")
        prompts = [list(p) for p in prompts]
        if any(not p for p in prompts):
            raise ValueError("every prompt needs at least one token")
        with torch.no_grad():
            # identical prompts (a GRPO group) are prefilled once, their cache rows copied after
            unique = list(dict.fromkeys(map(tuple, prompts)))
            kept = self._restore([list(p) for p in unique], torch)
            logits = self._prefill([list(p) for p in unique], kept, torch)
            if len(unique) < len(prompts):
                where = {p: k for k, p in enumerate(unique)}
                copies = torch.tensor([where[tuple(p)] for p in prompts])
                self._select_rows(copies)
                logits = logits[copies.to(logits.device)]
            gens = self._decode(prompts, logits, max_new_tokens, torch)
        if not self.reuse_prefix:
            self.reset()
        return gens

    # -- the cache ---------------------------------------------------------------------------------------
    def _restore(self, prompts: list[list[int]], torch) -> list[int]:
        """Rebuild the cache for ``prompts``: row j takes the cached row sharing its longest prefix
        (its states beyond that prefix masked out, columns no row needs dropped). Returns how many
        leading tokens of each prompt the cache holds (at most all but the last: its logits are needed)."""
        source, kept = [], []
        for p in prompts:
            best, length = -1, 0
            for r, row in enumerate(self._rows):
                n = _common_prefix(row, p)
                if n > length:
                    best, length = r, n
            source.append(best)
            kept.append(min(length, len(p) - 1))
        if self._cache is None or all(k == 0 for k in kept):
            self._cache, self._mask = self._new_cache(), torch.zeros((len(prompts), 0), dtype=torch.bool)
            self.stats["prefilled"] += sum(len(p) for p in prompts)
            return [0] * len(prompts)
        index = torch.tensor([max(r, 0) for r in source])
        old = self._mask[index]
        keep = old & (old.cumsum(-1) <= torch.tensor(kept).unsqueeze(-1))
        keep[torch.tensor([k == 0 for k in kept])] = False
        self._mask = keep
        self._select_rows(index, columns=keep.any(0).nonzero().squeeze(-1))
        self.stats["reused"] += sum(kept)
        self.stats["prefilled"] += sum(len(p) - k for p, k in zip(prompts, kept, strict=True))
        return kept

    def _select_rows(self, rows, columns=None) -> None:
        """Keep cache rows ``rows`` (repeats copy a row) and, if given, only cache positions ``columns``."""
        for layer in self._cache.layers:
            if layer.get_seq_length() > 0:
                keys, values = layer.keys[rows], layer.values[rows]
                if columns is not None:
                    keys, values = keys[:, :, columns], values[:, :, columns]
                _set_states(layer, keys, values)
        self._mask = self._mask[rows] if columns is None else self._mask[:, columns]

    def _new_cache(self):
        from transformers import DynamicCache  # extra train, as torch

        from transformers.cache_utils import DynamicLayer

        cache = DynamicCache(config=self.model.config)
        growing = _growing_layer_class()
        dtype = next(self.model.parameters()).dtype
        cache.layers = [growing(dtype) if type(layer) is DynamicLayer else layer for layer in cache.layers]
        all_growing = all(isinstance(layer, growing) for layer in cache.layers)
        self._decode_forward = (self._unwrapped_forward if all_growing else None) or self.model
        return cache

    def _forward(self, ids, new_mask, positions, torch, *, decode: bool = False):
        self._mask = torch.cat([self._mask, new_mask], dim=1)
        forward = self._decode_forward if decode else self.model
        out = forward(input_ids=ids, attention_mask=self._mask.long(), position_ids=positions,
                      use_cache=True, logits_to_keep=1, **{self._cache_kwarg: self._cache})
        return out.logits[:, -1]

    def _prefill(self, prompts, kept, torch):
        """Run each prompt's uncached tokens (left-padded to one width, in chunks); the logits after each."""
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        deltas = [p[k:] for p, k in zip(prompts, kept, strict=True)]
        width = max(len(d) for d in deltas)
        device = next(self.model.parameters()).device
        ids = torch.tensor([[pad] * (width - len(d)) + d for d in deltas], device=device)
        mask = torch.tensor([[False] * (width - len(d)) + [True] * len(d) for d in deltas])
        positions = torch.tensor([[0] * (width - len(d)) + list(range(k, k + len(d)))
                                  for d, k in zip(deltas, kept, strict=True)], device=device)
        logits = None
        for a in range(0, width, self.prefill_chunk):
            b = min(a + self.prefill_chunk, width)
            logits = self._forward(ids[:, a:b], mask[:, a:b], positions[:, a:b], torch)
        return logits

    def _decode(self, prompts, logits, max_new_tokens, torch):
        warp = self._warpers()
        stops = torch.tensor(self.stop_ids, dtype=torch.long)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        n = len(prompts)
        alive = torch.ones(n, dtype=torch.bool)
        position = torch.tensor([len(p) for p in prompts])
        ids: list[list[int]] = [[] for _ in range(n)]
        lps: list[list[float]] = [[] for _ in range(n)]
        for t in range(max_new_tokens):
            scores = warp(None, logits.float()) if warp is not None else logits.float()
            logp = scores.log_softmax(-1)
            token = logp.argmax(-1) if warp is None else torch.multinomial(logp.exp(), 1).squeeze(-1)
            lp = logp.gather(-1, token.unsqueeze(-1)).squeeze(-1)
            for j in alive.nonzero().squeeze(-1).tolist():
                ids[j].append(int(token[j]))
                lps[j].append(float(lp[j]) if math.isfinite(float(lp[j])) else 0.0)
            alive &= ~torch.isin(token, stops)
            self.stats["decoded"] += int(alive.sum())
            if not alive.any() or t == max_new_tokens - 1:
                break
            feed = torch.where(alive, token, torch.full_like(token, pad)).unsqueeze(-1)
            logits = self._forward(feed.to(logits.device), alive.unsqueeze(-1), position.unsqueeze(-1).to(logits.device),
                                   torch, decode=True)
            position += alive.long()
        # the cache holds each prompt and all but the last sampled token (never fed back)
        self._rows = [p + g[:-1] for p, g in zip(prompts, ids, strict=True)]
        return [Generation(g, lp) for g, lp in zip(ids, lps, strict=True)]

    def _warpers(self):
        """transformers' own temperature/top-k/top-p warpers (None: greedy)."""
        if self.temperature <= 0:
            return None
        from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

        warpers = LogitsProcessorList()
        if self.temperature != 1.0:
            warpers.append(TemperatureLogitsWarper(self.temperature))
        if self.top_k:
            warpers.append(TopKLogitsWarper(self.top_k))
        if self.top_p < 1.0:
            warpers.append(TopPLogitsWarper(self.top_p))
        return warpers


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token lists."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # the first difference, by bisection on slice equality (C-speed list compares)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _cache_kwarg(model) -> str:
    """The forward argument that takes the cache: ``cache`` from transformers 5.2x on (which warns
    that ``past_key_values`` goes), ``past_key_values`` before."""
    base = getattr(model, "get_base_model", lambda: model)()
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def _has_sliding_layers(model) -> bool:
    config = getattr(model, "config", None)
    config = getattr(config, "get_text_config", lambda: config)()
    return bool(getattr(config, "sliding_window", None)) and any(
        t != "full_attention" for t in (getattr(config, "layer_types", None) or ["sliding_attention"]))


def _set_states(layer, keys, values) -> None:
    if isinstance(layer, _growing_layer_class()):
        layer.load(keys, values)
    else:
        layer.keys, layer.values = keys, values


@functools.cache
def _growing_layer_class():
    from transformers.cache_utils import DynamicLayer  # extra train

    class GrowingLayer(DynamicLayer):
        """A DynamicLayer whose states live in a buffer grown by doubling: a decode step writes one
        position instead of concatenating (copying) the whole cache, which on a CPU costs more than
        the step's own compute once the cache holds a few thousand positions. States are kept in
        ``dtype`` (the model's), whatever precision computed them."""

        def __init__(self, dtype=None):
            super().__init__()
            self.dtype = dtype  # states are kept in it (a prefill under autocast computes some in bf16)

        def load(self, keys, values) -> None:
            self._buffers = None
            self.is_initialized = False
            self.update(keys, values)

        def update(self, key_states, value_states, *args, **kwargs):
            if self.dtype is not None:
                key_states, value_states = key_states.to(self.dtype), value_states.to(self.dtype)
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
                self._buffers, self._length = None, 0
            new = key_states.shape[-2]
            if self._buffers is None or self._length + new > self._buffers[0].shape[-2]:
                capacity = max(2 * (self._length + new), 64)
                grown = []
                for old, states in ((self.keys, key_states), (self.values, value_states)):
                    buffer = states.new_empty((*states.shape[:-2], capacity, states.shape[-1]))
                    if self._length:
                        buffer[..., : self._length, :] = old
                    grown.append(buffer)
                self._buffers = tuple(grown)
            keys, values = self._buffers
            keys[..., self._length: self._length + new, :] = key_states
            values[..., self._length: self._length + new, :] = value_states
            self._length += new
            self.keys, self.values = keys[..., : self._length, :], values[..., : self._length, :]
            return self.keys, self.values

    return GrowingLayer
