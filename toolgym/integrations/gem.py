"""toolgym envs as GEM envs (``gem-llm``: ``gem.make``, string observations).

    import gem
    import toolgym.integrations.gem as tg_gem
    tg_gem.register()                                     # "toolgym:MultiHopQA-v0", ... in GEM's registry
    envs = gem.make_vec(["toolgym:ToolMath-v0"] * 8, wrappers=[...], seed=0)

GEM's observation is the text the agent sees next, not the whole conversation: ``reset`` returns
the env's system prompt and task as one string (GEM has no system role), ``step`` the text of the
messages the env added, with ``info["use_tool"]`` when they are tool results (GEM's
``concat_chat`` wrapper then renders them as ``tool`` messages). GEM's own wrappers rebuild the
history. The model writes calls as text in the env's format, which the env parses itself; the
reward of a step is toolgym's step reward, so GEM's returns are toolgym's returns.
"""

from __future__ import annotations

import functools
from typing import Any

from toolgym.envs import registration
from toolgym.envs.deps import require
from toolgym.integrations.episode import Episode, check_append_only, make_env

gem = require("gem", "gem")

PREFIX = "toolgym:"


class ToolgymGEMEnv(gem.Env):
    """One toolgym env behind GEM's ``reset``/``step``.

    Args:
        env_id: the toolgym id.
        seed: the seed of the first ``reset()`` without one (``gem.make_vec`` passes ``seed + i``);
            later resets continue the env's own random stream, as Gymnasium envs do.
        **env_kwargs: ``gym.make`` keyword arguments.
    """

    def __init__(self, env_id: str, seed: int | None = None, **env_kwargs: Any):
        super().__init__()
        self.episode = Episode(make_env(env_id, **env_kwargs))
        check_append_only(self.episode.env, "GEM's history wrappers")
        self._first_seed = seed

    def reset(self, seed: int | None = None) -> tuple[str, dict[str, Any]]:
        # Not gem.Env.reset: it seeds Python's and numpy's global generators; toolgym draws only
        # from the env's own generator.
        if seed is None:
            seed, self._first_seed = self._first_seed, None
        messages = self.episode.reset(seed=seed)
        return "\n\n".join(m["content"] for m in messages), dict(self.episode.info)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        new = self.episode.step(action)
        info = {**self.episode.info, "use_tool": any(m["role"] == "tool" for m in new)}
        if self.episode.done:
            info["episode_return"] = self.episode.episode_return
            info["episode_terms"] = dict(self.episode.terms)
        return ("\n".join(m["content"] for m in new), self.episode.rewards[-1], self.episode.terminated,
                self.episode.truncated, info)

    def sample_random_action(self) -> str:
        base = self.episode.base
        return base.call("answer", answer="I do not know") if any(t.name == "answer" for t in base.tools) else ""


def register(env_ids: list[str] | None = None) -> list[str]:
    """Register toolgym ids in GEM's registry as ``toolgym:<id>`` (all ids by default); idempotent.
    Returns the GEM ids."""
    from gem.envs.registration import ENV_REGISTRY  # extra gem, loaded by require() above

    names = []
    for env_id in env_ids or registration.env_ids():
        name = PREFIX + env_id
        if name not in ENV_REGISTRY:
            # A bound constructor: gem.register's own first parameter is called env_id.
            gem.register(name, functools.partial(ToolgymGEMEnv, env_id))
        names.append(name)
    return names
