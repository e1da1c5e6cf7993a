"""toolgym envs in TRL's ``GRPOTrainer(environment_factory=...)``.

    from trl import GRPOConfig, GRPOTrainer
    from toolgym.integrations.trl import factory

    envs = factory("MultiHopQA-v0", max_turns=6)
    trainer = GRPOTrainer(model="Qwen/Qwen2.5-0.5B-Instruct", args=GRPOConfig(...),
                          environment_factory=envs, train_dataset=envs.dataset(512),
                          reward_funcs=envs.reward_funcs())

TRL's contract (``trl/trainer/grpo_trainer.py``, 1.16): the factory returns an object whose
``reset(**row)`` starts an episode from a dataset row and returns text appended to the prompt's
last message, and whose public methods, typed and with Google-style docstrings, are the tools the
model calls. TRL renders the tools with the model's chat template, parses the model's calls with
its own response parser and runs the tool loop. Here the methods are generated from the env's own
``Tool`` schemas; each call is one ``env.step`` of that single call, so the env validates it,
runs it, scores it and may end the episode. The reward is the episode's return, one reward
function per reward term (TRL logs ``rewards/<term>/mean``; their sum is the env's return).
"""

from __future__ import annotations

import inspect
import keyword
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from toolgym.envs.deps import require
from toolgym.integrations.episode import Episode, check_append_only, instructions, make_env

# TRL treats every public function of the env class as a tool except these.
_RESERVED = ("reset", "get_reward")
_JSON_TO_PYTHON: dict[str, type] = {"string": str, "integer": int, "number": float, "boolean": bool,
                                    "object": dict, "array": list}


class ToolgymTRLEnv:
    """Base of the classes ``factory`` builds: one toolgym episode per TRL rollout.

    Public attributes (not functions, so TRL does not take them for tools): ``episode`` (the
    ``Episode``: actions, rewards, terms, how it ended) and ``env`` (the Gymnasium env).
    """

    env_id: str = ""
    env_kwargs: Mapping[str, Any] = {}

    def __init__(self) -> None:
        self.env = make_env(self.env_id, **self.env_kwargs)
        check_append_only(self.env, "TRL's tool loop")
        self.episode = Episode(self.env)
        self._finished = False

    def reset(self, prompt: Any = None, seed: int | None = None, **options: Any) -> str:
        """Start the episode a dataset row picks; return the task text TRL appends to the prompt.

        ``seed`` (and any other column, passed to the env as a reset option, such as
        ``question_id`` or ``index``) picks the question: TRL resets one env per rollout with the
        same row, so the rollouts of a group must get the same question from it. A prompt without
        a system message gets the env's instructions in front of the task.
        """
        if seed is None and not any(v is not None for v in options.values()):
            raise ValueError(
                f"the dataset row gives no seed (columns: {sorted(['prompt', *options])}): the rollouts of one "
                "prompt would each draw a different question. Build the dataset with factory(...).dataset(n), "
                "or add a 'seed' column (or the env's reset options, e.g. 'question_id')."
            )
        self.episode.reset(seed=None if seed is None else int(seed), options=options)
        self._finished = False
        has_system = isinstance(prompt, Sequence) and any(
            isinstance(m, Mapping) and m.get("role") == "system" for m in prompt
        )
        task = self.episode.task
        return task if has_system else f"{instructions(self.env)}\n\n{task}"

    def _call(self, tool: str, arguments: dict[str, Any]) -> str:
        """Step the env with one call; return what the env shows for it."""
        if self.episode.done:
            # TRL has no "done" signal: the model may keep calling. Nothing runs, nothing is scored.
            raise RuntimeError(f"the episode has ended ({self.episode.how_it_ended()}); no more tool calls run.")
        new = self.episode.step(self.env.unwrapped.format.write_call(tool, arguments))
        text = "\n".join(m["content"] for m in new)
        if self.episode.truncated:
            text += f"\nThe episode has ended ({self.episode.how_it_ended()}); no more tool calls run."
        return text

    def _finish(self, completion: Any) -> None:
        """Score the rollout's last message once, as the env would: TRL stops a rollout when the
        model writes a message without a tool call; if the env has not ended by then, that
        message is the episode's last action (a format penalty, or a ``tags`` answer)."""
        if self._finished:
            return
        self._finished = True
        last = completion[-1] if isinstance(completion, list) and completion else None
        if (
            not self.episode.done
            and isinstance(last, Mapping)
            and last.get("role") == "assistant"
            and not last.get("tool_calls")  # calls TRL did not run (iteration or length limit) are not scored
        ):
            self.episode.step(str(last.get("content") or ""))


