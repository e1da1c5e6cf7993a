"""``require``: optional extras imported when used, with the extra to install named."""

from __future__ import annotations

import sys

import pytest

from toolgym.envs.deps import require


def test_an_installed_module_is_returned():
    assert require("json", "bench") is sys.modules["json"]


def test_a_missing_module_names_the_extra_and_who_needs_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # as on an install without the dense extra
    with pytest.raises(ImportError, match=r"faiss is needed by the dense backend but is not installed .*"
                                          r"pip install 'toolgym\[dense\]'"):
        require("faiss", "dense", user="the dense backend")


def test_a_missing_parent_package_counts_as_missing():
    with pytest.raises(ImportError, match=r"toolgym_no_such_package.v1 is needed here but is not installed .*"
                                          r"toolgym\[verifiers\]"):
        require("toolgym_no_such_package.v1", "verifiers")


def test_an_installed_but_broken_module_keeps_its_own_error(tmp_path, monkeypatch):
    (tmp_path / "toolgym_broken_extra.py").write_text("import toolgym_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError, match=r"could not be imported: No module named 'toolgym_no_such_dependency'.*"
                                          r"--force-reinstall 'toolgym\[train\]'"):
        require("toolgym_broken_extra")
