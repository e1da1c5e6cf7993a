"""Generation backends for tests: a real HF backend that keeps what it sampled, and the replay of
the rollout engine's lock-step order that maps its batches back to episodes."""

from __future__ import annotations

from toolgym.generation import HFBackend


class Recording(HFBackend):
    """Samples with the model like :class:`HFBackend` and keeps every batch in ``log``."""

    def __init__(self, model, tokenizer, **kwargs):
        super().__init__(model, tokenizer, **kwargs)
        self.log: list[list] = []

    def generate(self, prompts, max_new_tokens):
        gens = super().generate(prompts, max_new_tokens)
        self.log.append(gens)
        return gens


def sampled_ids(log, episodes) -> dict[int, list[list[int]]]:
    """Each episode's sampled ids, turn by turn, from a :class:`Recording` log: the engine asks
    for one batch per turn holding the episodes still alive, in episode order."""
    sampled: dict[int, list[list[int]]] = {i: [] for i in range(len(episodes))}
    alive = list(range(len(episodes)))
    for gens in log:
        for i, g in zip(alive, gens, strict=True):
            sampled[i].append(g.ids)
        alive = [i for i in alive if len(sampled[i]) < len(episodes[i].steps)]
    return sampled
