"""Answer metrics with the official SQuAD / HotpotQA normalisation.

``normalize_answer`` lower-cases, removes punctuation, the articles a/an/the and extra white
space, exactly as ``hotpot_evaluate_v1.py`` and the SQuAD v1.1 script do. F1 follows HotpotQA:
when either side normalises to yes/no/noanswer the two must match exactly. Every metric takes the
best score over the gold answer and its aliases (MuSiQue and 2WikiMultihopQA give aliases).

>>> exact_match("The Eiffel Tower!", ["eiffel tower"])
1.0
>>> round(f1_score("Paris, France", ["Paris"]), 3)
0.667
>>> substring_match("It was Lyon, in 1871", ["lyon"])
1.0
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Iterable

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)
_SPECIAL = ("yes", "no", "noanswer")


def normalize_answer(text: str) -> str:
    """Lower-case; drop punctuation, articles and extra white space (the official SQuAD rule)."""
    text = "".join(ch for ch in str(text).lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _em(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def _f1(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction), normalize_answer(gold)
    if (pred in _SPECIAL or ref in _SPECIAL) and pred != ref:
        return 0.0
    pred_tokens, ref_tokens = pred.split(), ref.split()
    common = Counter(pred_tokens) & Counter(ref_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred_tokens), overlap / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)


def _subem(prediction: str, gold: str) -> float:
    ref = normalize_answer(gold)
    return float(bool(ref) and f" {ref} " in f" {normalize_answer(prediction)} ")


def best_over(metric: Callable[[str, str], float], prediction: str, answers: Iterable[str]) -> float:
    """The best score of ``prediction`` against any accepted answer (0.0 when there are none)."""
    return max((metric(prediction, gold) for gold in answers), default=0.0)


def exact_match(prediction: str, answers: Iterable[str]) -> float:
    return best_over(_em, prediction, answers)


def f1_score(prediction: str, answers: Iterable[str]) -> float:
    return best_over(_f1, prediction, answers)


def substring_match(prediction: str, answers: Iterable[str]) -> float:
    """Substring EM (Search-R1's ``subem``): a gold answer occurs, as whole words, in the prediction."""
    return best_over(_subem, prediction, answers)


METRICS: dict[str, Callable[[str, Iterable[str]], float]] = {
    "em": exact_match,
    "f1": f1_score,
    "subem": substring_match,
}


def score_answer(prediction: str, answers: Iterable[str]) -> dict[str, float]:
    """All three metrics at once: ``{"em": ..., "f1": ..., "subem": ...}``."""
    answers = tuple(answers)
    return {name: fn(prediction, answers) for name, fn in METRICS.items()}
