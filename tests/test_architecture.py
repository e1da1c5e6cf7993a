"""The package's layers, read from its source with ``toolgym.devtools.imports``: imports point one
way (envs <- generation <- trainers | benchmarks <- integrations <- cli), form no cycle, never reach
into another layer's private modules, and sit at the top of their modules unless an optional extra
or start-up time keeps them inside a function."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from toolgym.devtools import imports

PACKAGE = Path(imports.__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "trl", "peft", "vllm", "accelerate")


@pytest.fixture(scope="module")
def graph() -> imports.Graph:
    return imports.scan(PACKAGE)


def _lines(found) -> str:
    return "\n".join(str(f) for f in found)


def test_no_cycles_between_modules(graph):
    found = imports.cycles(graph)
    assert found == [], "import cycles:\n" + _lines(" -> ".join(c) for c in found)


def test_layers_import_only_their_own_and_lower_layers(graph):
    found = imports.layer_violations(graph)
    assert found == [], "layer violations:\n" + _lines(f"{i.source}:{i.line} -> {i.target}: {why}" for i, why in found)


def test_no_module_imports_another_layers_private_module_or_name(graph):
    found = imports.private_imports(graph)
    assert found == [], _lines(f"{i.source}:{i.line} -> {i.target} {i.names}" for i in found)


def test_imports_inside_functions_are_only_of_optional_or_slow_modules(graph):
    found = imports.lazy_not_allowed(graph)
    assert found == [], "move these to the top of their module:\n" + _lines(
        f"{i.source}:{i.line} imports {i.target}" for i in found)


def test_the_graph_covers_every_layer_and_knows_the_heavy_imports(graph):
    """A scan that read nothing would pass the tests above: check that it read the package."""
    layers = {imports.layer_of(m) for m in graph.modules}
    assert {"envs", "generation", "trainers", "benchmarks", "integrations", "cli"} <= layers
    edges = {(imports.layer_of(i.source), imports.layer_of(i.target)) for i in graph.internal}
    assert {("generation", "envs"), ("benchmarks", "generation"), ("trainers", "generation")} <= edges
    lazy = {i.target.split(".")[0] for i in imports.lazy_imports(graph)}
    assert {"torch", "transformers", "matplotlib", "bm25s"} <= lazy


def test_the_env_layer_never_imports_torch_transformers_or_trl(graph):
    found = [i for i in graph.imports
             if imports.layer_of(i.source) == "envs" and i.target.split(".")[0] in HEAVY]
    assert found == [], _lines(f"{i.source}:{i.line} imports {i.target}" for i in found)


def test_importing_envs_generation_benchmarks_and_the_cli_loads_no_heavy_module():
    code = (
        "import pkgutil, importlib, sys\n"
        "import toolgym.envs, toolgym.generation, toolgym.benchmarks, toolgym.cli\n"
        "for m in pkgutil.walk_packages(toolgym.envs.__path__, 'toolgym.envs.'):\n"
        "    importlib.import_module(m.name)\n"
        "toolgym.cli.build_parser()\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


def test_the_command_prints_the_graph_and_finds_no_problem(capsys):
    assert imports.main([]) == 0
    text = capsys.readouterr().out
    for line in ("cycles between modules: none", "layer violations: none",
                 "imports of another layer's private module or name: none",
                 "others (move them to the top of the module): none"):
        assert line in text
    assert "benchmarks" in text and "-> envs" in text


def test_the_readme_shows_the_command_s_current_output(capsys):
    assert imports.main([]) == 0
    text = capsys.readouterr().out
    readme = (PACKAGE.parent / "README.md").read_text()
    shown = readme.split("$ python -m toolgym.devtools.imports\n", 1)[1].split("```", 1)[0]
    assert shown == text, "README's Architecture section is out of date: paste `python -m toolgym.devtools.imports`"
