"""The verifiers taskset id ``toolgym-verifiers``: verifiers imports a taskset id as a top-level
module (``toolgym-verifiers`` -> ``toolgym_verifiers``), so this shim re-exports
``toolgym.integrations.verifiers``. ``vf-eval toolgym-verifiers --env.taskset.env-id ToolMath-v0``.
"""

from toolgym.integrations.verifiers import (
    ToolgymEnv,
    ToolgymEnvConfig,
    ToolgymTask,
    ToolgymTaskset,
    ToolgymTasksetConfig,
)

__all__ = ["ToolgymEnv", "ToolgymEnvConfig", "ToolgymTask", "ToolgymTaskset", "ToolgymTasksetConfig"]
