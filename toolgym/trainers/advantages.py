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

``gae`` is the critic's estimator (PPO): on tokens (or steps), skipping masked positions, so env
tokens are transitions and not actions. Group and batch statistics are over real steps only, with
TRL's conventions: unbiased std and ``(x - mean) / (std + 1e-4)``.

:func:`step_advantages` (lists in, lists out) is the hook a trainer calls with the episodes' step
rewards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

EPS = 1e-4  # TRL's GRPO: advantages / (std + 1e-4)
ESTIMATOR_NAMES = ("grpo", "rloo", "reinforce_pp", "reinforce_pp_baseline")
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
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
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


ESTIMATORS: dict[str, Callable[..., torch.Tensor]] = {
    "grpo": grpo, "rloo": rloo, "reinforce_pp": reinforce_pp, "reinforce_pp_baseline": reinforce_pp_baseline,
}


def get_estimator(name: str) -> Callable[..., torch.Tensor]:
    if name not in ESTIMATORS:
        import difflib

        hint = difflib.get_close_matches(str(name), ESTIMATORS, n=1)
        raise ValueError(f"unknown advantage estimator {name!r}." + (f" Did you mean {hint[0]!r}?" if hint else "") +
                         f" Choose one of {', '.join(ESTIMATORS)}")
    return ESTIMATORS[name]


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
                    credit: str = "step", gamma: float = 1.0, scale: str = "group") -> list[list[float]]:
    """Per-step advantages of a batch of episodes, lists in and out.

    Args:
        step_rewards: per episode, the reward of each step (groups of ``group_size`` consecutive episodes).
        estimator: ``grpo``, ``rloo``, ``reinforce_pp`` or ``reinforce_pp_baseline``.
        credit: ``step`` (each step gets the advantage of its return-to-go) or ``outcome`` (every
            step gets the advantage of the episode return, the undiscounted sum of its rewards).
        gamma: discount of the returns over steps (``credit="step"``).
        scale: GRPO's std scaling (``group``, ``batch``, ``none``); other estimators ignore it.
    """
    if credit not in ("step", "outcome"):
        raise ValueError(f"credit must be 'step' or 'outcome', got {credit!r}")
    fn = get_estimator(estimator)
    rewards, mask = pad_steps(step_rewards)
    kw = {"scale": scale} if estimator == "grpo" else {}
    if credit == "step":
        return unpad_steps(fn(discounted_returns(rewards, mask, gamma), mask, group_size, **kw), mask)
    episode = fn(rewards.sum(1, keepdim=True), torch.ones_like(mask[:, :1]), group_size, **kw)
    return [[float(a)] * len(r) for a, r in zip(episode[:, 0].tolist(), step_rewards, strict=True)]
