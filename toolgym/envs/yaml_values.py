"""YAML for configs and ``key=value`` overrides, with YAML 1.2's numbers.

PyYAML follows YAML 1.1, which reads ``1e-3`` and ``5E4`` (no dot) as strings; people write learning
rates that way and mean numbers. This loader is ``yaml.SafeLoader`` with YAML 1.2's float pattern.
"""

from __future__ import annotations

import re
from typing import Any

import yaml


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"""),
    list("-+0123456789"),
)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` that also reads ``1e-3`` as the float 0.001."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
