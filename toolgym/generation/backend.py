"""Sampling backends: token ids in, sampled token ids and their log-probabilities out.

Training rollouts and the model-based benchmark agents sample through these, so a model samples
the same way in both. The vLLM backend of training lives with the trainer (it drives TRL's vLLM
integration); the benchmark's offline vLLM backend lives with the benchmark models.
"""

from __future__ import annotations

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
    """Batched sampling with ``model.generate`` (left padding), returning the sampling log-probabilities.

    Args:
        model: a causal LM (a peft model works).
        tokenizer: gives the pad and eos ids.
        temperature, top_k, top_p: sampling parameters; ``top_k=0`` samples from the full distribution
            (HF's own default is 50, which is not what RL should train on).
        batch_size: generate in chunks of at most this many prompts (None: all at once).
        stop_ids: tokens that end a turn (kept as the last sampled token). Default: the chat
            template's end-of-turn tokens and the tokenizer's eos
            (:func:`toolgym.generation.chat.stop_token_ids`).
    """

    def __init__(self, model, tokenizer, *, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                 batch_size: int | None = None, stop_ids: Iterable[int] | None = None):
        self.model, self.tokenizer = model, tokenizer
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p
        self.batch_size = batch_size
        self.stop_ids = sorted(stop_token_ids(tokenizer) if stop_ids is None else set(stop_ids))

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
        from transformers import GenerationConfig  # extra train, as torch above

        pad = self.tokenizer.pad_token_id
        width = max(len(p) for p in prompts)
        device = next(self.model.parameters()).device
        input_ids = torch.tensor([[pad] * (width - len(p)) + list(p) for p in prompts], device=device)
        attention_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
        sampling = dict(do_sample=True, temperature=self.temperature, top_k=self.top_k, top_p=self.top_p)
        config = GenerationConfig(
            **(sampling if self.temperature > 0 else dict(do_sample=False)), max_new_tokens=max_new_tokens,
            eos_token_id=self.stop_ids, pad_token_id=pad,
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
        stops = set(self.stop_ids)
        for row, lp in zip(new.tolist(), lps.tolist(), strict=True):
            cut = next((k + 1 for k, tok in enumerate(row) if tok in stops), len(row))
            row, lp = row[:cut], lp[:cut]
            gens.append(Generation(row, [x if math.isfinite(x) else 0.0 for x in lp]))
        return gens


