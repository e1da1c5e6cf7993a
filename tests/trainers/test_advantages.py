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


