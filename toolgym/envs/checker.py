"""Check that a ``ToolEnv`` subclass keeps toolgym's env contract, as ``gymnasium.utils.env_checker``
checks Gymnasium's: run it on your own env before training or benchmarking on it.

>>> import gymnasium as gym, toolgym
>>> from toolgym.envs.checker import check_tool_env
>>> check_tool_env(gym.make("ToolMath-v0"))

``check_tool_env(env)`` runs Gymnasium's ``check_env`` (warnings are errors), then plays episodes
and checks every step: one with the env's oracle (when it has one), which must end in a
successful result with score 1.0, and one of malformed actions (empty, plain text, broken calls,
unknown tools, not a string...), which must each come back as an observation with
``info["parse_error"]`` or ``info["tool_error"]``, never an exception, and must not end in a
success; then one step after the end. Each step must return chat messages in the observation
space, a finite float reward that is the sum of ``info["reward_terms"]`` (each a term named in
``reward_weights``), ``terminated`` and ``truncated`` never both, a JSON-serialisable ``info`` with
the keys every toolgym env reports, and ``info["result"]`` (``toolgym.envs.result``) exactly at
the step that ends the episode. A failure raises ``ToolEnvContractError`` saying what is wrong,
the value seen and the fix. ``check_step(env, out)`` checks one step's return value the same way
(for your own tests: a fuzzer, a table of hostile actions).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import warnings
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
from gymnasium.utils.env_checker import check_env

from toolgym.envs.result import RESULT_KEY, EpisodeResult
from toolgym.envs.tool_env import ToolEnv

#: Keys every step's info carries (ToolEnv fills them).
INFO_KEYS = ("turn", "tool_calls", "reward_terms", "parse_error", "tool_error")
ROLES = ("system", "user", "assistant", "tool")
#: Actions no env may fail on: each must come back as an error the agent can read.
MALFORMED: dict[str, Any] = {
    "empty": "",
    "plain text": "I am not sure what to do.",
    "broken call": '<tool_call>{"name": "answer", "arguments": </tool_call>',
    "unknown tool": '<tool_call>{"name": "no_such_tool", "arguments": {}}</tool_call><no_such_tool>x</no_such_tool>',
    "not a string": None,
}


class ToolEnvContractError(AssertionError):
    """A ``ToolEnv`` broke the contract: the message says where, what was seen and the fix."""


def check_tool_env(env: gym.Env, *, seed: int = 0, skip_gymnasium_check: bool = False) -> None:
    """Raise ``ToolEnvContractError`` at the first break of the toolgym env contract (see the module
    docstring); return None when ``env`` keeps it. ``env`` may be wrapped (``gym.make``): the
    ``ToolEnv`` inside is checked. ``skip_gymnasium_check``: skip Gymnasium's own ``check_env``
    (needed for an env whose episodes last one step: its determinism check steps twice)."""
    base = env.unwrapped
    name = type(base).__name__
    if not isinstance(base, ToolEnv):
        raise ToolEnvContractError(f"check_tool_env checks ToolEnv subclasses; got {name}: subclass "
                                   "toolgym.envs.ToolEnv and implement its task hooks.")
    if not skip_gymnasium_check:
        _gymnasium_check(base, name)
    has_oracle = type(base).oracle_action is not ToolEnv.oracle_action
    if has_oracle:
        base.reset(seed=seed)
        result = _play(base, name, "oracle episode", lambda: base.oracle_action())
        if result is None:
            raise ToolEnvContractError(f"{name}: the oracle episode did not end within max_turns="
                                       f"{base.max_turns} steps: oracle_action() must lead to the end of the task.")
        if not (result.success and result.score == 1.0):
            raise ToolEnvContractError(f"{name}: the oracle episode ended with success={result.success}, "
                                       f"score={result.score} (result {result.to_dict()}): the oracle must solve "
                                       "the task; fix oracle_action() or the scoring in _episode_result().")
    base.reset(seed=seed)
    actions = iter(list(MALFORMED.items()) * (base.max_turns + 1))
    last: list[str] = []

    def malformed():
        case, action = next(actions)
        last[:] = [case]
        return action

    result = _play(base, name, "malformed-action episode", malformed, expect_error=last)
    if result is None:
        raise ToolEnvContractError(f"{name}: an episode of malformed actions did not end within max_turns="
                                   f"{base.max_turns} steps: count every message against max_turns.")
    if result.success:
        raise ToolEnvContractError(f"{name}: an episode of malformed actions ended as a success "
                                   f"({result.to_dict()}): success must mean the task was solved.")
    step = base.step("<after the end>")
    check_step(base, step, where="the step after the end", after_end=True)
    if RESULT_KEY in step[4]:
        raise ToolEnvContractError(f"{name}: a step after the end carries info[{RESULT_KEY!r}]: only the step "
                                   "that ends the episode reports its result.")
    if not step[4].get("parse_error"):
        raise ToolEnvContractError(f"{name}: a step after the end gave parse_error={step[4].get('parse_error')!r}: "
                                   "it must say that the episode has ended.")


def _gymnasium_check(base: ToolEnv, name: str) -> None:
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # "human" mode prints
        warnings.simplefilter("error")
        try:
            check_env(base, skip_render_check=base.spec is None)
        except (AssertionError, Warning, TypeError, ValueError) as err:
            raise ToolEnvContractError(f"{name}: gymnasium.utils.env_checker.check_env failed: "
                                       f"{type(err).__name__}: {err}") from err


def _play(base: ToolEnv, name: str, episode: str, next_action, expect_error: list | None = None):
    """Step with ``next_action()`` until the end (at most ``max_turns`` + 1 steps), checking each
    step; the episode's result, or None when it did not end."""
    for number in range(1, base.max_turns + 2):
        action = next_action()
        where = f"step {number} of the {episode}" + (f" (action: {expect_error[0]})" if expect_error else "")
        try:
            out = base.step(action)
        except Exception as err:  # noqa: BLE001 - any exception breaks the contract; say which
            raise ToolEnvContractError(f"{name}: {where}: step({action!r:.60}) raised {type(err).__name__}: {err}. "
                                       "No action may make step() raise: turn the problem into an observation "
                                       "and info['parse_error'] or info['tool_error'].") from err
        check_step(base, out, where=where)
        info = out[4]
        if expect_error and not (info["parse_error"] or info["tool_error"]):
            raise ToolEnvContractError(f"{name}: {where}: a malformed action gave parse_error=None and "
                                       "tool_error=None: say what was wrong in one of them.")
        if out[2] or out[3]:
            return EpisodeResult.from_info(info)
    return None


