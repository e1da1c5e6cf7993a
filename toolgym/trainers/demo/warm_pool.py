"""The demo's warm-start data: scripted episodes (expert, one search short, an immediate answer)
rolled out through the real env and rollout engine by :func:`toolgym.trainers.warm_start.scripted_episodes`,
so their tokens are exactly what RL later samples; built in forked worker processes when that is safe."""

from __future__ import annotations

import multiprocessing
import threading

from toolgym.trainers.warm_start import scripted_episodes


class PlanAgent:
    """A scripted agent of the demo's ``kind`` (:func:`scripted_plan`): turn ``k`` writes the plan's
    ``k``-th text (its last one from then on)."""

    def __init__(self, kind: str):
        self.kind = kind

    def act(self, env, observation) -> str:
        plan = scripted_plan(self.kind, env.example)
        return plan[min(env.turn, len(plan) - 1)]


def scripted_plan(kind: str, example) -> list[str]:
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
    episodes = scripted_episodes(envs, tokenizer, [PlanAgent(kind) for _, kind in drawn], seeds=[0] * len(drawn),
                                 options=[{"index": i} for i, _ in drawn], chat_template_kwargs=chat_template_kwargs)
    # the demo's 3-turn episodes stay far below the budget (~120 of 320 tiny-model tokens); one over it
    # would keep its first max_completion_length completion tokens
    return [(e.prompt_ids, e.completion_ids[:max_completion_length], e.env_mask[:max_completion_length])
            for e in episodes]