def _python_type(spec: Mapping[str, Any], where: str) -> Any:
    """The type hint ``transformers.utils.get_json_schema`` turns back into ``spec``."""
    if "enum" in spec:
        return Literal[tuple(spec["enum"])]
    kind = spec.get("type")
    if isinstance(kind, list):
        hints = [_python_type({**spec, "type": k}, where) for k in kind if k != "null"]
        hint = hints[0]
        for other in hints[1:]:
            hint = hint | other
        return hint | None if "null" in kind else hint
    if kind == "array" and isinstance(spec.get("items"), Mapping):
        return list[_python_type(spec["items"], where)]
    if kind not in _JSON_TO_PYTHON:
        raise TypeError(
            f"{where} has JSON type {kind!r}, which a typed Python signature cannot express; "
            f"supported: {', '.join(_JSON_TO_PYTHON)} and enums."
        )
    return _JSON_TO_PYTHON[kind]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def tool_method(schema: Mapping[str, Any]) -> Callable[..., str]:
    """A method whose signature and Google-style docstring describe the tool ``schema`` (OpenAI
    function format), calling ``self._call(name, arguments)``: what TRL needs to expose it."""
    function = schema.get("function", schema)
    name = function["name"]
    if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_") or name in _RESERVED:
        raise ValueError(
            f"tool name {name!r} cannot be a TRL tool: TRL exposes public methods, so the name must be a Python "
            f"identifier, not start with '_', and not be one of {_RESERVED}. Rename the tool."
        )
    parameters = function.get("parameters") or {}
    properties: Mapping[str, Any] = parameters.get("properties", {})
    required = set(parameters.get("required", ()))

    def method(self, **arguments: Any) -> str:
        # An optional argument sent as null means "left out" (its schema is not nullable in the env).
        return self._call(name, {k: v for k, v in arguments.items() if v is not None or k in required})

    signature = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    annotations: dict[str, Any] = {}
    arg_lines = []
    for arg, spec in properties.items():
        if not arg.isidentifier() or keyword.iskeyword(arg):
            raise ValueError(f"tool {name!r}: argument {arg!r} is not a Python identifier, so it cannot be a parameter.")
        hint = _python_type(spec, f"tool {name!r} argument {arg!r}")
        optional = arg not in required
        annotations[arg] = hint | None if optional and not _is_optional(hint) else hint
        signature.append(inspect.Parameter(arg, inspect.Parameter.KEYWORD_ONLY, annotation=annotations[arg],
                                           default=None if optional else inspect.Parameter.empty))
        arg_lines.append(f"    {arg}: {_one_line(spec.get('description') or f'The {arg}.')}")
    annotations["return"] = str
    method.__name__ = method.__qualname__ = name
    method.__signature__ = inspect.Signature(signature, return_annotation=str)
    method.__annotations__ = annotations
    doc = [_one_line(function.get("description") or name), ""]
    if arg_lines:
        doc += ["Args:", *arg_lines, ""]
    doc += ["Returns:", "    What the environment shows for the call."]
    method.__doc__ = "\n".join(doc)
    return method


def _is_optional(hint: Any) -> bool:
    return type(None) in getattr(hint, "__args__", ())


def _class_name(env_id: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^0-9A-Za-z]+", env_id) if part) + "TRLEnv"