def check_step(env: gym.Env, out: Any, *, where: str = "a step", after_end: bool = False) -> None:
    """Check one ``env.step(...)`` return value ``out`` against the contract (``check_tool_env``
    checks every step of its episodes with it); ``after_end``: the episode had already ended."""
    base = env.unwrapped
    name = type(base).__name__
    if not isinstance(out, tuple) or len(out) != 5:
        raise ToolEnvContractError(f"{name}: {where}: step() returned {type(out).__name__} {out!r:.80}; it must "
                                   "return (observation, reward, terminated, truncated, info).")
    obs, reward, terminated, truncated, info = out
    _check_observation(base, name, where, obs)
    if not isinstance(reward, float) or not math.isfinite(reward):
        raise ToolEnvContractError(f"{name}: {where}: the reward is {type(reward).__name__} {reward!r}; it must be "
                                   "a finite float: the weighted sum of the step's reward terms.")
    if not isinstance(terminated, bool) or not isinstance(truncated, bool):
        raise ToolEnvContractError(f"{name}: {where}: terminated={terminated!r}, truncated={truncated!r}; both "
                                   "must be bools.")
    if terminated and truncated:
        raise ToolEnvContractError(f"{name}: {where}: terminated and truncated are both True: an episode ends "
                                   "either because the task ended or because a budget ran out, never both.")
    _check_info(base, name, where, info, reward)
    if after_end:
        return
    ended = terminated or truncated
    if ended and RESULT_KEY not in info:
        raise ToolEnvContractError(f"{name}: {where}: the episode ended but info has no {RESULT_KEY!r} (keys: "
                                   f"{sorted(info)}): return an EpisodeResult from _episode_result(); ToolEnv.step "
                                   "puts it in the final info.")
    if ended:
        try:
            EpisodeResult.from_info(info)
        except (TypeError, ValueError) as err:
            raise ToolEnvContractError(f"{name}: {where}: info[{RESULT_KEY!r}] is not a valid result: {err}") from err
    elif RESULT_KEY in info:
        raise ToolEnvContractError(f"{name}: {where}: info[{RESULT_KEY!r}] = {info[RESULT_KEY]!r:.80} before the "
                                   f"episode ended: only the last step reports the result; rename the "
                                   f"{RESULT_KEY!r} key of _task_info().")


