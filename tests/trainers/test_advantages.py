"""Each estimator on a hand-computed example (numbers worked out in the comments)."""

import math

import pytest
import torch

from toolgym.trainers import advantages as A

T = torch.tensor
EPS = A.EPS


def close(a, b, tol=1e-6):
    return torch.allclose(torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32), atol=tol)


def test_discounted_returns_per_step_and_padding():
    rewards, mask = A.pad_steps([[0.2, 0.0, 1.0], [0.5]])
    assert mask.tolist() == [[True, True, True], [True, False, False]]
    # G2 = 1; G1 = 0 + 0.5 * 1 = 0.5; G0 = 0.2 + 0.5 * 0.5 = 0.45; padded steps 0
    assert close(A.discounted_returns(rewards, mask, gamma=0.5), [[0.45, 0.5, 1.0], [0.5, 0.0, 0.0]])


def test_grpo_one_step_and_multi_step_groups():
    # one group of 3: mean 0.5, unbiased std sqrt((.25 + .25 + 0) / 2) = 0.5
    adv = A.grpo(T([[1.0], [0.0], [0.5]]), T([[True]] * 3), group_size=3)
    assert close(adv[:, 0], [0.5 / (0.5 + EPS), -0.5 / (0.5 + EPS), 0.0])
    # statistics pool all real steps of the group: returns 1.2, 1.0 (episode 0), 0.0 (episode 1);
    # mean 2.2/3, unbiased var = .82667/2; the padded step gets 0
    returns, mask = T([[1.2, 1.0], [0.0, 9.0]]), T([[True, True], [True, False]])
    mean, std = 2.2 / 3, math.sqrt(((1.2 - 2.2 / 3) ** 2 + (1.0 - 2.2 / 3) ** 2 + (2.2 / 3) ** 2) / 2)
    expected = [[(1.2 - mean) / (std + EPS), (1.0 - mean) / (std + EPS)], [(0 - mean) / (std + EPS), 0.0]]
    assert close(A.grpo(returns, mask, 2), expected)
    # scale none: centred only; batch: divided by the std of the whole batch
    assert close(A.grpo(T([[1.0], [0.0], [3.0], [5.0]]), T([[True]] * 4), 2, scale="none")[:, 0], [0.5, -0.5, -1, 1])
    batch_std = torch.tensor([1.0, 0.0, 3.0, 5.0]).std()
    assert close(A.grpo(T([[1.0], [0.0], [3.0], [5.0]]), T([[True]] * 4), 2, scale="batch")[:, 0],
                 T([0.5, -0.5, -1, 1]) / (batch_std + EPS))


def test_rloo_leave_one_out_baseline():
    # group of 3 returns 1, 0, 0.5: baselines (0+.5)/2, (1+.5)/2, (1+0)/2 -> .75, -.75, 0 (= 3/2 (r - mean))
    adv = A.rloo(T([[1.0], [0.0], [0.5], [2.0], [2.0], [5.0]]), T([[True]] * 6), group_size=3)
    assert close(adv[:, 0], [0.75, -0.75, 0.0, -1.5, -1.5, 3.0])
    # with steps: the baseline is the mean over the *other* episodes' real steps
    adv = A.rloo(T([[1.0, 3.0], [2.0, 7.0]]), T([[True, True], [True, False]]), group_size=2)
    assert close(adv, [[1.0 - 2.0, 3.0 - 2.0], [2.0 - 2.0, 0.0]])


def test_reinforce_pp_batch_normalisation():
    # returns 1, 0, 0, 3: mean 1, unbiased var (0 + 1 + 1 + 4) / 3 = 2
    adv = A.reinforce_pp(T([[1.0], [0.0], [0.0], [3.0]]), T([[True]] * 4))
    s = math.sqrt(2) + EPS
    assert close(adv[:, 0], [0.0, -1 / s, -1 / s, 2 / s])
    # masked steps take part in nothing: same numbers with a padded second step
    adv2 = A.reinforce_pp(T([[1.0, 50.0], [0.0, 0.0], [0.0, 0.0], [3.0, -9.0]]), T([[True, False]] * 4))
    assert close(adv2[:, 0], adv[:, 0]) and adv2[:, 1].abs().sum() == 0


