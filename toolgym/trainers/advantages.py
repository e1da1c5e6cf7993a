"""Advantage estimators of the policy-gradient family, on per-step rewards of multi-turn episodes.

An episode is a list of steps (agent turns); step ``k`` has a reward ``r_k`` (its process reward,
plus the outcome on the last step) and a span ``start:end`` of sampled tokens in the episode's
completion. A batch of ``B`` episodes is padded to ``S`` steps:

- ``rewards``: (B, S) float, ``mask``: (B, S) bool (True on real steps), ``spans``: (B, S, 2) long.
- Groups are ``group_size`` consecutive episodes of the same task (TRL's ``num_generations``).

Critic-free estimators map per-step *returns* (B, S) to per-step advantages (B, S); with
``credit="outcome"`` an episode is one step whose reward is the episode return:

    returns = discounted_returns(rewards, mask, gamma)
    adv = grpo(returns, mask, group_size)             # or rloo / reinforce_pp / reinforce_pp_baseline
    token_adv = steps_to_tokens(adv, spans, mask, T)  # each step's value on its tokens, 0 elsewhere

``gigpo`` (Feng et al. 2025, GiGPO) adds turn-level credit to any of them without a critic: the
steps of a group's episodes that were sampled on the same observation (an *anchor state*) form a
step group, and each step gets ``A^E(episode) + omega * A^S(step)``, the second term its discounted
return normalised within its step group.

``gae`` is the critic's estimator (PPO): on tokens (or steps), skipping masked positions, so env
tokens are transitions and not actions. Group and batch statistics are over real steps only, with
TRL's conventions: unbiased std and ``(x - mean) / (std + 1e-4)``.

:func:`step_advantages` (lists in, lists out) is the hook a trainer calls with the episodes' step
rewards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from toolgym.envs.errors import check_choice
from toolgym.trainers.names import CREDITS, ESTIMATOR_NAMES

EPS = 1e-4  # TRL's GRPO: advantages / (std + 1e-4)
SCALES = ("group", "batch", "none")


# -- masked statistics ----------------------------------------------------------------------------------
def _masked_mean(x: torch.Tensor, mask: torch.Tensor, dim=None) -> torch.Tensor:
    m = mask.to(x.dtype)
    n = m.sum() if dim is None else m.sum(dim)
    s = (x * m).sum() if dim is None else (x * m).sum(dim)
    return s / n.clamp(min=1)


def _masked_std(x: torch.Tensor, mask: torch.Tensor, dim=None) -> torch.Tensor:
    """Unbiased std over the masked entries (0 when fewer than two), as ``torch.std``."""
    m = mask.to(x.dtype)
    n = m.sum() if dim is None else m.sum(dim)
    mean = _masked_mean(x, mask, dim) if dim is None else _masked_mean(x, mask, dim).unsqueeze(dim)
    sq = ((x - mean) ** 2 * m).sum() if dim is None else ((x - mean) ** 2 * m).sum(dim)
    return torch.where(n > 1, (sq / (n - 1).clamp(min=1)).sqrt(), torch.zeros_like(sq))


def _groups(x: torch.Tensor, group_size: int) -> torch.Tensor:
    """(B, S) -> (B / group_size, group_size * S): one row per group."""
    if group_size < 1 or x.shape[0] % group_size:
        raise ValueError(f"{x.shape[0]} episodes is not a multiple of group_size={group_size}; "
                         "pass all generations of each task together (TRL's num_generations)")
    return x.reshape(x.shape[0] // group_size, -1)


def _per_group(stat: torch.Tensor, like: torch.Tensor, group_size: int) -> torch.Tensor:
    """A (G,) group statistic broadcast back to (B, S)."""
    return stat.repeat_interleave(group_size).unsqueeze(1).expand_as(like)


def group_mean(x: torch.Tensor, mask: torch.Tensor, group_size: int) -> torch.Tensor:
    """Mean of ``x`` over the real steps of each episode's group, as (B, S)."""
    return _per_group(_masked_mean(_groups(x, group_size), _groups(mask, group_size), dim=1), x, group_size)


