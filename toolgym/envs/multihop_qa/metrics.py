"""Answer metrics with the official SQuAD / HotpotQA normalisation.

``normalize_answer`` lower-cases, removes punctuation, the articles a/an/the and extra white
space, exactly as ``hotpot_evaluate_v1.py`` and the SQuAD v1.1 script do. F1 follows each
dataset's official script (``rule=``, see ``answer_rule``): HotpotQA's (also 2Wiki's, and
FlashRAG's for the open-domain sets): when either side normalises to yes/no/noanswer the two must
match exactly, and two empty answers score 0; MuSiQue's (SQuAD 2.0's, via allennlp): no yes/no
rule, and an answer that is empty after normalisation scores 1 against an empty one, else 0.
Every metric takes the best score over the gold answer and its aliases.

>>> exact_match("The Eiffel Tower!", ["eiffel tower"])
1.0
>>> round(f1_score("Paris, France", ["Paris"]), 3)
0.667
>>> substring_match("It was Lyon, in 1871", ["lyon"])
1.0
>>> f1_score("no", ["No Doubt"]), round(f1_score("no", ["No Doubt"], rule="musique"), 3)
(0.0, 0.667)
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Iterable
from functools import partial

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)
_SPECIAL = ("yes", "no", "noanswer")


def normalize_answer(text: str) -> str:
    """Lower-case; drop punctuation, articles and extra white space (the official SQuAD rule)."""
    text = "".join(ch for ch in str(text).lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _em(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


#: F1 rules: the official script whose F1 each dataset follows.
RULES = ("hotpotqa", "musique")
_RULE_OF_DATASET = {"musique": "musique"}


def answer_rule(dataset: str | None) -> str:
    """The F1 rule of a dataset: ``"musique"`` for MuSiQue, ``"hotpotqa"`` for every other set."""
    return _RULE_OF_DATASET.get(str(dataset), "hotpotqa")


def _f1(prediction: str, gold: str, rule: str = "hotpotqa") -> float:
    pred, ref = normalize_answer(prediction), normalize_answer(gold)
    pred_tokens, ref_tokens = pred.split(), ref.split()
    if rule == "musique":  # evaluate_v1.0.py / metrics/answer.py
        if not pred_tokens or not ref_tokens:
            return float(pred_tokens == ref_tokens)
    elif (pred in _SPECIAL or ref in _SPECIAL) and pred != ref:
        return 0.0
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


def f1_score(prediction: str, answers: Iterable[str], *, rule: str = "hotpotqa") -> float:
    """Token F1 under a dataset's official rule (``"hotpotqa"`` or ``"musique"``), best over answers."""
    if rule not in RULES:
        raise ValueError(f"F1 rule must be one of {', '.join(RULES)}, got {rule!r}.")
    return best_over(partial(_f1, rule=rule), prediction, answers)


def substring_match(prediction: str, answers: Iterable[str]) -> float:
    """Substring EM (Search-R1's ``subem``): a gold answer occurs, as whole words, in the prediction."""
    return best_over(_subem, prediction, answers)


METRICS: dict[str, Callable[[str, Iterable[str]], float]] = {
    "em": exact_match,
    "f1": f1_score,
    "subem": substring_match,
}


def metrics_for(dataset: str | None) -> dict[str, Callable[[str, Iterable[str]], float]]:
    """``METRICS`` with F1 under ``dataset``'s official rule (``answer_rule``)."""
    rule = answer_rule(dataset)
    return {**METRICS, "f1": partial(f1_score, rule=rule)} if rule != "hotpotqa" else dict(METRICS)


def score_answer(prediction: str, answers: Iterable[str], *, dataset: str | None = None) -> dict[str, float]:
    """All three metrics at once, F1 under ``dataset``'s rule: ``{"em": ..., "f1": ..., "subem": ...}``."""
    answers = tuple(answers)
    return {name: fn(prediction, answers) for name, fn in metrics_for(dataset).items()}
