"""Every third-party package the toolgym package imports is declared in ``pyproject.toml``, where the
way it is imported says:

- a top-level import of the env layer (``toolgym.envs``, the package itself): a core dependency
  (``pip install toolgym`` is all an env user runs);
- ``require("module", "extra")`` (:func:`toolgym.envs.deps.require`): that extra, whose name the
  install hint prints;
- any other import (other layers, inside a function, in a ``try`` that catches ImportError): a core
  dependency or some extra other than ``dev`` (which holds the tests' tools, not the package's).

A package must be declared itself, not only arrive with another one (tokenizers with transformers):
what a dependency pulls in today it may drop tomorrow. Import names map to distribution names
through :data:`DISTRIBUTIONS` where they differ, else through the installed packages' metadata,
else they are taken as the same name.

    python -m toolgym.devtools.dependencies   # each third-party import, where it is declared, what is missing

The exit status is 1 when an import is not declared where its use needs it. Stdlib only.
"""

from __future__ import annotations

import argparse
import ast
import functools
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from toolgym.devtools.imports import Graph, layer_of, scan

# Import name -> distribution name, where they differ: so the check reads the same whether or not
# the package is installed here.
DISTRIBUTIONS = {
    "yaml": "pyyaml", "Stemmer": "pystemmer", "faiss": "faiss-cpu", "jnius": "pyjnius", "jnius_config": "pyjnius",
    "gem": "gem-llm", "skyrl_gym": "skyrl-gym", "sentence_transformers": "sentence-transformers",
    "sklearn": "scikit-learn", "PIL": "pillow", "cv2": "opencv-python", "google.protobuf": "protobuf",
}
CORE = "core"
TEST_EXTRAS = {"dev"}  # extras for working on toolgym: the package must not need them


