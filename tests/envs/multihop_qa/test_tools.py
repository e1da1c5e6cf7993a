"""The search tool: one retriever call for a batch of searches, the same results as one by one."""

from toolgym.envs.multihop_qa.tools import SearchTool
from toolgym.envs.retrieval import BM25Retriever, Passage
from toolgym.envs.retrieval.http import HTTPRetriever

PASSAGES = [Passage("p0", "Paris", "Paris is the capital of France."),
            Passage("p1", "Rome", "Rome is the capital of Italy."),
            Passage("p2", "Danube", "The Danube flows to the Black Sea.")]


class Counting:
    def __init__(self, inner, fail=False):
        self.inner, self.fail, self.calls = inner, fail, []

    def search(self, queries, k):
        self.calls.append(list(queries))
        if self.fail:
            raise ConnectionError("server down")
        return self.inner.search(queries, k)


def test_a_batch_is_one_search_with_the_results_of_one_by_one():
    retriever = Counting(BM25Retriever(PASSAGES, cache=False))
    tool = SearchTool(retriever, k=2)
    calls = [{"query": "capital of Italy"}, {"query": "   "}, {"query": "zzz"}, {"query": "Black Sea"}]
    batched = tool.call_batch(calls)
    assert retriever.calls == [["capital of Italy", "zzz", "Black Sea"]]  # the empty query never leaves
    assert batched == [tool(c) for c in calls]
    assert batched[1].metadata["invalid_arguments"] and batched[2].content == "No results found for 'zzz'."


def test_a_backend_failure_fails_every_search_of_the_batch_but_not_the_empty_query():
    tool = SearchTool(Counting(BM25Retriever(PASSAGES, cache=False), fail=True))
    out = tool.call_batch([{"query": "Rome"}, {"query": ""}, {"query": "Paris"}])
    assert out[0].error == out[2].error == "search backend failed: ConnectionError: server down"
    assert out[1].error == "search: the query is empty; write what to look for"


def test_batch_key_and_where_it_runs():
    shared = BM25Retriever(PASSAGES, cache=False)
    assert SearchTool(shared, k=3).batch_key() == SearchTool(shared, k=3).batch_key()
    assert SearchTool(shared, k=3).batch_key() != SearchTool(shared, k=2).batch_key()
    assert SearchTool(shared).concurrency == "inline"  # CPU-bound in process
    assert SearchTool(HTTPRetriever("http://127.0.0.1:9/retrieve")).concurrency == "thread"  # awaits a server
