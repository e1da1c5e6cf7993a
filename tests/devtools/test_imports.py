"""``toolgym.devtools.imports`` on a small made-up package: each rule it checks can fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.devtools.made_up import write_package
from toolgym.devtools import imports


@pytest.fixture
def clean(tmp_path) -> Path:
    """A package that keeps every rule: toolgym/{envs, generation, benchmarks, trainers}."""
    return write_package(tmp_path / "toolgym", {
        "__init__.py": "from toolgym.envs import core\n",
        "envs/__init__.py": "from toolgym.envs.core import Env\n",
        "envs/core.py": "import json\nclass Env: pass\n",
        "envs/_helpers.py": "X = 1\n",
        "envs/retrieval/__init__.py": "from toolgym.envs.retrieval.bm25 import BM25\n",
        "envs/retrieval/bm25.py": "from toolgym.envs import core\nfrom . import base\n"
                                  "class BM25:\n    def build(self):\n        import bm25s\n",
        "envs/retrieval/base.py": "from toolgym.envs._helpers import X\n",
        "envs/qa/__init__.py": "",
        "envs/qa/env.py": "from toolgym.envs.retrieval import bm25\nfrom toolgym.envs.core import Env\n",
        "generation/__init__.py": "from toolgym.envs import Env\n",
        "generation/backend.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                 "    from toolgym.benchmarks import runner\n"
                                 "def load():\n    import torch\n",
        "benchmarks/__init__.py": "",
        "benchmarks/runner.py": "from toolgym.generation import backend\nfrom toolgym.envs.qa.env import Env\n",
        "trainers/__init__.py": "",
        "trainers/grpo.py": "from toolgym.generation.backend import load\n",
    })


def test_a_clean_package_passes_every_rule(clean, capsys):
    graph = imports.scan(clean)
    assert imports.cycles(graph) == []
    assert imports.private_imports(graph) == []
    assert imports.lazy_not_allowed(graph) == []
    # a TYPE_CHECKING import is no runtime edge, but the layer rule still sees it
    assert [(i.source, i.target) for i, _ in imports.layer_violations(graph)] == [
        ("toolgym.generation.backend", "toolgym.benchmarks.runner")]
    typing_edge = next(i for i in graph.imports if i.typing)
    assert typing_edge.target not in graph.edges()["toolgym.generation.backend"]
    # relative imports resolve; `from pkg import module` is the submodule
    assert "toolgym.envs.retrieval.base" in graph.edges()["toolgym.envs.retrieval.bm25"]
    assert "toolgym.envs.core" in graph.edges()["toolgym.envs.retrieval.bm25"]
    assert sorted(i.target for i in imports.lazy_imports(graph)) == ["bm25s", "torch"]


def test_a_cycle_is_found_with_its_path(clean):
    write_package(clean, {"benchmarks/reports.py": "def f():\n    from toolgym.benchmarks import plots\n",
                   "benchmarks/plots.py": "from toolgym.benchmarks.reports import f\n"})
    found = imports.cycles(imports.scan(clean))
    assert found == [["toolgym.benchmarks.plots", "toolgym.benchmarks.reports", "toolgym.benchmarks.plots"]]


def test_layer_violations_name_the_rule(clean):
    write_package(clean, {
        "envs/bad.py": "from toolgym.generation import backend\n",          # envs -> a higher layer
        "trainers/bench.py": "from toolgym.benchmarks import runner\n",     # one rank, two layers
        "envs/retrieval/cli.py": "from toolgym.envs.qa import env\n",       # retrieval -> a task
        "envs/math/__init__.py": "",
        "envs/math/problems.py": "from toolgym.envs.qa.env import Env\n",   # task -> another task
    })
    found = {(i.source, i.target): why for i, why in imports.layer_violations(imports.scan(clean))}
    assert "must not import generation" in found["toolgym.envs.bad", "toolgym.generation.backend"]
    assert "must not import each other" in found["toolgym.trainers.bench", "toolgym.benchmarks.runner"]
    assert "the task family qa" in found["toolgym.envs.retrieval.cli", "toolgym.envs.qa.env"]
    assert "math and qa" in found["toolgym.envs.math.problems", "toolgym.envs.qa.env"]


def test_private_modules_and_names_of_another_layer_are_found(clean):
    write_package(clean, {"generation/_deps.py": "def require(): pass\n",
                   "benchmarks/models.py": "from toolgym.generation._deps import require\n"
                                           "from toolgym.envs.core import _hidden\n"})
    found = {(i.target, i.names) for i in imports.private_imports(imports.scan(clean))}
    assert found == {("toolgym.generation._deps", ("require",)), ("toolgym.envs.core", ("_hidden",))}


def test_imports_inside_functions_must_be_optional_or_slow(clean):
    lazy_yaml = "def parse():\n    from toolgym.envs import yaml_values\n"
    write_package(clean, {"benchmarks/cli.py": "def run():\n    import shutil\n    from toolgym.benchmarks import runner\n"
                                        "    import matplotlib.pyplot\n",
                   "trainers/demo.py": "def run():\n    import copy\n",
                   "envs/yaml_values.py": "import yaml\n",
                   "envs/cli.py": lazy_yaml, "envs/wrappers.py": lazy_yaml})
    found = sorted((i.source, i.target) for i in imports.lazy_not_allowed(imports.scan(clean)))
    # every layer is held to the rule; a slow module of the package may wait in a cli module only
    assert found == [("toolgym.benchmarks.cli", "shutil"), ("toolgym.benchmarks.cli", "toolgym.benchmarks.runner"),
                     ("toolgym.envs.wrappers", "toolgym.envs.yaml_values"), ("toolgym.trainers.demo", "copy")]


def test_the_command_exits_1_and_lists_what_is_wrong(clean, capsys):
    write_package(clean, {"envs/bad.py": "def f():\n    import shutil\n"})
    assert imports.main(["--root", str(clean)]) == 1
    out = capsys.readouterr().out
    assert "toolgym/envs/bad.py:2: shutil" in out and "layer violations: 1" in out
    assert imports.main(["--root", str(clean), "--dot"]) == 0
    assert '"benchmarks" -> "generation"' in capsys.readouterr().out


def test_a_module_outside_the_layers_is_an_error_naming_the_fix(clean):
    write_package(clean, {"extras/thing.py": "import json\n"})
    with pytest.raises(ValueError, match="'extras' is not one of .* add it to RANKS"):
        imports.layer_violations(imports.scan(clean))
