"""The env ids toolgym registers with Gymnasium: one flat list."""

from __future__ import annotations

import inspect

from gymnasium.envs.registration import load_env_creator, register, registry

from toolgym.envs.errors import unknown_name_error

# (id, entry point, default kwargs, one line for `toolgym envs`)
ENVS: list[tuple[str, str, dict, str]] = [
    ("MultiHopQA-v0", "toolgym.envs.multihop_qa.env:MultiHopQAEnv", {},
     "Multi-hop QA with a search tool over an offline synthetic world (2-4 hops, bridge and comparison)."),
    ("ToolMath-v0", "toolgym.envs.math.env:ToolMathEnv", {},
     "Arithmetic word problems (generated offline, or GSM8K) with an exact, sandboxed calculator tool."),
    ("SQLQuery-v0", "toolgym.envs.sql.env:SQLQueryEnv", {},
     "Questions over a generated SQLite shop database: list_tables, describe and read-only sql tools."),
    ("Wordle-v0", "toolgym.envs.wordle.env:WordleEnv", {},
     "Wordle: guess a 5-letter word in 6 tries from letter feedback; dense reward per new letter found."),
    ("HotpotQA-v0", "toolgym.envs.multihop_qa.env:MultiHopQAEnv", {"dataset": "hotpotqa", "split": "validation"},
     "HotpotQA (distractor) through `datasets` or data_files=, searching the pooled paragraphs of the split."),
    ("TwoWikiMultihopQA-v0", "toolgym.envs.multihop_qa.env:MultiHopQAEnv",
     {"dataset": "2wikimultihopqa", "split": "validation"},
     "2WikiMultihopQA through `datasets` or data_files=, searching the pooled paragraphs of the split."),
    ("MuSiQue-v0", "toolgym.envs.multihop_qa.env:MultiHopQAEnv", {"dataset": "musique", "split": "validation"},
     "MuSiQue-Ans (answerable) through `datasets` or data_files=, searching the pooled paragraphs of the split."),
    # Open-domain QA (Search-R1's general-QA sets and Bamboogle): questions and answers only, no gold
    # evidence, searched over the corpus the user gives (corpus= a JSONL file or Lucene index, or an http server).
    ("NQ-v0", "toolgym.envs.multihop_qa.env:MultiHopQAEnv", {"dataset": "nq", "split": "test"},
     "Natural Questions (FlashRAG's copy, or data_files=) over your corpus=: open-domain QA, no gold evidence."),
    ("TriviaQA-v0", "toolgym.envs.multihop_qa.env:MultiHopQAEnv", {"dataset": "triviaqa", "split": "test"},
     "TriviaQA (FlashRAG's copy, or data_files=) over your corpus=: open-domain QA, no gold evidence."),
    ("PopQA-v0", "toolgym.envs.multihop_qa.env:MultiHopQAEnv", {"dataset": "popqa", "split": "test"},
     "PopQA (FlashRAG's copy, or data_files=) over your corpus=: open-domain QA, no gold evidence."),
    ("Bamboogle-v0", "toolgym.envs.multihop_qa.env:MultiHopQAEnv", {"dataset": "bamboogle", "split": "test"},
     "Bamboogle 2-hop questions (FlashRAG's copy, or data_files=) over your corpus=: no gold evidence."),
]


def register_envs() -> None:
    """Register every toolgym id; idempotent, so importing toolgym again registers nothing twice.

    ``import toolgym`` calls it. Gymnasium 1.4 has no plugin entry points (it reads no package
    metadata); ``gym.make("toolgym:MultiHopQA-v0")`` imports the ``toolgym`` module named before
    the colon, which registers the ids, then makes the env.
    """
    for env_id, entry_point, kwargs, _ in ENVS:
        if env_id not in registry:
            register(id=env_id, entry_point=entry_point, kwargs=kwargs, disable_env_checker=False)


def env_ids() -> list[str]:
    return [env_id for env_id, *_ in ENVS]



# gym.make's own keyword arguments, taken before the env's constructor sees the rest.
_MAKE_KWARGS = {"max_episode_steps", "disable_env_checker", "render_mode"}


def env_kwarg_names(env_id: str) -> set[str] | None:
    """The keyword arguments ``gym.make(env_id, ...)`` accepts: the constructor's, and those it
    forwards with ``**kwargs`` to its bases; None when the chain ends in ``**kwargs`` (anything goes)."""
    entry_point = registry[env_id].entry_point
    creator = load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point
    names = set(_MAKE_KWARGS)
    for cls in creator.__mro__ if isinstance(creator, type) else [creator]:
        init = vars(cls).get("__init__") if isinstance(cls, type) else cls
        if init is None or cls is object:
            continue
        params = inspect.signature(init).parameters.values()
        names |= {p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)} - {"self"}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names
    return None


def check_env_args(env_id: str, kwargs: dict | None = None) -> None:
    """Raise a one-line ValueError for an unknown env id or keyword argument, naming the closest valid
    one, before anything is built (``gym.make`` raises NameNotFound, or a TypeError deep inside)."""
    register_envs()
    name = env_id.split(":")[-1]  # "toolgym:MultiHopQA-v0" names the module to import first
    if name not in registry:
        raise unknown_name_error("env id", env_id, env_ids())
    valid = env_kwarg_names(name)
    for key in kwargs or {}:
        if valid is not None and key not in valid:
            raise unknown_name_error(f"{name} keyword argument", key, valid)
