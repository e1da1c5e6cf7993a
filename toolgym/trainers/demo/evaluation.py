"""Held-out evaluation of a demo policy: sampled and greedy episodes on the test split (EM, F1,
return, tool calls), the teacher-forced accuracy of its copied names, and the naive-RAG baseline."""

from __future__ import annotations

from toolgym.envs.result import EpisodeResult
from toolgym.envs.scripted import SCRIPTED_AGENTS, run_episode
from toolgym.generation.backend import HFBackend
from toolgym.trainers.rollout import RolloutEngine
from toolgym.trainers.tasks import episode_metrics


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
    The tag itself is left out: in the warm-start mix the same context leads to either tag. Check
    this after the warm start: RL does not repair copying. It reweights what the policy samples, and
    a name the warm model miscopies is rarely sampled right, so right copies earn almost no reward
    (measured in docs/training.md: greedy EM, the share of questions whose names are copied right,
    stays where the warm start left it through 60 GRPO steps)."""
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
    agent = SCRIPTED_AGENTS["naive-search"]()
    env = envs[0]
    rows = [run_episode(env, agent, seed=0, options={"index": q})
            for q in range(min(n_questions, len(env.unwrapped.examples)))]
    n = len(rows)
    ends = [EpisodeResult.from_info(r) for r in rows]
    return {"em": sum(float(r.success) for r in ends) / n, "f1": sum(r.score for r in ends) / n,
            "return": sum(r["return"] for r in rows) / n, "tool_calls": sum(r["tool_calls"] for r in rows) / n,
            "episodes": n}