def normalize(name: str) -> str:
    """A distribution name as pip compares them (PEP 503): lower case, runs of ``-_.`` as one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(pyproject: str | Path) -> dict[str, set[str]]:
    """The distributions of ``pyproject.toml``: ``core`` -> its dependencies, each extra -> its own
    (normalized names, without versions or markers)."""
    project = tomllib.loads(Path(pyproject).read_text(encoding="utf-8"))["project"]
    groups = {CORE: project.get("dependencies", []), **project.get("optional-dependencies", {})}
    return {group: {normalize(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", req.strip()).group(0)) for req in reqs}
            for group, reqs in groups.items()}


@functools.cache
def _installed() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distribution_of(module: str) -> str:
    """The distribution that provides the importable ``module`` (``yaml`` -> ``pyyaml``)."""
    for name in (module, module.split(".")[0]):
        if name in DISTRIBUTIONS:
            return normalize(DISTRIBUTIONS[name])
    top = module.split(".")[0]
    found = _installed().get(top)
    return normalize(found[0] if found else top)


@dataclass(frozen=True)
class Use:
    """``source`` (a module of the package) imports the third-party ``module`` at ``line``; ``needs``
    says where its declaration must be: ``core``, ``extra:<name>`` (a ``require`` names it) or ``any``."""

    source: str
    module: str
    line: int
    needs: str

    @property
    def distribution(self) -> str:
        return distribution_of(self.module)


def _third_party(module: str, package: str) -> bool:
    top = module.split(".")[0]
    return top != package and top not in sys.stdlib_module_names and top != "__future__"


def uses(graph: Graph) -> list[Use]:
    """The third-party imports of the package (TYPE_CHECKING ones aside: they never run), and its
    ``require("module", "extra")`` calls."""
    out = []
    for i in graph.imports:
        if i.typing or not _third_party(i.target, graph.package):
            continue
        top_of_envs = layer_of(i.source) == "envs" and not (i.lazy or i.guarded)
        out.append(Use(i.source, i.target, i.line, CORE if top_of_envs else "any"))
    for source, path in graph.modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            call = _require_call(node)
            if call and _third_party(call[0], graph.package):
                out.append(Use(source, call[0], node.lineno, f"extra:{call[1]}"))
    return sorted(out, key=lambda u: (u.source, u.line, u.module))


def _require_call(node: ast.AST) -> tuple[str, str] | None:
    """(module, extra) of a ``require("module", "extra")`` call with literal arguments (the extra
    defaults to ``train``, as in :func:`toolgym.envs.deps.require`)."""
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    args = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    if name != "require" or not args or len(args) != len(node.args):
        return None
    extra = next((k.value.value for k in node.keywords if k.arg == "extra" and isinstance(k.value, ast.Constant)),
                 args[1] if len(args) > 1 else "train")
    return args[0], extra


def where_declared(distribution: str, groups: dict[str, set[str]]) -> list[str]:
    """The groups (``core``, extras) that list ``distribution``."""
    return [group for group, names in groups.items() if distribution in names]


def missing(graph: Graph, groups: dict[str, set[str]]) -> list[tuple[Use, str]]:
    """The uses whose distribution is not declared where they need it, each with the fix."""
    all_uses = uses(graph)
    out = []
    for use in all_uses:
        found = where_declared(use.distribution, groups)
        if use.needs == CORE:
            if CORE not in found:
                out.append((use, f"a top-level import of the env layer must be a core dependency: add "
                                 f"{use.distribution!r} to [project] dependencies in pyproject.toml (or import "
                                 "it where it is used, behind require(..., extra))"))
        elif use.needs.startswith("extra:"):
            extra = use.needs.removeprefix("extra:")
            if extra not in groups:
                out.append((use, f"require() names the extra {extra!r}, which pyproject.toml does not have "
                                 f"(extras: {', '.join(sorted(set(groups) - {CORE}))})"))
            elif not {CORE, extra} & set(found):
                out.append((use, f"require() names the extra {extra!r}, which does not list it: add "
                                 f"{use.distribution!r} to [project.optional-dependencies] {extra}"))
        elif not set(found) - TEST_EXTRAS:
            extra = _likely_extra(use, all_uses, groups)
            out.append((use, f"pyproject.toml declares it in no extra (another package may bring it today, and "
                             f"drop it tomorrow): add {use.distribution!r} to [project.optional-dependencies] {extra}"
                             + (" (dev holds the tests' tools; the package must not need it)" if found else "")))
    return out


def _likely_extra(use: Use, all_uses: list[Use], groups: dict[str, set[str]]) -> str:
    """The extra that the module's other imports come from most (the feature it belongs to; the
    first in pyproject.toml on a tie)."""
    extras = [g for u in all_uses if u.source == use.source and u is not use
              for g in where_declared(u.distribution, groups) if g not in TEST_EXTRAS | {CORE}]
    order = [g for g in groups if g in extras]
    return max(order, key=extras.count) if order else "<the extra of the feature that needs it>"


def report(graph: Graph, groups: dict[str, set[str]]) -> tuple[str, bool]:
    """The text ``python -m toolgym.devtools.dependencies`` prints, and whether every import is declared."""
    by_module: dict[str, set[str]] = {}
    for use in uses(graph):
        by_module.setdefault(use.module.split(".")[0], set()).add(use.distribution)
    lines = [f"{graph.package}: third-party imports and where pyproject.toml declares them"]
    for module, distributions in sorted(by_module.items(), key=lambda kv: kv[0].lower()):
        for distribution in sorted(distributions):
            found = where_declared(distribution, groups)
            lines.append(f"  {module:<22} {distribution:<22} {', '.join(found) or 'nowhere'}")
    problems = missing(graph, groups)
    lines.append("imports not declared where their use needs them: " + ("none" if not problems else str(len(problems))))
    lines += [f"  {graph.package}/{graph.modules[u.source].relative_to(graph.modules[graph.package].parent).as_posix()}"
              f":{u.line} ({u.source}) imports {u.module}: {fix}" for u, fix in problems]
    return "\n".join(lines), not problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m toolgym.devtools.dependencies",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1],
                        help="the package directory to read (default: this toolgym)")
    parser.add_argument("--pyproject", type=Path, default=None,
                        help="the pyproject.toml to check against (default: the one beside the package)")
    args = parser.parse_args(argv)
    pyproject = args.pyproject or args.root.resolve().parent / "pyproject.toml"
    if not pyproject.is_file():
        parser.error(f"no pyproject.toml at {pyproject}: run from a checkout, or give --pyproject PATH")
    text, ok = report(scan(args.root), declared(pyproject))
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
