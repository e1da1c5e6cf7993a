"""toolgym envs inside the RL frameworks people already use, one thin module per framework.

- ``toolgym.integrations.trl``: ``trl.GRPOTrainer(environment_factory=...)`` (extra ``trl``).
- ``toolgym.integrations.verifiers``: a verifiers v1 taskset and env (extra ``verifiers``).
- ``toolgym.integrations.skyrl``: SkyRL-gym envs (extra ``skyrl``).
- ``toolgym.integrations.gem``: GEM envs (extra ``gem``).

Each module imports its framework lazily, so ``import toolgym`` never needs any of them; what they
share (stepping an env and keeping the episode's return and reward terms) is in ``episode``.
See docs/integrations.md.
"""
