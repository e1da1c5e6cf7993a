"""Training LLM agents on toolgym envs: rollouts, GRPO on TRL, configs, the CPU demo.

Importing this package is cheap; torch/transformers/trl are imported when used.
"""
