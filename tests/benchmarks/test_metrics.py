"""Answer metrics (the env's official ones, as the benchmark reads them), evidence recall, intervals."""

from __future__ import annotations

import numpy as np
import pytest

from toolgym.benchmarks.metrics import (
    bootstrap_ci,
    evidence_recall,
    paired_bootstrap_ci,
    per_turn,
    summarize,
    unpaired_bootstrap_ci,
)
from toolgym.envs.multihop_qa.metrics import (
    exact_match,
    f1_score,
    normalize_answer,
    score_answer,
    substring_match,
)


@pytest.mark.parametrize("text, normal", [
    ("The Eiffel Tower", "eiffel tower"),           # article, case
    ("an apple a day", "apple day"),                # every article
    ("U.S.A.", "usa"),                              # punctuation removed, not spaced
    ("  Rock   and  roll!! ", "rock and roll"),     # white space, punctuation
    ("Théâtre du Châtelet", "théâtre du châtelet"),  # unicode letters kept
    ("1,000", "1000"),                              # digit grouping is punctuation
    ("Theatre", "theatre"),                         # 'the' inside a word is not an article
])
def test_normalize_answer_hand_checked(text, normal):
    assert normalize_answer(text) == normal


@pytest.mark.parametrize("prediction, answers, em, f1, subem", [
    ("the Eiffel Tower", ["Eiffel Tower"], 1.0, 1.0, 1.0),
    ("Paris, France", ["Paris"], 0.0, 2 / 3, 1.0),
    ("yes", ["no"], 0.0, 0.0, 0.0),
    ("yes it is", ["yes"], 0.0, 0.0, 1.0),          # yes/no must match exactly for F1 (HotpotQA rule)
    ("no", ["no"], 1.0, 1.0, 1.0),
    ("1,000", ["1000"], 1.0, 1.0, 1.0),
    ("1871", ["1870"], 0.0, 0.0, 0.0),              # numbers are tokens, no partial credit
    ("Lyon", ["Lyons"], 0.0, 0.0, 0.0),             # substring is whole words, not characters
    ("José Martí", ["jose marti"], 0.0, 0.0, 0.0),  # accents are not folded by the official rule
    ("NYC", ["New York City", "NYC"], 1.0, 1.0, 1.0),  # aliases: best over all gold answers
    ("", ["Paris"], 0.0, 0.0, 0.0),
])
def test_answer_metrics_hand_checked(prediction, answers, em, f1, subem):
    assert exact_match(prediction, answers) == em
    assert f1_score(prediction, answers) == pytest.approx(f1)
    assert substring_match(prediction, answers) == subem
    assert score_answer(prediction, answers) == pytest.approx({"em": em, "f1": f1, "subem": subem})


def test_evidence_recall_counts_distinct_gold_titles():
    assert evidence_recall(["Ed Wood", "the ed wood"], ["Ed Wood", "Scott Derrickson"]) == 0.5
    assert evidence_recall(["Ed Wood", "Scott Derrickson", "Other"], ["Ed Wood", "Scott Derrickson"]) == 1.0
    assert evidence_recall(None, ["A"]) == 0.0
    assert evidence_recall(["A"], ()) is None  # no gold evidence: not counted at all


def test_bootstrap_intervals_cover_the_mean_and_are_seeded():
    x = np.random.default_rng(1).random(200)
    low, high = bootstrap_ci(x, seed=3)
    assert low < x.mean() < high
    assert (low, high) == bootstrap_ci(x, seed=3)
    assert bootstrap_ci(x, seed=4) != (low, high)
    assert high - low < 0.15
    assert bootstrap_ci([0.0, 0.0, 0.0]) == (0.0, 0.0)


def test_paired_interval_is_tighter_than_unpaired_for_correlated_samples():
    rng = np.random.default_rng(0)
    a = rng.random(300)
    b = a + 0.05
    paired, unpaired = paired_bootstrap_ci(a, b), unpaired_bootstrap_ci(a, b)
    assert paired == pytest.approx((0.05, 0.05))
    assert unpaired[0] < 0.05 < unpaired[1]
    with pytest.raises(ValueError, match="same length"):
        paired_bootstrap_ci([1.0], [1.0, 2.0])


def _rec(index, em, turns, status="terminated", recall=None):
    return {"agent": "a", "env": "e", "index": index, "em": em, "f1": em, "return": em, "turns": turns,
            "tool_calls": turns - 1, "status": status, "turn_recall": recall or []}


def test_summarize_counts_missing_scores_as_zero_and_breaks_down_turns():
    records = [_rec(0, 1.0, 2, recall=[0.5, 1.0]), _rec(1, 0.0, 3, recall=[0.0, 0.5, 0.5]),
               {**_rec(2, None, 1, status="timeout"), "f1": None}]
    cell = summarize(records)
    assert cell["n"] == 3 and cell["primary"] == "em"
    assert cell["metrics"]["em"]["mean"] == pytest.approx(1 / 3)
    assert cell["status"] == {"terminated": 2, "timeout": 1}
    turns = per_turn(records)
    assert [row["ended"] for row in turns] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert turns[1]["score_of_ending"] == 1.0  # the episode that ended at turn 2 was right
    assert turns[2]["evidence_recall"] == pytest.approx(0.75)  # 1.0 carried forward, 0.5


def test_summarize_without_answer_metrics_uses_success_then_return():
    records = [{"agent": "a", "env": "e", "index": i, "success": float(i % 2), "return": 0.5, "turns": 1}
               for i in range(4)]
    cell = summarize(records)
    assert cell["primary"] == "success" and "em" not in cell["metrics"]
    assert cell["metrics"]["success"]["mean"] == 0.5