def test_reinforce_pp_baseline_group_mean_then_batch_norm():
    # groups (1, 0) and (0, 3): means .5 and 1.5 -> centred .5, -.5, -1.5, 1.5; batch mean 0,
    # unbiased var (.25 + .25 + 2.25 + 2.25) / 3 = 5/3
    adv = A.reinforce_pp_baseline(T([[1.0], [0.0], [0.0], [3.0]]), T([[True]] * 4), group_size=2)
    s = math.sqrt(5 / 3) + EPS
    assert close(adv[:, 0], [0.5 / s, -0.5 / s, -1.5 / s, 1.5 / s])


# An episode of 7 completion tokens: turn 1 samples tokens 0-1, the env's reply is tokens 2-4
# (masked), turn 2 samples tokens 5-6. Process reward 0.2 after turn 1, outcome 1.0 after turn 2.
SPANS = T([[[0, 2], [5, 7]]])
STEP_MASK = T([[True, True]])
TOKEN_MASK = T([[1, 1, 0, 0, 0, 1, 1]]).bool()
VALUES = T([[0.5, 0.6, 9.0, 9.0, 9.0, 0.7, 0.8]])  # values on env tokens are garbage: never used


def test_gae_token_level_with_process_rewards_at_two_steps():
    rewards = A.rewards_at_step_ends(T([[0.2, 1.0]]), SPANS, STEP_MASK, 7)
    assert close(rewards, [[0, 0.2, 0, 0, 0, 0, 1.0]])
    adv, ret = A.gae(rewards, VALUES, TOKEN_MASK, gamma=0.9, lam=0.8)
    # backwards over the sampled tokens only (gamma * lam = .72):
    # t6: delta = 1.0 - .8 = .2                     A6 = .2
    # t5: delta = .9 * .8 - .7 = .02                A5 = .02 + .72 * .2 = .164
    # t1: delta = .2 + .9 * .7 - .6 = .23 (bootstraps from t5, across the env tokens)
    #                                               A1 = .23 + .72 * .164 = .34808
    # t0: delta = .9 * .6 - .5 = .04                A0 = .04 + .72 * .34808 = .2906176
    assert close(adv, [[0.2906176, 0.34808, 0, 0, 0, 0.164, 0.2]])
    assert close(ret, [[0.7906176, 0.94808, 0, 0, 0, 0.864, 1.0]])


def test_gae_step_level_with_process_rewards_at_two_steps():
    step_values = A.values_at_step_starts(VALUES, SPANS, STEP_MASK)
    assert close(step_values, [[0.5, 0.7]])
    adv, ret = A.gae(T([[0.2, 1.0]]), step_values, STEP_MASK, gamma=0.9, lam=0.8)
    # k1: delta = 1.0 - .7 = .3; k0: delta = .2 + .9 * .7 - .5 = .33, A0 = .33 + .72 * .3 = .546
    assert close(adv, [[0.546, 0.3]]) and close(ret, [[1.046, 1.0]])
    assert close(A.steps_to_tokens(adv, SPANS, STEP_MASK, 7), [[0.546, 0.546, 0, 0, 0, 0.3, 0.3]])


def test_gae_lambda_one_no_critic_is_the_return():
    rewards = A.rewards_at_step_ends(T([[0.2, 1.0]]), SPANS, STEP_MASK, 7)
    adv, _ = A.gae(rewards, torch.zeros(1, 7), TOKEN_MASK, gamma=1.0, lam=1.0)
    assert close(adv, [[1.2, 1.2, 0, 0, 0, 1.0, 1.0]])


def test_step_advantages_hook_credit_and_errors():
    # outcome credit: every step gets the episode-return advantage (RLOO over returns 1.2, 0.0)
    adv = A.step_advantages([[0.2, 1.0], [0.0]], 2, estimator="rloo", credit="outcome")
    assert close(adv[0], [1.2, 1.2]) and close(adv[1], [-1.2])
    adv = A.step_advantages([[0.2, 1.0], [0.0]], 2, estimator="rloo", credit="step")  # baselines 0, 1.1
    assert close(adv[0], [1.2, 1.0]) and close(adv[1], [-1.1])
    with pytest.raises(ValueError, match="Did you mean 'rloo'"):
        A.step_advantages([[1.0]], 1, estimator="rlooo")
    with pytest.raises(ValueError, match="multiple of group_size=2"):
        A.step_advantages([[1.0], [0.0], [1.0]], 2)




