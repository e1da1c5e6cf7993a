"""``toolgym.devtools.dependencies``: each third-party import is declared in pyproject.toml where its use
needs it, on toolgym itself and on a small made-up package where each rule fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.devtools.made_up import write_package
from toolgym.devtools import dependencies, imports
from toolgym.devtools.dependencies import declared, distribution_of, missing, normalize

PACKAGE = Path(dependencies.__file__).resolve().parents[1]
PYPROJECT = """
[project]
name = "toolgym"
dependencies = ["gymnasium>=1.4,<2", "numpy>=1.26", "PyYAML>=6"]
[project.optional-dependencies]
train = ["torch>=2.6,<2.14", "transformers>=5.0; python_version >= '3.11'"]
trl = ["torch", "tokenizers"]
dense = ["faiss-cpu>=1.8"]
bench = ["ujson>=5"]
dev = ["pytest>=8", "hypothesis"]
"""


def test_every_third_party_import_of_toolgym_is_declared_where_its_use_needs_it():
    problems = missing(imports.scan(PACKAGE), declared(PACKAGE.parent / "pyproject.toml"))
    assert problems == [], "\n".join(f"{u.source}:{u.line} imports {u.module}: {fix}" for u, fix in problems)


def test_pyproject_groups_and_import_names_map_to_distributions(tmp_path):
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    groups = declared(tmp_path / "pyproject.toml")
    assert groups["core"] == {"gymnasium", "numpy", "pyyaml"}
    assert groups["train"] == {"torch", "transformers"}  # versions and markers dropped
    assert normalize("Sentence_Transformers") == "sentence-transformers"
    assert [distribution_of(m) for m in ("yaml", "Stemmer", "faiss", "jnius_config", "sklearn", "torch.nn")] == [
        "pyyaml", "pystemmer", "faiss-cpu", "pyjnius", "scikit-learn", "torch"]


@pytest.fixture
def package(tmp_path) -> Path:
    """A package whose every import is declared right; the tests below break one rule each."""
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    return write_package(tmp_path / "toolgym", {
        "__init__.py": "import gymnasium\n",
        "envs/__init__.py": "",
        "envs/core.py": "import json\nimport numpy as np\nimport yaml\nfrom typing import TYPE_CHECKING\n"
                        "if TYPE_CHECKING:\n    import pandas\n",
        "envs/dense.py": "try:\n    import ujson as json\nexcept ImportError:\n    import json\n"
                         "def build():\n    import faiss\n",
        "envs/deps.py": "def require(module, extra='train'):\n    pass\n",
        "trainers/__init__.py": "",
        "trainers/grpo.py": "import torch\nfrom toolgym.envs.deps import require\n"
                            "tokenizers = require('tokenizers', 'trl')\n",
    })


def _problems(package: Path) -> list[tuple[str, str, str]]:
    graph = imports.scan(package)
    return [(u.source, u.module, fix) for u, fix in missing(graph, declared(package.parent / "pyproject.toml"))]


def test_a_package_that_declares_what_it_imports_passes(package):
    graph = imports.scan(package)
    assert _problems(package) == []
    found = {(u.module, u.needs) for u in dependencies.uses(graph)}
    # top of envs: core; guarded or inside a function: any group; require: its extra; TYPE_CHECKING: none
    assert found == {("gymnasium", "core"), ("numpy", "core"), ("yaml", "core"), ("ujson", "any"),
                     ("faiss", "any"), ("torch", "any"), ("tokenizers", "extra:trl")}


def test_a_top_level_import_of_the_env_layer_must_be_a_core_dependency(package):
    (package / "envs" / "core.py").write_text("import torch\n")
    [(source, module, fix)] = _problems(package)
    assert (source, module) == ("toolgym.envs.core", "torch")
    assert "add 'torch' to [project] dependencies" in fix and "require(" in fix


def test_an_optional_import_must_be_in_some_extra_and_the_message_names_the_likely_one(package):
    (package / "envs" / "dense.py").write_text(
        "def build():\n    import faiss\n    import sentence_transformers\n")
    [(source, module, fix)] = _problems(package)
    assert (source, module) == ("toolgym.envs.dense", "sentence_transformers")
    # the extra of the module's other imports (faiss: dense)
    assert "add 'sentence-transformers' to [project.optional-dependencies] dense" in fix


def test_an_import_only_the_dev_extra_brings_is_not_enough(package):
    (package / "trainers" / "checks.py").write_text("def run():\n    import hypothesis\n")
    [(_, module, fix)] = _problems(package)
    assert module == "hypothesis" and "dev holds the tests' tools" in fix


def test_a_require_call_must_name_an_extra_that_lists_the_module(package):
    (package / "trainers" / "grpo.py").write_text(
        "from toolgym.envs.deps import require\ntok = require('tokenizers', 'train')\n"
        "vllm = require('torch', 'gpu')\nx = require('transformers')\n")
    problems = _problems(package)
    assert [(m, fix.split(",")[0]) for _, m, fix in problems] == [
        ("tokenizers", "require() names the extra 'train'"), ("torch", "require() names the extra 'gpu'")]
    assert "add 'tokenizers' to [project.optional-dependencies] train" in problems[0][2]
    assert "which pyproject.toml does not have" in problems[1][2]


def test_the_command_prints_each_import_and_exits_1_on_a_missing_one(package, capsys):
    assert dependencies.main(["--root", str(package)]) == 0
    out = capsys.readouterr().out
    assert "faiss" in out and "faiss-cpu" in out and "dense" in out and out.rstrip().endswith("none")
    (package / "envs" / "core.py").write_text("import requests\n")
    assert dependencies.main(["--root", str(package)]) == 1
    out = capsys.readouterr().out
    assert "toolgym/envs/core.py:1 (toolgym.envs.core) imports requests:" in out and "nowhere" in out
    with pytest.raises(SystemExit):
        dependencies.main(["--root", str(package), "--pyproject", str(package / "missing.toml")])
