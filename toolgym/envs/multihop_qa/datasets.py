"""Real QA data, normalised to ``QAExample``: HotpotQA, 2WikiMultihopQA and MuSiQue with their
gold evidence, and question/answer-only sets (NQ, TriviaQA, PopQA, Bamboogle, or any set of
questions with answers) that are searched over an external corpus.

Two routes, one result:

* from the Hugging Face hub (the default): ``load_examples("hotpotqa", "validation")`` calls
  ``datasets.load_dataset`` with the ids named below (needs ``pip install datasets`` and network);
* from local files in each dataset's official format: ``load_examples("musique",
  data_files="musique_ans_v1.0_dev.jsonl")``. These are read with plain ``json``, streaming record
  by record (:mod:`toolgym.envs.records`), so ``limit=`` stops early even on the 500 MB training
  files and the env layer never imports ``datasets``.

Both hub layouts (``context`` as ``{"title": [...], "sentences": [[...]]}``) and official layouts
(``context`` as ``[[title, [sentences]]]``) are accepted for every dataset. A malformed file raises
``DatasetFormatError`` naming the file, the record (index and id) and the field.

Question/answer-only records (no gold evidence) are read in three layouts, whatever the dataset
name: FlashRAG's JSONL ``{"id", "question", "golden_answers", "metadata"}``, Search-R1's parquet
(``prompt``, ``reward_model.ground_truth.target``, ``data_source``) and plain JSON(L) with a
``question`` and an ``answer`` or a list of ``answers`` (``id``, ``_id`` or ``idx``). A HotpotQA,
2Wiki or MuSiQue file whose first record has one of these layouts (FlashRAG's copies) is read as
QA-only too; a file is one layout or the other, never a mix.
From the hub, the four open-domain sets load from FlashRAG's copies (``RUC-NLPIR/FlashRAG_datasets``).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from toolgym.envs.errors import did_you_mean, unknown_name_error
from toolgym.envs.multihop_qa.example import QAExample
from toolgym.envs.records import (
    DatasetFormatError,
    DatasetLoadError,
    PathArg,
    check_data_files,  # noqa: F401 - re-exported: the original home of this name
    load_from_hub,
    preview,
    read_records,
)
from toolgym.envs.retrieval.base import Passage

__all__ = [
    "DATASETS",
    "FLASHRAG_HUB_ID",
    "QA_ONLY_DATASETS",
    "HOTPOTQA_HUB_CONFIG",
    "HOTPOTQA_HUB_ID",
    "MUSIQUE_HUB_ID",
    "SPLITS",
    "TWOWIKI_HUB_ID",
    "DatasetFormatError",
    "DatasetLoadError",
    "canonical_dataset",
    "canonical_split",
    "load_examples",
    "load_from_hub",
    "read_records",
]

# Hub ids. HotpotQA is the official repository; 2WikiMultihopQA and MuSiQue have no official hub
# copy, so these are the widely used public mirrors of the official files (parquet in the
# HotpotQA layout for 2Wiki, the official JSON lines for MuSiQue). Neither needs remote code.
HOTPOTQA_HUB_ID = "hotpotqa/hotpot_qa"
HOTPOTQA_HUB_CONFIG = "distractor"
TWOWIKI_HUB_ID = "framolfese/2WikiMultihopQA"
MUSIQUE_HUB_ID = "dgslibisey/MuSiQue"
# FlashRAG's copies of the open-domain sets Search-R1, ReSearch and R1-Searcher evaluate on:
# JSON lines {id, question, golden_answers, metadata}; config = the set's folder name, and the
# validation split is called "dev" there.
FLASHRAG_HUB_ID = "RUC-NLPIR/FlashRAG_datasets"

SPLITS = ("train", "validation", "test")
_SPLIT_ALIASES = {"dev": "validation", "val": "validation", "valid": "validation"}


@dataclass(frozen=True)
class _Where:
    """Where a record came from, for error messages: file, position in it, the record's id."""

    source: str
    index: int
    id: str | None = None

    def __str__(self) -> str:
        rid = f" (id {self.id!r})" if self.id is not None else ""
        return f"{self.source}: record {self.index}{rid}"


