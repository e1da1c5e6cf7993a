"""The Gymnasium side of toolgym: spaces, tools, formats, ToolEnv and the task families.

This package never imports torch, transformers or trl.
"""

from toolgym.envs.batch import BatchStepper, step_as_completed, step_batch
from toolgym.envs.checker import ToolEnvContractError, check_tool_env
from toolgym.envs.formats import ActionFormat, HermesFormat, ParsedAction, TagsFormat, ToolCall, get_format
from toolgym.envs.registration import env_ids, register_envs
from toolgym.envs.result import EpisodeResult
from toolgym.envs.spaces import Messages, UnicodeText
from toolgym.envs.tool import Tool, ToolResult
from toolgym.envs.tool_env import RewardTerms, StepPlan, ToolEnv, render_messages
from toolgym.envs.wrappers import RenderText

__all__ = [
    "ActionFormat", "BatchStepper", "EpisodeResult", "HermesFormat", "Messages", "ParsedAction", "RenderText",
    "RewardTerms", "StepPlan", "TagsFormat", "Tool", "ToolCall", "ToolEnv", "ToolEnvContractError", "ToolResult",
    "UnicodeText", "check_tool_env", "env_ids", "get_format", "register_envs", "render_messages", "step_as_completed",
    "step_batch",
]