# -- GiGPO ---------------------------------------------------------------------------------------------
# Two groups of three episodes (gamma 0.5, omega 0.5). State keys: "s0" starts every episode of group
# 0 and "t0" of group 1; "a" is reached by episodes 0 and 1 (group 0) and by episode 4 (group 1:
# the same key in another group is another step group, seen once there); "b" by episodes 3 and 5;
# "c" and "e" are seen once.
GIGPO_REWARDS = [[0.1, 1.0], [0.1, 0.0], [0.0], [0.2, 0.0, 1.0], [0.0, 1.0], [0.2, 0.0, 0.0]]
GIGPO_STATES = [["s0", "a"], ["s0", "a"], ["s0"], ["t0", "b", "c"], ["t0", "a"], ["t0", "b", "e"]]


def _paper_gigpo(rewards, states, n, gamma, omega):
    """GiGPO's equations written out one by one (Feng et al. 2025, Sec. 4), F_norm = std (unbiased) + eps."""
    import statistics

    def norm(x, xs):
        return (x - statistics.mean(xs)) / ((statistics.stdev(xs) if len(xs) > 1 else 0.0) + EPS)

    out = []
    for i, r in enumerate(rewards):
        group = range(i // n * n, i // n * n + n)
        # R(tau_i) and A^E(tau_i) = (R(tau_i) - mean{R(tau_j)}) / F_norm({R(tau_j)})
        a_e = norm(sum(r), [sum(rewards[j]) for j in group])
        # R_t^(i) = sum_{k >= t} gamma^(k - t) r_k^(i)
        ret = [[sum(gamma ** (k - t) * rj[k] for k in range(t, len(rj))) for t in range(len(rj))] for rj in rewards]
        row = []
        for t in range(len(r)):
            # G^S(s~) = {R_t'^(j) : s_t'^(j) = s~, j in the group}
            g_s = [ret[j][u] for j in group for u in range(len(rewards[j])) if states[j][u] == states[i][t]]
            a_s = norm(ret[i][t], g_s)  # A^S(a_t^(i))
            row.append(a_e + omega * a_s)  # A(a_t^(i)) = A^E + omega * A^S
        out.append(row)
    return out


def test_gigpo_hand_computed_batch():
    adv = A.step_advantages(GIGPO_REWARDS, 3, credit="gigpo", gamma=0.5, step_states=GIGPO_STATES, step_weight=0.5)
    # the numbers by hand: episode returns 1.1, 0.1, 0.0 (mean 0.4, std sqrt(.37)); 1.2, 1.0, 0.2
    # (mean 0.8, std sqrt(.28)). Step returns (gamma 0.5): ep0 0.6, 1.0; ep1 0.1, 0.0; ep2 0.0;
    # ep3 0.45, 0.5, 1.0; ep4 0.5, 1.0; ep5 0.2, 0.0, 0.0.
    s0 = [0.6, 0.1, 0.0]
    t0 = [0.45, 0.5, 0.2]

    def z(x, xs):
        m = sum(xs) / len(xs)
        return (x - m) / (math.sqrt(sum((v - m) ** 2 for v in xs) / (len(xs) - 1)) + EPS)

    ae = [z(1.1, [1.1, 0.1, 0.0]), z(0.1, [1.1, 0.1, 0.0]), z(0.0, [1.1, 0.1, 0.0]),
          z(1.2, [1.2, 1.0, 0.2]), z(1.0, [1.2, 1.0, 0.2]), z(0.2, [1.2, 1.0, 0.2])]
    a_state = 0.5 / (math.sqrt(0.5) + EPS)  # {1.0, 0.0}: mean 0.5, std sqrt(0.5)
    b_state = 0.25 / (math.sqrt(0.125) + EPS)  # {0.5, 0.0}: mean 0.25, std sqrt(0.125)
    expected = [
        [ae[0] + 0.5 * z(0.6, s0), ae[0] + 0.5 * a_state],
        [ae[1] + 0.5 * z(0.1, s0), ae[1] - 0.5 * a_state],
        [ae[2] + 0.5 * z(0.0, s0)],
        [ae[3] + 0.5 * z(0.45, t0), ae[3] + 0.5 * b_state, ae[3]],  # c: seen once, A^S = 0
        [ae[4] + 0.5 * z(0.5, t0), ae[4]],  # a in group 1: seen once there
        [ae[5] + 0.5 * z(0.2, t0), ae[5] - 0.5 * b_state, ae[5]],  # e: seen once
    ]
    for got, want, paper in zip(adv, expected, _paper_gigpo(GIGPO_REWARDS, GIGPO_STATES, 3, 0.5, 0.5), strict=True):
        assert close(got, want, 1e-5) and close(got, paper, 1e-5), (got, want, paper)


def test_gigpo_is_grpo_without_repeated_states_or_with_step_weight_zero():
    outcome = A.step_advantages(GIGPO_REWARDS, 3, credit="outcome")
    # step weight 0: the episode term alone, i.e. outcome credit, whatever the states
    assert A.step_advantages(GIGPO_REWARDS, 3, credit="gigpo", gamma=0.5, step_states=GIGPO_STATES,
                             step_weight=0.0) == outcome
    # no state repeats: every step group has one step, A^S = 0, whatever the step weight
    unique = [[f"{i}-{t}" for t in range(len(r))] for i, r in enumerate(GIGPO_REWARDS)]
    got = A.step_advantages(GIGPO_REWARDS, 3, credit="gigpo", step_states=unique, step_weight=1.0)
    assert all(close(g, o) for g, o in zip(got, outcome, strict=True))
    # and the outcome advantages are TRL's GRPO on the episode returns
    r = torch.tensor([sum(x) for x in GIGPO_REWARDS]).view(-1, 3)
    trl = ((r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + EPS)).flatten()
    assert close([a[0] for a in outcome], trl)


def test_gigpo_steps_sharing_a_state_share_their_step_group():
    # every episode of a group starts in the same state; returns-to-go 1, 1, 0 there
    adv = A.step_advantages([[0.0, 1.0], [1.0], [0.0, 0.0]], 3, credit="gigpo", step_weight=1.0,
                            step_states=[["s", "x"], ["s"], ["s", "y"]])
    outcome = A.step_advantages([[0.0, 1.0], [1.0], [0.0, 0.0]], 3, credit="outcome")
    step_level = [[a - o for a, o in zip(ar, orow, strict=True)] for ar, orow in zip(adv, outcome, strict=True)]
    # the two steps of state s with the same return get the same step-level advantage, the third its mirror
    assert step_level[0][0] == pytest.approx(step_level[1][0]) and step_level[0][0] > 0 > step_level[2][0]
    assert step_level[0][1] == pytest.approx(0.0) and step_level[2][1] == pytest.approx(0.0)  # x, y seen once
    # the step-level advantages of a step group sum to 0 (it is centred on the group's mean)
    assert sum(row[0] for row in step_level) == pytest.approx(0.0, abs=1e-5)


def test_gigpo_scale_none_and_other_estimators():
    adv = A.step_advantages([[1.0], [0.0]], 2, credit="gigpo", scale="none", step_states=[["s"], ["s"]],
                            step_weight=1.0)
    assert close(adv, [[0.5 + 0.5], [-0.5 - 0.5]])  # centred only, at both levels
    rloo = A.step_advantages([[1.0], [0.0], [0.0]], 3, "rloo", credit="gigpo", step_states=[["u"], ["v"], ["w"]])
    assert close(rloo, A.step_advantages([[1.0], [0.0], [0.0]], 3, "rloo", credit="outcome"))


def test_gigpo_needs_a_state_per_step():
    with pytest.raises(ValueError, match="step_states"):
        A.step_advantages([[1.0, 0.0]], 1, credit="gigpo", step_states=[["s"]])
    with pytest.raises(ValueError, match="credit must be one of"):
        A.step_advantages([[1.0]], 1, credit="gipgo")


def test_anchor_stats_report_repeats_and_return_spread():
    rewards, mask = A.pad_steps(GIGPO_REWARDS)
    states = A.pad_steps(A.state_ids(GIGPO_STATES), dtype=torch.long)[0]
    stats = A.anchor_stats(states, A.discounted_returns(rewards, mask, 0.5), mask, 3)
    # 13 steps; in shared step groups: s0 (3), a in group 0 (2), t0 (3), b (2) -> 10 of 13, groups of 2.5 on average
    assert stats["anchor_step_share"] == pytest.approx(10 / 13)
    assert stats["anchor_group_size"] == pytest.approx(2.5)
    stds = [torch.tensor(x).std().item() for x in ([0.6, 0.1, 0.0], [1.0, 0.0], [0.45, 0.5, 0.2], [0.5, 0.0])]
    assert stats["anchor_return_std"] == pytest.approx(sum(stds) / 4, abs=1e-6)
