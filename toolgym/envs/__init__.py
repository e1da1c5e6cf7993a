"""The Gymnasium side of toolgym: spaces, tools, formats, ToolEnv and the task families.

This package never imports torch, transformers or trl.
"""

from toolgym.envs.formats import ActionFormat, HermesFormat, ParsedAction, TagsFormat, ToolCall, get_format
from toolgym.envs.registration import env_ids, register_envs
from toolgym.envs.spaces import Messages, UnicodeText
from toolgym.envs.tool import Tool, ToolResult
from toolgym.envs.tool_env import RewardTerms, ToolEnv, render_messages
from toolgym.envs.wrappers import RenderText

__all__ = [
    "ActionFormat", "HermesFormat", "Messages", "ParsedAction", "RenderText", "RewardTerms", "TagsFormat",
    "Tool", "ToolCall", "ToolEnv", "ToolResult", "UnicodeText", "env_ids", "get_format", "register_envs",
    "render_messages",
]