def group_std(x: torch.Tensor, mask: torch.Tensor, group_size: int) -> torch.Tensor:
    return _per_group(_masked_std(_groups(x, group_size), _groups(mask, group_size), dim=1), x, group_size)


# -- returns and GAE --------------------------------------------------------------------------------------
def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0,
        lam: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016), CleanRL's backward loop.

    Positions where ``mask`` is False are skipped: the value that bootstraps an action is the value
    of the next *unmasked* position (env tokens between two turns are part of the transition), and
    their own advantage and return are 0. After the last unmasked position the episode has ended.

    Args:
        rewards: (B, T) reward received after each position (token or step).
        values: (B, T) value estimate of the state before each position.
        mask: (B, T) True on actions (sampled tokens or real steps).
        gamma, lam: discount and GAE lambda (applied per unmasked position).

    Returns:
        ``(advantages, returns)``, both (B, T), 0 on masked positions; ``returns = advantages + values``
        (the lambda-returns, the value targets).
    """
    mask = mask.bool()
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros_like(rewards[:, 0])
    last_gae = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        adv_t = delta + gamma * lam * last_gae
        m = mask[:, t]
        advantages[:, t] = torch.where(m, adv_t, torch.zeros_like(adv_t))
        next_value = torch.where(m, values[:, t], next_value)
        last_gae = torch.where(m, adv_t, last_gae)
    returns = torch.where(mask, advantages + values, torch.zeros_like(values))
    return advantages, returns


def discounted_returns(rewards: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
    """``G_k = r_k + gamma * G_{k+1}`` over real steps: GAE with no critic (V = 0) and lambda 1."""
    return gae(rewards, torch.zeros_like(rewards), mask, gamma, lam=1.0)[0]


# -- critic-free estimators: per-step returns (B, S) -> per-step advantages (B, S) ---------------------
def grpo(returns: torch.Tensor, mask: torch.Tensor, group_size: int, scale: str = "group",
         eps: float = EPS) -> torch.Tensor:
    """GRPO (Shao et al. 2024): returns minus their group mean, over the group's std.

    ``scale``: ``group`` (std of the group), ``batch`` (std of the whole batch, Dr. GRPO-style
    robustness), ``none`` (no division). Statistics pool all real steps of the group's episodes.
    """
    check_choice("scale", scale, SCALES)
    adv = returns - group_mean(returns, mask, group_size)
    if scale == "group":
        adv = adv / (group_std(returns, mask, group_size) + eps)
    elif scale == "batch":
        adv = adv / (_masked_std(returns, mask) + eps)
    return adv * mask


def rloo(returns: torch.Tensor, mask: torch.Tensor, group_size: int) -> torch.Tensor:
    """RLOO (Kool et al. 2019; Ahmadian et al. 2024): the baseline of an episode is the mean return
    of the *other* episodes of its group (over their real steps), so it does not depend on its own."""
    m = mask.to(returns.dtype)
    group_sum = _per_group(_groups(returns * m, group_size).sum(1), returns, group_size)
    group_n = _per_group(_groups(m, group_size).sum(1), returns, group_size)
    own_sum, own_n = (returns * m).sum(1, keepdim=True), m.sum(1, keepdim=True)
    others_n = group_n - own_n
    baseline = torch.where(others_n > 0, (group_sum - own_sum) / others_n.clamp(min=1), torch.zeros_like(returns))
    return (returns - baseline) * m


def reinforce_pp(returns: torch.Tensor, mask: torch.Tensor, group_size: int | None = None,
                 eps: float = EPS) -> torch.Tensor:
    """REINFORCE++ (Hu 2025): returns normalised over the whole batch (global advantage
    normalisation, no critic, no group baseline). ``group_size`` is ignored (same signature)."""
    return (returns - _masked_mean(returns, mask)) / (_masked_std(returns, mask) + eps) * mask


def reinforce_pp_baseline(returns: torch.Tensor, mask: torch.Tensor, group_size: int, eps: float = EPS) -> torch.Tensor:
    """REINFORCE++-baseline (Hu 2025): subtract the group mean (a GRPO-like baseline, no std), then
    normalise over the batch."""
    centred = (returns - group_mean(returns, mask, group_size)) * mask
    return reinforce_pp(centred, mask, eps=eps)


ESTIMATORS: dict[str, Callable[..., torch.Tensor]] = {  # keyed by ESTIMATOR_NAMES
    "grpo": grpo, "rloo": rloo, "reinforce_pp": reinforce_pp, "reinforce_pp_baseline": reinforce_pp_baseline,
}


def get_estimator(name: str) -> Callable[..., torch.Tensor]:
    check_choice("advantage estimator", name, ESTIMATOR_NAMES)
    return ESTIMATORS[name]


# -- GiGPO: episode groups plus step groups of anchor states -------------------------------------------
def anchor_groups(states: torch.Tensor, mask: torch.Tensor, group_size: int) -> torch.Tensor:
    """(B, S) ids of the step groups: steps of the same episode group sampled on the same state
    (``states``: (B, S) ints, equal ids = the same observation) share an id; padding steps get -1."""
    group = torch.arange(states.shape[0], device=states.device).div(group_size, rounding_mode="floor")
    key = group.unsqueeze(1) * (int(states.max().clamp(min=0)) + 1) + states
    ids = torch.unique(key[mask.bool()], return_inverse=True)[1]
    out = torch.full_like(states, -1)
    out[mask.bool()] = ids
    return out


def gigpo(episode_returns: torch.Tensor, step_returns: torch.Tensor, mask: torch.Tensor, states: torch.Tensor,
          group_size: int, step_weight: float = 1.0, scale: str = "group", estimator: str = "grpo",
          eps: float = EPS) -> torch.Tensor:
    """GiGPO's advantages (Feng et al. 2025, "Group-in-Group Policy Optimization for LLM Agent Training").

    Args:
        episode_returns: (B,) ``R(tau_i)``, the (undiscounted) return of each episode.
        step_returns: (B, S) ``R_t^(i) = sum_{k>=t} gamma^(k-t) r_k^(i)`` (:func:`discounted_returns`).
        mask: (B, S) True on real steps.
        states: (B, S) ints, equal where two steps were sampled on the same observation (exact match).
        group_size: episodes per task (``N``; groups are consecutive, as TRL's ``num_generations``).
        step_weight: ``omega``, the weight of the step-level advantage.
        scale: ``F_norm``: ``group``/``batch`` divide by a std, ``none`` by 1 (TRL's ``scale_rewards``);
            at the step level the std is the step group's.
        estimator: the episode-level estimator (GiGPO's is ``grpo``; any of :data:`ESTIMATORS`).

    Returns:
        (B, S) ``A(a_t^(i)) = A^E(tau_i) + omega * A^S(a_t^(i))`` on real steps, 0 on padding.
    """
    one = torch.ones_like(mask[:, :1])
    kw = {"scale": scale} if estimator == "grpo" else {}
    # A^E(tau_i) = (R(tau_i) - mean_j R(tau_j)) / F_norm(R(tau_j)): the episode-level group advantage
    a_episode = get_estimator(estimator)(episode_returns.unsqueeze(1), one, group_size, **kw)
    # G^S(s~) = {(a_t^(i), R_t^(i)) | s_t^(i) = s~}: the step group of each anchor state within a task's group
    anchor = anchor_groups(states, mask, group_size)
    # A^S(a_t^(i)) = (R_t^(i) - mean(R in G^S)) / F_norm(R in G^S): the step-level relative advantage
    a_step = _within(step_returns, anchor, mask, eps, divide=scale != "none")
    # A(a_t^(i)) = A^E(tau_i) + omega * A^S(a_t^(i))
    return (a_episode + step_weight * a_step) * mask


def _within(x: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, eps: float, divide: bool) -> torch.Tensor:
    """``x`` minus the mean of its id's entries (over the std of them, unbiased, when ``divide``); an
    id seen once gives 0 (its own mean)."""
    m = mask.bool()
    idx, vals = ids[m], x[m]
    n_ids = int(idx.max()) + 1 if idx.numel() else 0
    count = torch.zeros(n_ids, dtype=x.dtype).index_add_(0, idx, torch.ones_like(vals))
    mean = torch.zeros(n_ids, dtype=x.dtype).index_add_(0, idx, vals) / count
    centred = vals - mean[idx]
    if divide:
        sq = torch.zeros(n_ids, dtype=x.dtype).index_add_(0, idx, centred ** 2)
        std = torch.where(count > 1, (sq / (count - 1).clamp(min=1)).sqrt(), torch.zeros_like(sq))
        centred = centred / (std[idx] + eps)
    out = torch.zeros_like(x)
    out[m] = centred
    return out


def anchor_stats(states: torch.Tensor, step_returns: torch.Tensor, mask: torch.Tensor,
                 group_size: int) -> dict[str, float]:
    """How much the step groups can say: the share of steps whose anchor state another step of the
    group shares, the mean size of those step groups, and the mean std of the returns within them
    (0: the step-level term adds nothing)."""
    anchor = anchor_groups(states, mask, group_size)
    idx = anchor[mask.bool()]
    if not idx.numel():
        return {"anchor_step_share": 0.0, "anchor_group_size": 0.0, "anchor_return_std": 0.0}
    count = torch.bincount(idx).to(step_returns.dtype)
    vals = step_returns[mask.bool()]
    mean = torch.zeros_like(count).index_add_(0, idx, vals) / count
    sq = torch.zeros_like(count).index_add_(0, idx, (vals - mean[idx]) ** 2)
    shared = count > 1
    std = (sq[shared] / (count[shared] - 1)).sqrt()
    return {"anchor_step_share": float(shared[idx].float().mean()),
            "anchor_group_size": float(count[shared].mean()) if shared.any() else 0.0,
            "anchor_return_std": float(std.mean()) if shared.any() else 0.0}


def state_ids(step_states: Sequence[Sequence]) -> list[list[int]]:
    """Per-episode lists of state keys (any hashable: the rollout's observation hashes) -> small ints,
    equal where the keys are equal."""
    table: dict = {}
    return [[table.setdefault(k, len(table)) for k in keys] for keys in step_states]


# -- steps <-> tokens -------------------------------------------------------------------------------------
def pad_steps(step_rewards: Sequence[Sequence[float]], dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-episode lists of step rewards -> ``(rewards (B, S), mask (B, S))``."""
    width = max((len(r) for r in step_rewards), default=0)
    rewards = torch.zeros(len(step_rewards), max(width, 1), dtype=dtype)
    mask = torch.zeros_like(rewards, dtype=torch.bool)
    for b, r in enumerate(step_rewards):
        rewards[b, :len(r)] = torch.tensor([float(x) for x in r], dtype=dtype)
        mask[b, :len(r)] = True
    return rewards, mask


def pad_spans(step_spans: Sequence[Sequence[tuple[int, int]]], width: int | None = None) -> torch.Tensor:
    """Per-episode lists of ``(start, end)`` token spans -> (B, S, 2) long, padded with (0, 0)."""
    width = width or max((len(s) for s in step_spans), default=1)
    out = torch.zeros(len(step_spans), max(width, 1), 2, dtype=torch.long)
    for b, spans in enumerate(step_spans):
        if spans:
            out[b, :len(spans)] = torch.tensor([list(s) for s in spans], dtype=torch.long)
    return out


def unpad_steps(x: torch.Tensor, mask: torch.Tensor) -> list[list[float]]:
    return [row[m].tolist() for row, m in zip(x, mask.bool(), strict=True)]


def _span_hits(spans: torch.Tensor, mask: torch.Tensor, length: int) -> torch.Tensor:
    """(B, S, T) bool: token t lies in step k's span."""
    t = torch.arange(length, device=spans.device)
    return (t >= spans[..., :1]) & (t < spans[..., 1:]) & mask.bool().unsqueeze(-1)


def steps_to_tokens(step_values: torch.Tensor, spans: torch.Tensor, mask: torch.Tensor, length: int) -> torch.Tensor:
    """(B, S) per-step values -> (B, T): each step's value on the tokens of its span, 0 elsewhere."""
    hits = _span_hits(spans, mask, length).to(step_values.dtype)
    return (hits * step_values.unsqueeze(-1)).sum(1)


def rewards_at_step_ends(step_rewards: torch.Tensor, spans: torch.Tensor, mask: torch.Tensor,
                         length: int) -> torch.Tensor:
    """(B, S) step rewards -> (B, T) token rewards: each step's reward on its last sampled token
    (process rewards at the end of each turn, the outcome at the end of the last)."""
    t = torch.arange(length, device=spans.device)
    ends = (spans[..., 1:] - 1).clamp(min=0)
    hits = ((t == ends) & mask.bool().unsqueeze(-1)).to(step_rewards.dtype)
    return (hits * step_rewards.unsqueeze(-1)).sum(1)


def values_at_step_starts(token_values: torch.Tensor, spans: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T) token values -> (B, S): the value before each step's first token (the state the turn starts in)."""
    idx = spans[..., 0].clamp(max=token_values.shape[1] - 1)
    return torch.gather(token_values, 1, idx) * mask


# -- the hook for trainers ------------------------------------------------------------------------------
def step_advantages(step_rewards: Sequence[Sequence[float]], group_size: int, estimator: str = "grpo",
                    credit: str = "step", gamma: float = 1.0, scale: str = "group",
                    step_states: Sequence[Sequence] | None = None, step_weight: float = 1.0) -> list[list[float]]:
    """Per-step advantages of a batch of episodes, lists in and out.

    Args:
        step_rewards: per episode, the reward of each step (groups of ``group_size`` consecutive episodes).
        estimator: ``grpo``, ``rloo``, ``reinforce_pp`` or ``reinforce_pp_baseline``.
        credit: ``step`` (each step gets the advantage of its return-to-go), ``outcome`` (every
            step gets the advantage of the episode return, the undiscounted sum of its rewards) or
            ``gigpo`` (the episode's advantage plus ``step_weight`` times the step's within its
            anchor-state group, :func:`gigpo`).
        gamma: discount of the returns over steps (``credit="step"`` and ``"gigpo"``).
        scale: GRPO's std scaling (``group``, ``batch``, ``none``); other estimators ignore it.
        step_states: ``credit="gigpo"``: per episode, a key of the observation each step was sampled
            on (equal keys = the same state; :attr:`toolgym.trainers.rollout.Step.state`).
        step_weight: ``credit="gigpo"``: GiGPO's omega.
    """
    check_choice("credit", credit, CREDITS)
    fn = get_estimator(estimator)
    rewards, mask = pad_steps(step_rewards)
    kw = {"scale": scale} if estimator == "grpo" else {}
    if credit == "gigpo":
        if step_states is None or [len(s) for s in step_states] != [len(r) for r in step_rewards]:
            raise ValueError("credit='gigpo' needs step_states with one state key per step of each episode "
                             f"(step counts {[len(r) for r in step_rewards]}, got "
                             f"{None if step_states is None else [len(s) for s in step_states]})")
        states = pad_steps(state_ids(step_states), dtype=torch.long)[0]
        adv = gigpo(rewards.sum(1), discounted_returns(rewards, mask, gamma), mask, states, group_size,
                    step_weight, scale, estimator)
        return unpad_steps(adv, mask)
    if credit == "step":
        return unpad_steps(fn(discounted_returns(rewards, mask, gamma), mask, group_size, **kw), mask)
    episode = fn(rewards.sum(1, keepdim=True), torch.ones_like(mask[:, :1]), group_size, **kw)
    return [[float(a)] * len(r) for a, r in zip(episode[:, 0].tolist(), step_rewards, strict=True)]