@dataclass(frozen=True)
class DatasetSpec:
    """How to fetch one dataset from the hub and how to turn its records into ``QAExample``."""

    name: str
    display: str
    hub_id: str | None
    hub_config: str | None
    hub_splits: tuple[str, ...]
    official: str  # where the official files are, for users without hub access
    required: tuple[str, ...]
    parse: Callable[[Mapping[str, Any], _Where], QAExample | None]
    hub_split_names: Mapping[str, str] | None = None  # our split name -> the hub's ("validation" -> "dev")


# --------------------------------------------------------------------------- field access


def _fail(where: _Where, field: str, problem: str, spec_name: str | None = None) -> DatasetFormatError:
    hint = f" Is this really a {spec_name} file?" if spec_name else ""
    return DatasetFormatError(f"{where}: field {field!r} {problem}.{hint}")


def _get(record: Mapping[str, Any], field: str, where: _Where, kind: type | tuple[type, ...]) -> Any:
    if field not in record:
        raise DatasetFormatError(
            f"{where}: missing field {field!r} (fields present: {', '.join(sorted(record)) or 'none'})."
        )
    value = record[field]
    if not isinstance(value, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise _fail(where, field, f"should be {names}, got {type(value).__name__} {preview(value)}")
    return value


def _record_id(record: Mapping[str, Any], *fields: str) -> str | None:
    for field in fields:
        value = record.get(field)
        if isinstance(value, str | int):
            return str(value)
    return None


def _pairs(value: Any, where: _Where, field: str, keys: tuple[str, str]) -> list[tuple[Any, Any]]:
    """Official ``[[a, b], ...]`` or the hub's column form ``{keys[0]: [...], keys[1]: [...]}``."""
    if isinstance(value, Mapping):
        missing = [k for k in keys if k not in value]
        if missing:
            raise _fail(where, field, f"is a mapping without {missing[0]!r} (expected keys {list(keys)})")
        first, second = value[keys[0]], value[keys[1]]
        if not isinstance(first, list) or not isinstance(second, list) or len(first) != len(second):
            raise _fail(where, field, f"should hold two lists of equal length under {list(keys)}")
        return list(zip(first, second, strict=True))
    if not isinstance(value, list):
        raise _fail(where, field, f"should be a list of [{keys[0]}, {keys[1]}] pairs, got {type(value).__name__}")
    pairs = []
    for i, item in enumerate(value):
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise _fail(where, f"{field}[{i}]", f"should be a [{keys[0]}, {keys[1]}] pair, got {preview(item)}")
        pairs.append((item[0], item[1]))
    return pairs


def _paragraphs_from_sentences(ex_id: str, context: Any, where: _Where) -> tuple[tuple[Passage, ...], list[int]]:
    """The paragraphs, and how many sentences each has (the official ``[title, sentence]`` indices)."""
    passages, counts = [], []
    for i, (title, sentences) in enumerate(_pairs(context, where, "context", ("title", "sentences"))):
        if not isinstance(title, str):
            raise _fail(where, f"context[{i}]", f"title should be a string, got {preview(title)}")
        if not isinstance(sentences, list) or not all(isinstance(s, str) for s in sentences):
            raise _fail(where, f"context[{i}]", f"sentences should be a list of strings, got {preview(sentences)}")
        # HotpotQA sentences keep their leading space, 2Wiki's do not: strip, then join with one.
        text = " ".join(s.strip() for s in sentences if s.strip())
        passages.append(Passage(id=f"{ex_id}-{i}", title=title, text=text))
        counts.append(len(sentences))
    return tuple(passages), counts


def _supporting_facts(record: Mapping[str, Any], where: _Where) -> tuple[tuple[str, int], ...]:
    facts = []
    raw = _get(record, "supporting_facts", where, (list, dict))
    for i, (title, sent_id) in enumerate(_pairs(raw, where, "supporting_facts", ("title", "sent_id"))):
        if not isinstance(title, str) or isinstance(sent_id, bool) or not isinstance(sent_id, int):
            raise _fail(where, f"supporting_facts[{i}]", f"should be [title, sentence index], got {preview([title, sent_id])}")
        facts.append((title, sent_id))
    if not facts:
        raise _fail(where, "supporting_facts", "is empty: no gold evidence for this question")
    return tuple(facts)


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _aliases(record: Mapping[str, Any], answer: str, where: _Where, *fields: str) -> tuple[str, ...]:
    found: list[str] = []
    for field in fields:
        value = record.get(field)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
            raise _fail(where, field, f"should be a list of strings, got {preview(value)}")
        found.extend(value)
    return tuple(a for a in _unique(found) if a != answer)


# --------------------------------------------------------------------------- the three parsers


def _parse_hotpot_like(record: Mapping[str, Any], where: _Where, *, with_evidences: bool) -> QAExample:
    ex_id = str(_get(record, "_id" if "_id" in record else "id", where, (str, int)))
    question = _get(record, "question", where, str)
    answer = _get(record, "answer", where, str)
    facts = _supporting_facts(record, where)
    context, n_sentences = _paragraphs_from_sentences(ex_id, _get(record, "context", where, (list, dict)), where)
    supporting = _unique(title for title, _ in facts)  # hop order: order of first appearance
    meta: dict[str, Any] = {"n_sentences": n_sentences}
    if isinstance(record.get("level"), str):
        meta["level"] = record["level"]
    if with_evidences:
        evidences = record.get("evidences")
        if isinstance(evidences, list):
            meta["evidences"] = [list(e) if isinstance(e, list | tuple) else e for e in evidences]
        elif isinstance(evidences, Mapping):  # a hub column form {fact: [...], relation: [...], entity: [...]}
            meta["evidences"] = [list(t) for t in zip(*evidences.values(), strict=False)]
        for key in ("entity_ids", "answer_id"):
            if isinstance(record.get(key), str):
                meta[key] = record[key]
    return QAExample(
        id=ex_id,
        question=question,
        answer=answer,
        aliases=_aliases(record, answer, where, "answer_aliases", "aliases"),
        supporting_titles=supporting,
        context=context,
        type=str(record.get("type") or "bridge"),
        hops=len(supporting),
        supporting_facts=facts,
        meta=meta,
    )


def _parse_hotpotqa(record: Mapping[str, Any], where: _Where) -> QAExample:
    return _parse_hotpot_like(record, where, with_evidences=False)


def _parse_2wiki(record: Mapping[str, Any], where: _Where) -> QAExample:
    return _parse_hotpot_like(record, where, with_evidences=True)


_HOPS = re.compile(r"^(\d+)hop")


def _parse_musique(record: Mapping[str, Any], where: _Where) -> QAExample | None:
    ex_id = str(_get(record, "id", where, (str, int)))
    if record.get("answerable") is False:  # MuSiQue-Full's unanswerable half: no gold evidence
        return None
    question = _get(record, "question", where, str)
    answer = _get(record, "answer", where, str)
    paragraphs = _get(record, "paragraphs", where, list)
    context, by_idx, flagged = [], {}, []
    for i, para in enumerate(paragraphs):
        if not isinstance(para, Mapping):
            raise _fail(where, f"paragraphs[{i}]", f"should be an object, got {preview(para)}")
        for field, kind in (("title", str), ("paragraph_text", str)):
            if not isinstance(para.get(field), kind):
                raise _fail(where, f"paragraphs[{i}].{field}", "is missing or not a string")
        idx = para.get("idx", i)
        if isinstance(idx, bool) or not isinstance(idx, int):
            raise _fail(where, f"paragraphs[{i}].idx", f"should be an integer, got {preview(idx)}")
        passage = Passage(id=f"{ex_id}-{idx}", title=para["title"], text=para["paragraph_text"].strip())
        context.append(passage)
        by_idx[idx] = passage
        if para.get("is_supporting"):
            flagged.append(idx)
    decomposition = record.get("question_decomposition") or []
    if not isinstance(decomposition, list):
        raise _fail(where, "question_decomposition", f"should be a list, got {preview(decomposition)}")
    # Hop order comes from the decomposition; fall back to the paragraphs' is_supporting flags.
    ordered = [d.get("paragraph_support_idx") for d in decomposition if isinstance(d, Mapping)]
    ordered = [i for i in ordered if isinstance(i, int) and i in by_idx]
    supporting_idxs = _unique_ints(ordered + flagged)
    if not supporting_idxs:
        raise _fail(where, "paragraphs", "has no paragraph with is_supporting true: no gold evidence")
    match = _HOPS.match(ex_id)
    hops = int(match.group(1)) if match else (len(decomposition) or len(supporting_idxs))
    meta: dict[str, Any] = {}
    if decomposition:
        meta["decomposition"] = [
            {k: d.get(k) for k in ("question", "answer", "paragraph_support_idx")}
            for d in decomposition
            if isinstance(d, Mapping)
        ]
    return QAExample(
        id=ex_id,
        question=question,
        answer=answer,
        aliases=_aliases(record, answer, where, "answer_aliases"),
        supporting_titles=tuple(by_idx[i].title for i in supporting_idxs),
        context=tuple(context),
        type=ex_id.split("__", 1)[0] if "__" in ex_id else f"{hops}hop",
        hops=hops,
        supporting_idxs=supporting_idxs,
        meta=meta,
    )


def _unique_ints(items: Iterable[int]) -> tuple[int, ...]:
    return tuple(dict.fromkeys(items))

# --------------------------------------------------------------------------- question/answer-only records

_EVIDENCE_FIELDS = ("supporting_facts", "context", "paragraphs")


def qa_layout(record: Mapping[str, Any]) -> str | None:
    """Which question/answer-only layout ``record`` has, or None: ``"flashrag"``, ``"search-r1"``
    or ``"plain"``. A record that carries any evidence field is not QA-only."""
    if any(record.get(f) for f in _EVIDENCE_FIELDS):
        return None
    if "golden_answers" in record:
        return "flashrag"
    if "reward_model" in record and "prompt" in record:
        return "search-r1"
    if "question" in record and ("answer" in record or "answers" in record):
        return "plain"
    return None


_QUESTION_LABEL = re.compile(r"Question:\s*", re.IGNORECASE)


def _prompt_question(prompt: Any, where: _Where) -> str:
    """Search-R1 puts its instructions and then ``Question: ...`` in the (last) user message."""
    if isinstance(prompt, str):
        content = prompt
    elif isinstance(prompt, list) and prompt and all(isinstance(m, Mapping) for m in prompt):
        users = [m.get("content") for m in prompt if m.get("role", "user") == "user"]
        content = users[-1] if users else None
    else:
        content = None
    if not isinstance(content, str) or not content.strip():
        raise _fail(where, "prompt", f"should be a list of chat messages with a user message, got {preview(prompt)}")
    parts = _QUESTION_LABEL.split(content)
    question = parts[-1].strip() if len(parts) > 1 else content.strip()
    return question.splitlines()[0].strip() if "\n" in question else question


def _string_list(value: Any, where: _Where, field: str) -> list[str]:
    if hasattr(value, "tolist"):  # numpy arrays from parquet readers
        value = value.tolist()
    if isinstance(value, str):
        value = [value]
    if (not isinstance(value, list | tuple) or not value
            or not all(isinstance(a, str | int | float) and not isinstance(a, bool) for a in value)):
        raise _fail(where, field, f"should be a non-empty list of answer strings, got {preview(value)}")
    return [str(a) for a in value]


def _parse_qa(record: Mapping[str, Any], where: _Where, layout: str | None = None) -> QAExample:
    """A question with its answers and no gold evidence, in any of the ``qa_layout`` layouts."""
    layout = layout or qa_layout(record)
    if layout is None:
        raise DatasetFormatError(
            f"{where}: not a question/answer record: expected FlashRAG's {{id, question, golden_answers}}, "
            "Search-R1's {prompt, reward_model: {ground_truth: {target}}} or {question, answer|answers} "
            f"(fields present: {', '.join(sorted(record)) or 'none'})."
        )
    meta: dict[str, Any] = {}
    if layout == "flashrag":
        question = _get(record, "question", where, str)
        answers = _string_list(record["golden_answers"], where, "golden_answers")
        if isinstance(record.get("metadata"), Mapping):
            meta["metadata"] = record["metadata"]
    elif layout == "search-r1":
        question = record["question"] if isinstance(record.get("question"), str) else _prompt_question(record["prompt"], where)
        truth = record["reward_model"].get("ground_truth") if isinstance(record["reward_model"], Mapping) else None
        target = truth.get("target") if isinstance(truth, Mapping) else truth
        if target is None:
            raise _fail(where, "reward_model.ground_truth.target", f"is missing (reward_model is {preview(record['reward_model'])})")
        answers = _string_list(target, where, "reward_model.ground_truth.target")
        if isinstance(record.get("data_source"), str):
            meta["data_source"] = record["data_source"]
    else:
        question = _get(record, "question", where, str)
        field = "answers" if "answers" in record else "answer"
        answers = _string_list(record[field], where, field)
        for extra in ("answer_aliases", "aliases"):  # MuSiQue-style aliases kept by rewritten records
            if record.get(extra) is not None:
                answers += _string_list(record[extra], where, extra) if record[extra] else []
    if not question.strip():
        raise _fail(where, "question", "is empty")
    raw_id = where.id
    if raw_id is None and isinstance(record.get("extra_info"), Mapping):
        raw_id = _record_id(record["extra_info"], "index")
    answers = list(_unique(a.strip() for a in answers if a.strip())) or answers
    return QAExample(
        id=raw_id if raw_id is not None else str(where.index),
        question=question.strip(),
        answer=answers[0],
        aliases=tuple(answers[1:]),
        type="qa",
        hops=1,
        meta=meta,
    )


def _qa_spec(name: str, display: str, config: str, splits: tuple[str, ...], official: str) -> DatasetSpec:
    return DatasetSpec(
        name=name, display=display, hub_id=FLASHRAG_HUB_ID, hub_config=config, hub_splits=splits,
        official=official, required=("question",), parse=_parse_qa, hub_split_names={"validation": "dev"},
    )


DATASETS: dict[str, DatasetSpec] = {
    "hotpotqa": DatasetSpec(
        name="hotpotqa",
        display="HotpotQA",
        hub_id=HOTPOTQA_HUB_ID,
        hub_config=HOTPOTQA_HUB_CONFIG,
        hub_splits=("train", "validation"),
        official="http://curtis.ml.cmu.edu/datasets/hotpot/hotpot_dev_distractor_v1.json (and _train_v1.1.json)",
        required=("question", "answer", "supporting_facts", "context"),
        parse=_parse_hotpotqa,
    ),
    "2wikimultihopqa": DatasetSpec(
        name="2wikimultihopqa",
        display="2WikiMultihopQA",
        hub_id=TWOWIKI_HUB_ID,
        hub_config=None,
        hub_splits=("train", "validation"),
        official="https://github.com/Alab-NII/2wikimultihop (data.zip: train.json, dev.json)",
        required=("question", "answer", "supporting_facts", "context"),
        parse=_parse_2wiki,
    ),
    "musique": DatasetSpec(
        name="musique",
        display="MuSiQue",
        hub_id=MUSIQUE_HUB_ID,
        hub_config=None,
        hub_splits=("train", "validation"),
        official="https://github.com/StonyBrookNLP/musique (musique_ans_v1.0_dev.jsonl, _train.jsonl)",
        required=("question", "answer", "paragraphs"),
        parse=_parse_musique,
    ),
    "nq": _qa_spec("nq", "NQ", "nq", ("train", "validation", "test"),
                   f"{FLASHRAG_HUB_ID} (nq/test.jsonl) or Search-R1's nq_search parquet"),
    "triviaqa": _qa_spec("triviaqa", "TriviaQA", "triviaqa", ("train", "validation", "test"),
                         f"{FLASHRAG_HUB_ID} (triviaqa/test.jsonl)"),
    "popqa": _qa_spec("popqa", "PopQA", "popqa", ("test",), f"{FLASHRAG_HUB_ID} (popqa/test.jsonl)"),
    "bamboogle": _qa_spec("bamboogle", "Bamboogle", "bamboogle", ("test",),
                          f"{FLASHRAG_HUB_ID} (bamboogle/test.jsonl)"),
    "qa": DatasetSpec(
        name="qa", display="QA", hub_id=None, hub_config=None, hub_splits=(),
        official="your own file: JSON lines of {question, answer or answers, id}", required=("question",),
        parse=_parse_qa,
    ),
}
#: Sets whose records carry no gold evidence: searched over a corpus the user gives.
QA_ONLY_DATASETS = ("nq", "triviaqa", "popqa", "bamboogle", "qa")


_DATASET_ALIASES = {
    "hotpot": "hotpotqa",
    "hotpot_qa": "hotpotqa",
    "hotpotqa/hotpot_qa": "hotpotqa",
    "2wiki": "2wikimultihopqa",
    "2wikimqa": "2wikimultihopqa",
    "2wikimultihop": "2wikimultihopqa",
    "twowiki": "2wikimultihopqa",
    "twowikimultihopqa": "2wikimultihopqa",
    "musique_ans": "musique",
    "musique-ans": "musique",
    "naturalquestions": "nq",
    "natural_questions": "nq",
    "trivia_qa": "triviaqa",
    "pop_qa": "popqa",
    "openqa": "qa",
}


def canonical_dataset(name: str) -> str:
    """``"HotpotQA"``, ``"hotpot_qa"`` -> ``"hotpotqa"``; ``"2Wiki"`` -> ``"2wikimultihopqa"``; else raise."""
    key = str(name).strip().lower().replace(" ", "")
    key = _DATASET_ALIASES.get(key, key)
    if key not in DATASETS:
        raise unknown_name_error("dataset", name, DATASETS)
    return key


def canonical_split(split: str) -> str:
    """``"dev"`` -> ``"validation"``; ``"train"``, ``"validation"``, ``"test"`` pass; anything else raises."""
    key = str(split).strip().lower()
    key = _SPLIT_ALIASES.get(key, key)
    if key not in SPLITS:
        raise ValueError(f"Unknown split {split!r}.{did_you_mean(split, SPLITS, aliases=_SPLIT_ALIASES)} "
                         f"Valid splits: {', '.join(SPLITS)} ('dev' means validation).")
    return key


def _records_from_hub(spec: DatasetSpec, split: str) -> Iterator[tuple[str, int, Any]]:
    if spec.hub_id is None:
        raise ValueError(f"dataset={spec.name!r} has no hub copy: pass data_files= with {spec.official}.")
    if split not in spec.hub_splits:
        raise ValueError(
            f"{spec.display} on the hub ({spec.hub_id}) has no labelled {split!r} split; available: "
            f"{', '.join(spec.hub_splits)}. For another split pass data_files= with the official file."
        )
    try:
        import datasets  # noqa: F401 (lazily, to say which extra installs it; local files need nothing)
    except ImportError as err:
        raise ImportError(
            f"Loading {spec.display} from the hub needs the `datasets` package: pip install 'toolgym[bench]' "
            "(or pip install datasets). Or pass data_files= with the official files, which needs nothing extra."
        ) from err
    hub_split = (spec.hub_split_names or {}).get(split, split)
    source = f"{spec.hub_id}" + (f"[{spec.hub_config}]" if spec.hub_config else "") + f" split {hub_split!r}"
    rows = load_from_hub(spec.hub_id, spec.hub_config, hub_split, display=spec.display, official=spec.official)
    for index, record in enumerate(rows):
        yield source, index, record


# --------------------------------------------------------------------------- public entry point


def load_examples(
    dataset: str,
    split: str = "validation",
    *,
    data_files: PathArg | Sequence[PathArg] | None = None,
    limit: int | None = None,
) -> list[QAExample]:
    """Load a split of a QA dataset as normalised ``QAExample`` s.

    Args:
        dataset: ``"hotpotqa"``, ``"2wikimultihopqa"``, ``"musique"`` (gold evidence), or the
            question/answer-only ``"nq"``, ``"triviaqa"``, ``"popqa"``, ``"bamboogle"`` and ``"qa"``
            (any file of questions with answers; no hub copy). Aliases such as ``"hotpot_qa"``,
            ``"2wiki"``, ``"twowikimultihopqa"`` are accepted.
        split: ``"train"``, ``"validation"`` (or ``"dev"``) or ``"test"``. With ``data_files`` the
            files decide what is loaded and the split is only a label kept in ``example.meta``.
        data_files: a path or a list of paths: the dataset's official files (HotpotQA and 2Wiki: a
            JSON list; MuSiQue: JSON lines), FlashRAG JSONL, Search-R1 ``.parquet`` or plain
            question/answer JSONL; ``.gz``/``.bz2`` are read transparently. Without it the split is
            downloaded from the hub through ``datasets.load_dataset`` (FlashRAG's copies for the
            question/answer-only sets).
        limit: keep only the first ``limit`` examples (reading stops there).

    Raises:
        ValueError: an unknown dataset or split (with the closest valid name).
        DatasetFormatError: a malformed or truncated file, or a record with a missing or
            mistyped field; the message names the file, the record index and id, and the field.
        FileNotFoundError: a path in ``data_files`` does not exist.
    """
    spec = DATASETS[canonical_dataset(dataset)]
    split = canonical_split(split)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}.")
    records = _records_from_hub(spec, split) if data_files is None else read_records(data_files)
    examples: list[QAExample] = []
    seen: dict[str, _Where] = {}
    qa_sources: dict[str, bool] = {}
    skipped = 0
    if limit == 0:
        return examples
    for source, index, record in records:
        if not isinstance(record, Mapping):
            raise DatasetFormatError(
                f"{_Where(source, index)}: should be a JSON object, got {type(record).__name__} {preview(record)}."
            )
        where = _Where(source, index, _record_id(record, "_id", "id", "idx"))
        if source not in qa_sources:  # a file is QA-only or official as its first record says
            qa_sources[source] = spec.name in QA_ONLY_DATASETS or qa_layout(record) is not None
        if qa_sources[source]:
            layout = qa_layout(record)
            if layout is None:
                _check_layout(spec, record, where, qa_only=True)
            example = _parse_qa(record, where, layout)
        else:
            _check_layout(spec, record, where, qa_only=False)
            example = spec.parse(record, where)
        if example is None:
            skipped += 1
            continue
        if example.id in seen:
            raise DatasetFormatError(f"{where}: duplicate id {example.id!r} (first seen at {seen[example.id]}).")
        seen[example.id] = where  # formatted only for the error above
        example.meta.update(dataset=spec.name, split=split)
        examples.append(example)
        if limit is not None and len(examples) >= limit:
            break
    if skipped:
        warnings.warn(
            f"{spec.display}: skipped {skipped} unanswerable records (answerable=false); they have no gold evidence.",
            stacklevel=2,
        )
    return examples


def _check_layout(spec: DatasetSpec, record: Mapping[str, Any], where: _Where, *, qa_only: bool) -> None:
    """A missing required field, with a hint when the record belongs to another dataset."""
    if qa_only and qa_layout(record):
        return
    missing = [f for f in spec.required if f not in record]
    other = next(
        (s.display for s in DATASETS.values()
         if s is not spec and s.name not in QA_ONLY_DATASETS and all(f in record for f in s.required)), None
    )
    hint = f" The record looks like {other}: pass dataset={other.lower()!r}." if other else ""
    if qa_only:
        raise DatasetFormatError(
            f"{where}: not a question/answer record of a known layout: expected FlashRAG's {{id, question, "
            "golden_answers}, Search-R1's {prompt, reward_model: {ground_truth: {target}}} or {question, "
            f"answer|answers}} (present: {', '.join(sorted(record)) or 'none'}).{hint}"
        )
    if not missing:
        return
    raise DatasetFormatError(
        f"{where}: missing field {missing[0]!r}, required in {spec.display} records "
        f"(required: {', '.join(spec.required)}; present: {', '.join(sorted(record)) or 'none'}).{hint}"
    )
