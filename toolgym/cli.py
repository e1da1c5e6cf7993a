"""The ``toolgym`` command. Each subcommand lives in the module that owns the concept; that
module exposes ``register(subparsers)`` and is listed in ``_SUBCOMMANDS`` (imported lazily, so
``toolgym envs`` never pays for torch).

Errors: a user's mistake (an unknown id, key or kwarg, a bad value, a missing or malformed file, a
missing extra) is raised by whatever code finds it as an ordinary exception with a message that says
what, the value and the fix; :func:`main` is the one place that turns it into one line on stderr
and exit status 2. ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys

# Modules that add subcommands; each exposes register(subparsers).
_SUBCOMMANDS = [
    "toolgym.envs.cli",
    "toolgym.trainers.cli",
    "toolgym.envs.retrieval.cli",
    "toolgym.generation.pypi_models",
    "toolgym.benchmarks.cli",
    "toolgym.viewer.cli",
]

USAGE_ERROR = 2  # exit status of a user error, as argparse uses for a bad flag


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="toolgym",
        description="Gymnasium environments, a trainer and a benchmark for tool-using LLM agents. "
                    "A mistake prints one line and exits with status 2; --debug shows the traceback.",
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in _SUBCOMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:  # an optional part missing its extra still lets the rest work
            print(f"toolgym: {module_name} unavailable ({err})", file=sys.stderr)
            continue
        module.register(subparsers)
    for sub in subparsers.choices.values():  # `toolgym train --debug ...` works as well as `toolgym --debug train`
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help="show the traceback of an error")
    return parser


def user_error(err: BaseException) -> bool:
    """Whether ``err`` is a user's mistake to report in one line rather than a bug to show in full.

    ValueError covers bad values and names (and ``DatasetFormatError``, ``UnicodeDecodeError``),
    TypeError wrong types in kwargs, OSError missing or unreadable files, ImportError a missing extra
    (its message names the extra), and Gymnasium's errors unknown ids."""
    kinds: tuple[type[BaseException], ...] = (ValueError, TypeError, OSError, ImportError)
    # YAML's and Gymnasium's errors, when they are loaded (none of theirs can be raised before)
    for module, name in (("yaml", "YAMLError"), ("gymnasium.error", "Error")):
        if module in sys.modules:
            kinds += (getattr(sys.modules[module], name),)
    return isinstance(err, kinds)


def one_line(err: BaseException) -> str:
    """The message of ``err`` on one line (Gymnasium's and YAML's span several)."""
    if isinstance(err, TypeError) and isinstance(err.__cause__, TypeError) and "raised from the environment creator" in str(err):
        err = err.__cause__  # gym.make re-raises a constructor's TypeError with its kwargs appended
    text = re.sub(r"\s*\n\s*", " ", str(err)).strip()
    if not text or text.startswith("[Errno") or isinstance(err, ModuleNotFoundError):  # these alone say too little
        text = f"{type(err).__name__}: {text}" if text else type(err).__name__
    if isinstance(err, ModuleNotFoundError) and err.name and "pip install" not in text:
        extras = extras_providing(err.name.partition(".")[0])
        if extras:
            text += f". Install it with: pip install 'toolgym[{extras[0]}]'"
    return text


def extras_providing(module: str) -> list[str]:
    """The toolgym extras that install ``module`` (read from the installed package's metadata)."""
    from importlib.metadata import PackageNotFoundError, requires  # slow to import; only errors need it

    try:
        requirements = requires("toolgym") or []
    except PackageNotFoundError:
        return []
    wanted = module.lower().replace("_", "-")
    extras = []
    for requirement in requirements:
        name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        extra = re.search(r"extra == \"([^\"]+)\"", requirement)
        if extra and name == wanted and extra.group(1) != "dev":
            extras.append(extra.group(1))
    return extras


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # key=value overrides may also follow options (`demo --seed 1 rl_steps=0`), which argparse
    # alone rejects once an option has ended the positional list
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not isinstance(getattr(args, "overrides", None), list) or any(a.startswith("-") or "=" not in a
                                                                          for a in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides += extra
    if not getattr(args, "handler", None):
        parser.print_help()
        return USAGE_ERROR
    prefix = f"toolgym {args.command}"
    try:
        return int(args.handler(args) or 0)
    except SystemExit as exit_:
        if not isinstance(exit_.code, str):  # argparse's own exits and plain statuses pass through
            raise
        message = exit_.code if exit_.code.startswith("toolgym") else f"{prefix}: {exit_.code}"
        print(one_line(ValueError(message)), file=sys.stderr)
        return USAGE_ERROR
    except Exception as err:
        if args.debug or not user_error(err):
            raise
        print(f"{prefix}: {one_line(err)}", file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
