"""toolgym: Gymnasium environments, a trainer and a benchmark for tool-using LLM agents.

>>> import gymnasium as gym, toolgym
>>> env = gym.make("MultiHopQA-v0")
"""

from toolgym.envs.registration import register_envs

__version__ = "0.1.0"

register_envs()
