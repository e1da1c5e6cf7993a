"""The tools of MultiHopQA: ``search`` over a corpus and the final ``answer``."""

from __future__ import annotations

from toolgym.envs.retrieval.base import Hit, Retriever
from toolgym.envs.retrieval.http import HTTPRetriever
from toolgym.envs.tool import Tool, ToolResult, string_arguments


def format_hits(hits: list[Hit]) -> str:
    """Search-R1's layout: ``Doc 1 (Title: "...") text``, one passage a paragraph."""
    return "\n".join(f'Doc {i} (Title: "{h.passage.title}") {h.passage.text}' for i, h in enumerate(hits, start=1))


class SearchTool(Tool):
    """Top-``k`` passages for a query from a retriever (swapped per episode for per-example corpora).

    Batchable: the searches of every env of a batch that share a retriever and ``k`` go to it as one
    ``search(queries, k)`` (one request to a retrieval server)."""

    name = "search"
    description = "Search the knowledge base. Returns the most relevant passages (title and text) for a query."
    parameters = string_arguments(query="What to look for, e.g. a name.")
    # In-process retrieval is fast and bounded; remote backends carry their own socket timeouts.
    timeout = None
    pure = True

    def __init__(self, retriever: Retriever | None, k: int = 3):
        if k < 1:
            raise ValueError(f"top_k must be >= 1, got {k}.")
        self.retriever = retriever
        self.k = k

    def run(self, query: str) -> ToolResult:
        return self.run_batch([{"query": query}])[0]

    @property
    def concurrency(self) -> str:  # type: ignore[override]
        # A server's answer is awaited in a thread; in-process backends are CPU-bound (or, like
        # Lucene through the JVM and torch, unsafe to call from other threads): inline.
        return "thread" if isinstance(self.retriever, HTTPRetriever) else "inline"

    @property
    def thread_safe(self) -> bool:  # type: ignore[override]
        # The HTTP client's pooled Session may serve several requests at once; the server answers
        # each in its own thread.
        return isinstance(self.retriever, HTTPRetriever)

    def batch_key(self):
        return (SearchTool, id(self.retriever), self.k)

    def run_batch(self, arguments) -> list[ToolResult]:
        queries = [args["query"] for args in arguments]
        asked = [i for i, query in enumerate(queries) if query.strip()]
        results = [ToolResult.failure("search: the query is empty; write what to look for", invalid_arguments=True)] * len(queries)
        if not asked:
            return results
        try:
            found = self.retriever.search([queries[i] for i in asked], self.k)
        except Exception as err:  # noqa: BLE001 - a backend failure is reported, the episode goes on
            failure = ToolResult.failure(f"search backend failed: {type(err).__name__}: {err}")
            for i in asked:
                results[i] = failure
            return results
        for i, hits in zip(asked, found, strict=True):
            if not hits:
                results[i] = ToolResult(f"No results found for {queries[i]!r}.", metadata={"passages": []})
            else:
                results[i] = ToolResult(format_hits(hits), metadata={"passages": [h.passage for h in hits]})
        return results
