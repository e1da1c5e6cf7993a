"""MultiHopQA: answer questions that need several retrievals, with a search tool."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from toolgym.envs.errors import check_argument_types, unknown_name_error
from toolgym.envs.formats import ToolCall
from toolgym.envs.multihop_qa.corpus import context_matcher, pooled_corpus, supporting_matcher
from toolgym.envs.multihop_qa.datasets import (
    QA_ONLY_DATASETS,
    canonical_dataset,
    canonical_split,
    check_data_files,
    load_examples,
)
from toolgym.envs.multihop_qa.example import QAExample
from toolgym.envs.multihop_qa.metrics import METRICS, metrics_for, score_answer
from toolgym.envs.multihop_qa.synthetic import build_world
from toolgym.envs.multihop_qa.tools import SearchTool
from toolgym.envs.result import EpisodeResult
from toolgym.envs.retrieval.base import Retriever
from toolgym.envs.retrieval.bm25 import BM25Retriever
from toolgym.envs.retrieval.corpus import load_corpus_jsonl
from toolgym.envs.retrieval.factory import make_retriever
from toolgym.envs.tool import AnswerTool, Tool, ToolResult
from toolgym.envs.tool_env import RewardTerms, ToolEnv

DATASETS = ("synthetic", "hotpotqa", "2wikimultihopqa", "musique", *QA_ONLY_DATASETS)
CORPUS_MODES = ("world", "example", "pooled")


class MultiHopQAEnv(ToolEnv):
    """Answer a multi-hop question by searching a corpus, then calling ``answer``.

    ## Description
    Each episode draws a question that needs several supporting passages (2-4 hops: a *bridge*
    question follows a chain of facts, a *comparison* question compares two entities reached
    through a hop). The agent searches the corpus, reads the passages, and answers. The default
    data is an invented world generated offline from a seed (``dataset="synthetic"``); HotpotQA,
    2WikiMultihopQA and MuSiQue load through ``datasets`` or from their official files.
    Open-domain sets (NQ, TriviaQA, PopQA, Bamboogle, or any questions with answers:
    ``dataset="qa"``) carry no gold evidence: they search a corpus the user gives (``corpus=`` a
    JSONL file or a Lucene index, or ``retriever="http"``), and have no ``evidence`` term.

    ## Action Space
    Any string: the assistant's message. Calls are parsed with the chosen ``format``:
    ``hermes`` (``<tool_call>{"name": "search", "arguments": {"query": "..."}}</tool_call>``, and
    ``{"name": "answer", "arguments": {"answer": "..."}}``) or ``tags`` (``<search>...</search>``,
    ``<answer>...</answer>``). A message that cannot be parsed is answered with an error, never an
    exception.

    ## Observation Space
    ``Messages``: a tuple of ``{"role", "content"}`` dicts (system prompt, question, then the
    assistant's messages and the tool results), ready for ``tokenizer.apply_chat_template``.

    ## Rewards
    The step reward is the weighted sum of named terms, reported in ``info["reward_terms"]``:

    | term           | raw value                                          | default weight |
    |----------------|----------------------------------------------------|----------------|
    | ``answer``     | the answer's F1 (``reward="em"``/``"subem"``)       | 1.0            |
    | ``evidence``   | gold supporting passages retrieved for the 1st time (absent without gold evidence) | 0.1 |
    | ``valid_call`` | tool calls that ran                                 | 0.02           |
    | ``repeat_query`` | searches repeating an earlier query               | -0.05          |
    | ``format``     | malformed calls, unknown tools, bad arguments       | -0.1           |

    ## Episode End
    ``terminated`` when the agent calls ``answer``. ``truncated`` when ``max_turns`` messages
    were written, a call was asked beyond ``max_tool_calls``, or the context outgrew
    ``max_context_chars`` (``info["truncated_by"]`` says which). Never both.
    The last step's ``info["result"]`` (``toolgym.envs.result``): success is exact match, the
    score is F1 (the dataset's official rule, whatever ``reward`` is), the answer and the first
    gold answer; ``extras["qa"]`` holds ``em``, ``f1`` and ``subem``.

    ## Arguments
    ``dataset``: ``"synthetic"`` (default), ``"hotpotqa"``, ``"2wikimultihopqa"``, ``"musique"``,
    or the question/answer-only ``"nq"``, ``"triviaqa"``, ``"popqa"``, ``"bamboogle"``, ``"qa"``.
    ``split``: ``"train"``, ``"validation"`` or ``"test"``.
    ``data_files``: local files: the official format, FlashRAG JSONL, Search-R1 parquet or
    question/answer JSONL (real datasets only: an error on the synthetic one).
    ``limit``: load at most this many examples (real datasets only).
    ``offset``: skip this many examples first (real datasets only): ``limit=120`` trains on the
    first 120 records and ``offset=120`` evaluates on the rest.
    ``corpus``: ``"world"`` (the whole synthetic world; its default), ``"example"`` (each
    example's own paragraphs), ``"pooled"`` (all paragraphs of the split; the default for real
    data), or a path to a JSONL corpus or a Lucene index (real datasets only; required for
    question/answer-only sets unless ``retriever="http"``).
    ``retriever``: ``"bm25"`` (default), ``"lucene"``, ``"dense"``, ``"http"``;
    ``retriever_options``: passed to the backend (e.g. ``{"url": ...}``).
    ``top_k``: passages per search (3). ``reward``: ``"f1"``, ``"em"`` or ``"subem"``.
    ``world``: overrides of the synthetic ``WorldConfig`` (``{"n_people": 2000, "hops": [2, 3]}``).
    Budgets and context options: see ``ToolEnv``.

    ## Version History
    * v0: initial version.

    >>> import gymnasium as gym, toolgym
    >>> env = gym.make("MultiHopQA-v0")
    >>> obs, info = env.reset(seed=0)
    >>> [m["role"] for m in obs]
    ['system', 'user']
    >>> obs, reward, terminated, truncated, info = env.step('<tool_call>{"name": "answer", "arguments": {"answer": "no idea"}}</tool_call>')
    >>> terminated, truncated, sorted(info["reward_terms"])
    (True, False, ['answer', 'valid_call'])
    """

    default_reward_weights: ClassVar[dict[str, float]] = {
        **ToolEnv.default_reward_weights,
        "answer": 1.0,
        "evidence": 0.1,
        "repeat_query": -0.05,
    }

    def __init__(
        self,
        dataset: str = "synthetic",
        split: str = "train",
        *,
        data_files: str | Path | Sequence[str | Path] | None = None,
        limit: int | None = None,
        offset: int = 0,
        corpus: str | Path | None = None,
        retriever: str = "bm25",
        retriever_options: Mapping[str, Any] | None = None,
        top_k: int = 3,
        reward: str = "f1",
        world: Mapping[str, Any] | None = None,
        **budgets: Any,
    ):
        check_argument_types({**locals(), **budgets}, MultiHopQAEnv.__init__, ToolEnv.__init__)
        if dataset != "synthetic":
            try:  # accept the usual spellings: "2wiki", "HotpotQA", "hotpot_qa"...
                dataset = canonical_dataset(dataset)
            except ValueError:
                raise unknown_name_error("dataset", dataset, DATASETS) from None
        split = canonical_split(split)  # "dev" -> "validation"; an unknown split names the valid ones
        if reward not in METRICS:
            raise unknown_name_error("reward metric", reward, METRICS)
        if dataset != "synthetic" and world is not None:
            raise ValueError(f"world= configures the synthetic dataset only, got dataset={dataset!r}.")
        if dataset == "synthetic":
            _check_synthetic_kwargs(data_files, limit, corpus, offset)
        self.dataset, self.split, self.reward_metric, self.top_k = dataset, split, reward, top_k
        self._metrics = metrics_for(dataset)  # F1 under the dataset's official rule
        if corpus is None and dataset in QA_ONLY_DATASETS and retriever == "http":
            corpus = "remote"  # the server holds the corpus
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValueError(f"offset must be a non-negative integer, got {offset!r} (for example offset=120).")
        source = _source_key(dataset, split, data_files, limit, corpus, dict(world or {}), offset)
        examples, passages, self.corpus_mode = _load_source(*source)
        self.examples, self.passages = list(examples), list(passages)
        if not self.examples:
            raise ValueError(f"No examples for dataset={dataset!r}, split={split!r}: nothing to ask.")
        options = tuple(sorted((retriever_options or {}).items()))
        if self.corpus_mode == "remote" and retriever != "http":
            raise ValueError(f"corpus='remote' means a retrieval server: pass retriever='http', got {retriever!r}.")
        self._retriever = None if self.corpus_mode == "example" else _shared_retriever(retriever, source, options)
        self.example: QAExample = self.examples[0]
        super().__init__(**budgets)

    # -- the task -----------------------------------------------------------------------------
    def _make_tools(self) -> Sequence[Tool]:
        self.search_tool = SearchTool(self._retriever, k=self.top_k)
        return (self.search_tool, AnswerTool())

    def _instructions(self) -> str:
        return (
            "You answer questions that need several facts. Search the knowledge base one fact at a "
            "time: search for an entity, read the passages, then search for the next entity they "
            "mention. When you know the answer, give it with the answer tool as a short phrase."
        )

    def _new_task(self, options: Mapping[str, Any]) -> str:
        if "question_id" in options:
            matches = [e for e in self.examples if e.id == options["question_id"]]
            if not matches:
                raise ValueError(f"No question with id {options['question_id']!r} in split {self.split!r}.")
            self.example = matches[0]
        elif "index" in options:
            self.example = self.examples[int(options["index"]) % len(self.examples)]
        else:
            self.example = self.examples[int(self.np_random.integers(len(self.examples)))]
        if self.corpus_mode == "example":
            self.search_tool.retriever = _example_retriever(self.example)
        # External corpora have their own paragraph text: only titles can be matched there.
        external = self.corpus_mode in ("file", "index", "remote")
        self._evidence_match = "title" if external or not self.example.supporting_idxs else "exact"
        self._found: list[str] = []
        self._found_keys: set = set()
        self._is_gold = None
        self._in_context = None
        self._retrieved_context: list[int] = []
        self._queries: set[str] = set()
        self._answer: str | None = None
        return f"Question: {self.example.question}"

    def _on_result(self, call: ToolCall, result: ToolResult, terms: RewardTerms) -> bool:
        if not result.ok:
            return False
        if call.name == "search":
            query = " ".join(str(call.arguments.get("query", "")).lower().split())
            if query in self._queries:
                terms.add("repeat_query")
            self._queries.add(query)
            if self._is_gold is None:  # built at the first search, so reset() stays cheap
                self._is_gold = supporting_matcher(self.example, match=self._evidence_match)
                self._in_context = context_matcher(self.example, match=self._evidence_match)
            for passage in result.metadata.get("passages", []):
                # The matcher's key: a title-matched dataset counts a page once, whatever paragraph came back.
                key = self._is_gold.key(passage)
                if key not in self._found_keys and key in self._is_gold.keys:
                    self._found_keys.add(key)
                    self._found.append(passage.title)
                    terms.add("evidence")
                for i in self._in_context(passage):
                    if i not in self._retrieved_context:
                        self._retrieved_context.append(i)
            return False
        if call.name == "answer":
            self._answer = str(result.metadata.get("answer", ""))
            terms.add("answer", self._metrics[self.reward_metric](self._answer, self.example.answers))
            return True
        return False

    def oracle_action(self) -> str:
        """Search each gold supporting title in hop order (the question itself when there is no
        gold evidence), then answer with the gold answer."""
        titles = self.example.supporting_titles or (self.example.question,)
        if self.turn < len(titles):
            return self.call("search", query=titles[self.turn])
        return self.call("answer", answer=self.example.answer)

    def _task_info(self) -> dict[str, Any]:
        """``evidence_recall``: the share of the gold evidence found so far, counted as the
        evidence reward counts it (by paragraph for MuSiQue over its own paragraphs, else by
        page title); None when the question has no gold evidence (not applicable, never 0).
        ``retrieved_context``: indices of the example's own paragraphs the searches returned
        (matched the same way), from which the official prediction files fill supporting facts."""
        gold = len(self._is_gold.keys) if self._is_gold is not None else _gold_count(self.example)
        return {
            "question_id": self.example.id,
            "found_supporting": list(self._found),
            "evidence_recall": len(self._found_keys) / gold if gold else None,
            "retrieved_context": list(self._retrieved_context),
        }

    def _episode_result(self) -> EpisodeResult:
        """Success is exact match, the score is F1 (both under the dataset's official rule, whatever
        the ``reward`` metric); all three QA metrics are the ``qa`` extras."""
        given = self._answer
        scores = (score_answer(given, self.example.answers, dataset=self.dataset) if given is not None
                  else dict.fromkeys(METRICS, 0.0))
        return EpisodeResult(success=scores["em"] == 1.0, score=scores["f1"], answer=given,
                             gold=self.example.answer, extras={"qa": scores})


def _gold_count(example: QAExample) -> int:
    """How many pieces of gold evidence an example has, before its matcher is built."""
    return len(example.supporting_idxs) or len({" ".join(t.casefold().split()) for t in example.supporting_titles})


def _check_synthetic_kwargs(data_files, limit, corpus, offset=0) -> None:
    """Arguments of real datasets given to the synthetic one are errors, never silently ignored."""
    if data_files is not None:
        raise ValueError(
            f"data_files={data_files!r} does not apply to dataset='synthetic' (the generated world). To load the "
            "file, name its dataset: dataset='hotpotqa', '2wikimultihopqa', 'musique', 'nq', 'triviaqa', "
            "'popqa', 'bamboogle', or 'qa' for any questions with answers."
        )
    if limit is not None or offset:
        limit = limit if limit is not None else f"{offset}, offset={offset}"
        raise ValueError(f"limit={limit!r} does not apply to dataset='synthetic': set the world's size with world=.")
    if corpus is not None and str(corpus) not in CORPUS_MODES:
        raise ValueError(
            f"corpus={str(corpus)!r} does not apply to dataset='synthetic', which searches its own world "
            f"(corpus modes: {', '.join(CORPUS_MODES)}). An external corpus needs a real dataset, e.g. "
            "dataset='qa', data_files='questions.jsonl'."
        )


# -- data sources, loaded once per process and shared by every env that asks for them ---------
def _source_key(dataset, split, data_files, limit, corpus, world, offset=0) -> tuple:
    """The hashable identity of a data source: what ``_load_source`` and the retrievers key on."""
    files = None
    if data_files is not None:
        files = tuple(str(f) for f in check_data_files(data_files))
    items = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in world.items()))
    return dataset, split, files, limit, str(corpus) if corpus is not None else None, items, offset


@lru_cache(maxsize=16)
def _load_source(dataset, split, data_files, limit, corpus, world_items, offset=0):
    """``(examples, passages, corpus mode)``; passages are empty for per-example corpora and indexes."""
    if dataset == "synthetic":
        world = build_world(**dict(world_items))
        examples = world.questions(split)
        corpus = corpus or "world"
        if corpus == "world":
            return tuple(examples), tuple(world.passages), "world"
    else:
        examples = load_examples(dataset, split, data_files=data_files,
                                 limit=None if limit is None else offset + limit)[offset:]
        if corpus in (None, "pooled", "example") and examples and not any(e.context for e in examples):
            shown = "" if corpus is None else f"corpus={corpus!r}: "
            raise ValueError(
                f"{shown}{dataset!r} records carry no passages (question and answers only), so there is nothing "
                "to pool or search: pass corpus= a JSONL corpus ({id, title, text} or {id, contents}) or a Lucene "
                "index directory, or retriever='http' with retriever_options={'url': ...}."
            )
        corpus = corpus or "pooled"
    if corpus == "remote":
        return tuple(examples), (), "remote"
    if corpus == "example":
        return tuple(examples), (), "example"
    if corpus == "pooled":
        return tuple(examples), tuple(pooled_corpus(examples)), "pooled"
    if corpus == "world":
        raise ValueError(f"corpus='world' is the synthetic world's corpus; dataset={dataset!r} has none.")
    path = Path(corpus)
    if not path.exists():
        raise ValueError(
            f"corpus={str(corpus)!r} is neither a corpus mode ({', '.join(CORPUS_MODES)}) nor an existing "
            "file or directory. Give a mode, a JSONL corpus file, or a Lucene index directory."
        )
    if path.is_dir():  # a Lucene index: the backend reads the passages itself
        return tuple(examples), (), "index"
    return tuple(examples), tuple(load_corpus_jsonl(path)), "file"


_RETRIEVERS: dict[tuple, Retriever] = {}


def _shared_retriever(backend: str, source: tuple, options: tuple) -> Retriever:
    """One retriever per corpus and backend in a process: vector envs share one index."""
    key = (backend, source, options)
    if key not in _RETRIEVERS:
        _, passages, mode = _load_source(*source)
        if backend == "bm25" and mode == "world" and not options:
            # The index the world's necessity check already built: one copy in memory, not two.
            _RETRIEVERS[key] = build_world(**dict(source[5])).retriever
        elif backend == "bm25" and mode != "index":
            _RETRIEVERS[key] = BM25Retriever(list(passages), **dict(options))
        else:
            if mode == "index" and backend != "http":  # an index directory is read by Lucene
                _RETRIEVERS[key] = make_retriever("lucene", index_path=source[4], **dict(options))
            else:
                _RETRIEVERS[key] = make_retriever(backend, list(passages), **dict(options))
    return _RETRIEVERS[key]


@lru_cache(maxsize=4096)
def _example_retriever(example: QAExample) -> Retriever:
    return BM25Retriever(list(example.context), cache=False)
