"""Optional dependencies imported when used, with an install hint naming the toolgym extra.

The lowest layer that needs it holds it: the envs' heavy retrieval backends, the generation layer,
the trainers, the benchmark's model agents and the integrations all import their extras through
:func:`require`.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str = "train", *, user: str | None = None) -> ModuleType:
    """Import ``module``; if it is not installed, raise an ImportError naming the extra that installs
    it (``pip install 'toolgym[extra]'``). ``user`` names what needs it. A module
    that is installed but fails to import keeps its own error in the message."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        by = f"by {user}" if user else "here"
        if err.name is not None and (module == err.name or module.startswith(err.name + ".")):
            raise ImportError(f"{module} is needed {by} but is not installed ({err}). "
                              f"Install it with: pip install 'toolgym[{extra}]'") from err
        raise ImportError(f"{module} is needed {by} but could not be imported: {err}. Reinstall it with: "
                          f"pip install --force-reinstall 'toolgym[{extra}]'") from err