class EnvFactory:
    """What ``factory`` returns: call it for a fresh env (TRL does, once per concurrent rollout).

    Attributes:
        env_id, env_kwargs: what every env is built with (``gym.make(env_id, **env_kwargs)``).
        env_class: the generated ``ToolgymTRLEnv`` subclass with one method per tool.
        tools: the env's tool schemas (OpenAI function format).
        terms: the env's reward term names, one reward function each.
    """

    def __init__(self, env_id: str, **env_kwargs: Any):
        probe = make_env(env_id, **env_kwargs)
        try:
            check_append_only(probe, "TRL's tool loop")
            self.tools = [tool.schema() for tool in probe.unwrapped.tools]
            self.terms = tuple(probe.unwrapped.reward_weights)
            self.system_prompt = instructions(probe)
        finally:
            probe.close()
        self.env_id, self.env_kwargs = env_id, dict(env_kwargs)
        methods = {schema["function"]["name"]: tool_method(schema) for schema in self.tools}
        self.env_class: type[ToolgymTRLEnv] = type(
            _class_name(env_id), (ToolgymTRLEnv,),
            {"env_id": env_id, "env_kwargs": dict(env_kwargs), "__module__": __name__, **methods},
        )

    def __call__(self) -> ToolgymTRLEnv:
        return self.env_class()

    def rows(self, n: int, seed: int = 0, environment: str | None = None) -> list[dict[str, Any]]:
        """``n`` dataset rows: the env's instructions as the system message, an empty user message
        that ``reset`` fills with the task, and ``seed`` = ``seed + i`` (episode ``i`` of
        ``toolgym bench`` with the same seed asks the same question). ``environment``: the key of
        this factory in a dict ``environment_factory`` (TRL routes each row by it)."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}.")
        route = {} if environment is None else {"environment": environment}
        return [
            {"prompt": [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": ""}],
             "seed": seed + i, **route}
            for i in range(n)
        ]

    def dataset(self, n: int, seed: int = 0, environment: str | None = None):
        """``rows(n, seed, environment)`` as a ``datasets.Dataset`` for ``GRPOTrainer(train_dataset=...)``;
        concatenate several (``datasets.concatenate_datasets``) for a dict ``environment_factory``."""
        return require("datasets", "trl").Dataset.from_list(self.rows(n, seed, environment))

    def reward_funcs(self) -> list[Callable[..., list[float | None]]]:
        """``reward_funcs(self)``: one TRL reward function per reward term of this env."""
        return reward_funcs(self)


def reward_funcs(*factories: EnvFactory) -> list[Callable[..., list[float | None]]]:
    """One TRL reward function per reward term of the given factories' envs (the union, in order),
    named after it: for each rollout the terms sum to its return, and TRL logs each under
    ``rewards/<term>/``. With a dict ``environment_factory`` mixing toolgym ids, pass all of them:
    ``reward_funcs(qa, math)``; an env without a term scores 0 on it, and a rollout whose env is not
    a toolgym env gets None, which TRL ignores."""
    if not factories:
        raise ValueError("reward_funcs() needs at least one factory(...) to know the reward terms.")
    terms = dict.fromkeys(term for f in factories for term in f.terms)
    return [_term_reward(term) for term in terms]


def _term_reward(term: str) -> Callable[..., list[float | None]]:
    def reward(completions: list, environments: list | None = None, **kwargs: Any) -> list[float | None]:
        if environments is None:
            raise ValueError(
                f"the {term!r} reward reads the toolgym env of each rollout: pass environment_factory=factory(...) "
                "to GRPOTrainer together with these reward functions."
            )
        out: list[float | None] = []
        for completion, env in zip(completions, environments, strict=True):
            if not isinstance(env, ToolgymTRLEnv):
                out.append(None)
                continue
            env._finish(completion)
            out.append(env.episode.terms.get(term, 0.0))
        return out

    reward.__name__ = reward.__qualname__ = term
    return reward


def factory(env_id: str, **env_kwargs: Any) -> EnvFactory:
    """An ``environment_factory`` for ``trl.GRPOTrainer`` over ``gym.make(env_id, **env_kwargs)``,
    with ``.dataset(n)`` (the prompts) and ``.reward_funcs()`` (the env's reward terms)."""
    return EnvFactory(env_id, **env_kwargs)
