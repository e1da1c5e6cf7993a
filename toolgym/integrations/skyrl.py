"""toolgym envs as SkyRL-gym envs (``init``/``step``/``close``, a reward every turn).

    import toolgym.integrations.skyrl as tg_skyrl
    tg_skyrl.register()                               # "toolgym-MultiHopQA-v0", ... in skyrl_gym's registry
    env = skyrl_gym.make("toolgym-MultiHopQA-v0", env_config={"max_turns": 6}, extras={"seed": 3})
    chat, _ = env.init(prompt)                        # the env's system prompt and question
    out = env.step(model_text)                        # {"observations", "reward", "done", "metadata"}

SkyRL's generator (skyrl-train) makes the env with ``env_config`` = the run's
``environment.skyrl_gym.<env_class>`` section (here: ``gym.make`` keyword arguments) and
``extras`` = the dataset row's other columns; ``seed`` and ``options`` pick the question, so the
rollouts of one prompt share it. The model writes tool calls as text in the env's format
(``hermes`` ``<tool_call>`` blocks, or ``tags``), exactly what ``env.step`` parses; the turn
reward is the env's step reward, so SkyRL's per-turn rewards are toolgym's process rewards.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from toolgym.envs import registration
from toolgym.envs.deps import require
from toolgym.envs.result import EpisodeResult
from toolgym.integrations.episode import Episode, check_append_only, make_env

_skyrl_gym = require("skyrl_gym", "skyrl")
from skyrl_gym.envs.base_text_env import BaseTextEnv, BaseTextEnvStepOutput  # noqa: E402

PREFIX = "toolgym-"


class ToolgymSkyRLEnv(BaseTextEnv):
    """One toolgym episode behind SkyRL-gym's text-env API.

    Args:
        env_id: the toolgym id (``"MultiHopQA-v0"``).
        env_config: ``gym.make`` keyword arguments (a dict or an OmegaConf ``DictConfig``).
        extras: the dataset row: ``seed`` and ``options`` (the env's reset options) pick the task.
    """

    def __init__(self, env_id: str, env_config: Mapping[str, Any] | None = None, extras: Mapping[str, Any] | None = None):
        super().__init__()
        kwargs = _plain(env_config or {})
        self.episode = Episode(make_env(env_id, **kwargs))
        check_append_only(self.episode.env, "SkyRL's generator")
        self.extras = dict(extras or {})
        self.max_turns = self.episode.base.max_turns

    def init(self, prompt: Any = None) -> tuple[list[dict[str, str]], dict[str, Any]]:
        """Reset with the row's ``seed``/``options``; the conversation starts with the env's own
        system prompt and task (the dataset's ``prompt`` is only a placeholder here)."""
        seed = self.extras.get("seed")
        options = _plain(self.extras.get("options") or {})
        if seed is None and not options:
            raise ValueError(
                f"the dataset row gives no seed or options (extras: {sorted(self.extras)}): every rollout would draw "
                "a different task. Add a 'seed' column, e.g. from toolgym.integrations.skyrl.rows(env_id, n)."
            )
        messages = self.episode.reset(seed=None if seed is None else int(seed), options=options)
        return messages, {"seed": seed, **{k: v for k, v in self.episode.info.items() if k.endswith("_id")}}

    def step(self, action: str) -> BaseTextEnvStepOutput:
        new = self.episode.step(action)
        self.turns = self.episode.base.turn
        return BaseTextEnvStepOutput(
            observations=[] if self.episode.done else new,
            reward=self.episode.rewards[-1],
            done=self.episode.done,
            metadata=self.episode.info,
        )

    def get_metrics(self) -> dict[str, Any]:
        """Numbers SkyRL averages over episodes: the return, each reward term, and the episode's
        result once it ended (``success``, ``score``, numeric task extras such as QA's ``em``)."""
        result = EpisodeResult.from_info(self.episode.info)
        scores = result.metrics() if result is not None else {}
        terms = {f"reward/{name}": self.episode.terms.get(name, 0.0) for name in self.episode.term_names}
        return {"return": self.episode.episode_return, "turns": self.turns,
                "truncated": float(self.episode.truncated), **terms, **scores}

    def close(self) -> None:
        self.episode.env.close()


def _plain(config: Any) -> dict[str, Any]:
    """An OmegaConf ``DictConfig`` (what SkyRL passes) or a mapping, as a plain dict."""
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(config, DictConfig):
            return dict(OmegaConf.to_container(config, resolve=True))
    except ImportError:  # omegaconf comes with skyrl-gym; a plain mapping needs nothing
        pass
    return dict(config)


def register(env_ids: list[str] | None = None) -> list[str]:
    """Register toolgym ids in skyrl_gym's registry as ``toolgym-<id>`` (all ids by default);
    idempotent. Returns the SkyRL ids."""
    names = []
    for env_id in env_ids or registration.env_ids():
        name = PREFIX + env_id
        if name not in _skyrl_gym.registry:
            _skyrl_gym.register(id=name, entry_point=f"{__name__}:ToolgymSkyRLEnv", kwargs={"env_id": env_id})
        names.append(name)
    return names


def rows(env_id: str, n: int, seed: int = 0, **env_kwargs: Any) -> list[dict[str, Any]]:
    """``n`` SkyRL dataset rows for ``toolgym-<env_id>``: ``prompt`` (the env's opening messages,
    for SkyRL's length filters and logs), ``env_class`` and the ``seed`` that picks the task
    (``seed + i``, the episode ``toolgym bench --seed seed`` runs as episode ``i``)."""
    env = Episode(make_env(env_id, **env_kwargs))
    out = [{"prompt": env.reset(seed=seed + i), "env_class": PREFIX + env_id, "seed": seed + i} for i in range(n)]
    env.env.close()
    return out
