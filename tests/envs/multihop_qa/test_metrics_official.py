"""Answer metrics per dataset, case by case, against the official evaluation functions themselves
(``shared/eval``: HotpotQA's, 2WikiMultihopQA's and MuSiQue's scripts, imported unmodified)."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from toolgym.envs.multihop_qa.metrics import exact_match, f1_score, score_answer

# (prediction, gold answers): edge cases of the normalisation, the yes/no rule, empty answers, aliases.
CASES = [
    ("no", ["No Doubt"]),
    ("a", ["a"]),
    ("", [""]),
    ("the", ["an"]),
    ("", ["Paris"]),
    ("Paris", [""]),
    ("yes", ["yes"]),
    ("yes", ["no"]),
    ("yes it is", ["yes"]),
    ("noanswer", ["no answer"]),
    ("Paris, France", ["Paris"]),
    ("The Eiffel Tower!", ["eiffel tower"]),
    ("1,000", ["1000"]),
    ("Ed Wood", ["Edward Davis Wood Jr."]),
    ("café", ["Café"]),
    ("a b a", ["a a b c"]),
    ("U.S.", ["US"]),
    ("Puccini", ["Giacomo Puccini", "Puccini"]),
    ("the late 1990s", ["1990s", "late 1990s", "no"]),
    ("No", ["no", "No Doubt"]),
]


def _module(name: str, path, monkeypatch):
    """Import an official script unmodified; HotpotQA's and 2Wiki's read JSON with ujson, which
    the stdlib json stands in for when it is not installed (only ``load`` is used)."""
    if importlib.util.find_spec("ujson") is None:
        monkeypatch.setitem(sys.modules, "ujson", json)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def musique_answer(official_eval, monkeypatch):
    """MuSiQue's ``metrics/answer.py`` (a package named ``metrics`` beside its script)."""
    monkeypatch.syspath_prepend(str(official_eval / "musique"))
    for name in [n for n in sys.modules if n == "metrics" or n.startswith("metrics.")]:
        monkeypatch.delitem(sys.modules, name)
    module = importlib.import_module("metrics.answer")
    yield module
    for name in [n for n in sys.modules if n == "metrics" or n.startswith("metrics.")]:
        del sys.modules[name]


@pytest.mark.parametrize("script, dataset", [
    ("hotpotqa/hotpot_evaluate_v1.py", "hotpotqa"),
    ("2wikimultihop/2wikimultihop_evaluate.py", "2wikimultihopqa"),
])
@pytest.mark.parametrize("prediction, answers", CASES)
def test_hotpot_style_sets_match_their_script(official_eval, monkeypatch, script, dataset, prediction, answers):
    official = _module(f"official_{dataset}", official_eval / script, monkeypatch)
    # These scripts score one gold answer: compare with the best over the answers, as toolgym does.
    want_em = max(float(official.exact_match_score(prediction, gold)) for gold in answers)
    want_f1 = max(official.f1_score(prediction, gold)[0] for gold in answers)
    scores = score_answer(prediction, answers, dataset=dataset)
    assert scores["em"] == want_em and scores["f1"] == pytest.approx(want_f1, abs=1e-12)


@pytest.mark.parametrize("prediction, answers", CASES)
def test_musique_matches_its_script(musique_answer, prediction, answers):
    want_em = musique_answer.metric_max_over_ground_truths(musique_answer.compute_exact, prediction, answers)
    want_f1 = musique_answer.metric_max_over_ground_truths(musique_answer.compute_f1, prediction, answers)
    scores = score_answer(prediction, answers, dataset="musique")
    assert scores["em"] == want_em and scores["f1"] == pytest.approx(want_f1, abs=1e-12)


def test_the_rules_differ_where_the_scripts_differ():
    """The cases the two families of scripts disagree on, stated without the scripts."""
    assert f1_score("no", ["No Doubt"]) == 0.0 and f1_score("no", ["No Doubt"], rule="musique") == pytest.approx(2 / 3)
    assert f1_score("a", ["a"]) == 0.0 and f1_score("a", ["a"], rule="musique") == 1.0  # empty after normalising
    assert exact_match("a", ["a"]) == 1.0
    with pytest.raises(ValueError, match="F1 rule must be one of hotpotqa, musique, got 'squad'"):
        f1_score("a", ["a"], rule="squad")
