"""The names of the training algorithms and of their settings that take a name, defined once.

Its own module, the lowest of the trainers: the advantage estimators, the settings classes
(:mod:`toolgym.trainers.algorithms`), configs and the CLI all read these, and the settings
classes also reach the trainers, which use the estimators.
"""

# The advantage estimators of toolgym.trainers.advantages (no critic), and every algorithm.
ESTIMATOR_NAMES = ("grpo", "rloo", "reinforce_pp", "reinforce_pp_baseline")
ALGORITHMS = ("ppo", *ESTIMATOR_NAMES)
CREDITS = ("outcome", "step", "gigpo")
SIMILARITIES = ("exact",)  # GiGPO step groups: steps whose observations are identical
GAE_LEVELS = ("token", "step")
KL_PENALTIES = ("loss", "reward")
