"""The generation layer shared by training rollouts and model-based benchmark agents.

- :mod:`~toolgym.generation.chat`: chat templates rendered once and appended to (never
  re-rendered), with the env's messages adapted to what the template can show.
- :mod:`~toolgym.generation.native`: the ``native`` action format (tool calls in the model
  family's own syntax).
- :mod:`~toolgym.generation.backend`: sampling backends (HF ``generate``) and their result type.

Importing this package is cheap; transformers/torch are imported when used.
"""

from toolgym.generation.backend import Generation, GenerationBackend, HFBackend
from toolgym.generation.chat import ChatTemplate, TemplateUnsupportedError, stop_token_ids, template_name
from toolgym.generation.native import NativeFormat

__all__ = ["ChatTemplate", "Generation", "GenerationBackend", "HFBackend", "NativeFormat", "TemplateUnsupportedError",
           "stop_token_ids", "template_name"]