def _check_observation(base: ToolEnv, name: str, where: str, obs: Any) -> None:
    if not isinstance(obs, tuple) or not obs:
        raise ToolEnvContractError(f"{name}: {where}: the observation is {type(obs).__name__} {obs!r:.80}; it must "
                                   "be a non-empty tuple of {'role', 'content'} chat messages.")
    for i, message in enumerate(obs):
        if not (isinstance(message, Mapping) and set(message) == {"role", "content"}
                and message["role"] in ROLES and isinstance(message["content"], str)):
            raise ToolEnvContractError(f"{name}: {where}: observation message {i} is {message!r:.80}; each must be "
                                       f"{{'role': one of {', '.join(ROLES)}, 'content': str}}.")
    if obs not in base.observation_space:
        raise ToolEnvContractError(f"{name}: {where}: the observation ({len(obs)} messages, "
                                   f"{sum(len(m['content']) for m in obs)} characters) is not in observation_space "
                                   f"{base.observation_space}: keep within max_context_chars and the message count.")


def _check_info(base: ToolEnv, name: str, where: str, info: Any, reward: float) -> None:
    if not isinstance(info, dict):
        raise ToolEnvContractError(f"{name}: {where}: info is {type(info).__name__}; it must be a dict.")
    missing = [key for key in INFO_KEYS if key not in info]
    if missing:
        raise ToolEnvContractError(f"{name}: {where}: info lacks {missing}: keep ToolEnv's info keys "
                                   f"({', '.join(INFO_KEYS)}) and add task keys in _task_info().")
    try:
        json.dumps(info)
    except (TypeError, ValueError) as err:
        raise ToolEnvContractError(f"{name}: {where}: info is not JSON-serialisable ({err}): use str, numbers, "
                                   "bools, None, lists and dicts with str keys in _task_info().") from err
    terms = info["reward_terms"]
    if not isinstance(terms, dict):
        raise ToolEnvContractError(f"{name}: {where}: info['reward_terms'] is {type(terms).__name__}; it must be "
                                   "a dict of term name -> weighted value.")
    for term, value in terms.items():
        if term not in base.reward_weights:
            raise ToolEnvContractError(f"{name}: {where}: reward term {term!r} has no weight (weights: "
                                       f"{sorted(base.reward_weights)}): name every term in default_reward_weights.")
        if not isinstance(value, float) or not math.isfinite(value):
            raise ToolEnvContractError(f"{name}: {where}: reward term {term!r} is {value!r}; terms must be finite floats.")
    total = sum(terms.values())
    if not math.isclose(total, reward, rel_tol=1e-9, abs_tol=1e-9):
        raise ToolEnvContractError(f"{name}: {where}: the reward is {reward!r} but info['reward_terms'] {terms} sum "
                                   f"to {total!r}: every part of the reward must be a named term (terms.add(name, "
                                   "value) in a hook, with a weight in default_reward_weights).")
