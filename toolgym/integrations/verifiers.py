"""toolgym envs as a verifiers v1 taskset and env (verifiers >= 0.4, ``verifiers.v1``).

    vf-eval toolgym.integrations.verifiers --env.taskset.env-id MultiHopQA-v0 --env.taskset.n 100 \\
        -m MODEL --no-push

verifiers loads a taskset by id as an importable module exporting one ``Taskset`` and one ``Env``
subclass in ``__all__``: this module. ``ToolgymTaskset`` yields one task per episode seed (the
env's system prompt and task); ``ToolgymEnv.run`` steps the toolgym env host-side as the run's
user, as verifiers' own TextArena env does with its game engine: each reply of the ``player``
agent is one ``env.step``, the messages the env adds come back as the next user turn, and the
episode's end ends the exchange. The trace gets the env's reward terms (their sum is the
episode's return) and its end-of-episode scores as metrics. The agent writes tool calls as text in
the env's format (``hermes`` ``<tool_call>`` blocks by default), which the env parses itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from toolgym.envs.deps import require
from toolgym.envs.result import EpisodeResult
from toolgym.integrations.episode import Episode, check_append_only, make_env

vf = require("verifiers.v1", "verifiers")

__all__ = ["ToolgymEnv", "ToolgymEnvConfig", "ToolgymTask", "ToolgymTaskset", "ToolgymTasksetConfig"]


class ToolgymTasksetConfig(vf.TasksetConfig):
    env_id: str = "MultiHopQA-v0"
    """The toolgym id (`--env.taskset.env-id`)."""
    env_kwargs: dict[str, Any] = {}
    """`gym.make` keyword arguments, e.g. {"max_turns": 6, "format": "tags"}."""
    n: int = 100
    """Tasks: episodes seeded `seed`, `seed + 1`, ... (episode i of `toolgym bench --seed`)."""
    seed: int = 0
    """The first task's seed."""


class ToolgymData(vf.TaskData):
    info: dict
    """The env id, its kwargs and the seed that reproduce the episode."""


class ToolgymTask(vf.Task[ToolgymData, vf.State, vf.TaskConfig]):
    pass


class ToolgymTaskset(vf.Taskset[ToolgymTask, ToolgymTasksetConfig]):
    def load(self) -> Iterator[ToolgymTask]:
        config = self.config
        if config.n < 1:
            raise ValueError(f"n must be >= 1, got {config.n}.")
        episode = Episode(make_env(config.env_id, **config.env_kwargs))
        check_append_only(episode.env, "verifiers' agent conversation")
        for i in range(config.n):
            seed = config.seed + i
            system, *rest = episode.reset(seed=seed)
            yield ToolgymTask(
                ToolgymData(
                    name=f"{config.env_id}#{seed}",
                    prompt=[dict(m) for m in rest],
                    system_prompt=system["content"],
                    info={"env_id": config.env_id, "env_kwargs": dict(config.env_kwargs), "seed": seed},
                ),
                config.task,
            )
        episode.env.close()


def _null_harness():
    # The env's own protocol is the tool interface, so the agent needs no tools of its own.
    from verifiers.v1.harnesses.null import NullHarnessConfig  # extra verifiers

    return NullHarnessConfig(id="null")


class ToolgymEnvConfig(vf.EnvConfig):
    player: vf.AgentConfig = vf.AgentConfig(harness=_null_harness())
    """The agent playing the env (`--env.player.*`); a plain chat loop by default."""


class ToolgymEnv(vf.Env[ToolgymEnvConfig]):
    async def run(self, task: ToolgymTask, agents: Any) -> None:
        info = task.data.info
        episode = Episode(make_env(info["env_id"], **info["env_kwargs"]))
        episode.reset(seed=info["seed"])
        async with agents.player.interaction(task) as interaction:
            segment = await interaction.turn()
            while not segment.terminated:
                new = episode.step(segment.last_reply)
                if episode.done:
                    break  # the env ended the episode: end the exchange
                # Tool results (role "tool" in the hermes format) come back as one user turn:
                # the agent's calls are text, so there are no tool-call ids to answer.
                segment = await interaction.turn("\n\n".join(m["content"] for m in new))
        trace = interaction.trace
        for name in episode.term_names:
            trace.record_reward(name, episode.terms.get(name, 0.0), 1.0)
        trace.record_metric("turns", float(len(episode.actions)))
        trace.record_metric("truncated", float(episode.truncated))
        result = EpisodeResult.from_info(episode.info)
        for key, value in (result.metrics() if result is not None else {}).items():
            trace.record_metric(key, value)
        episode.env.close()
