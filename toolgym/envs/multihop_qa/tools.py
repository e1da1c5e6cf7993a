"""The tools of MultiHopQA: ``search`` over a corpus and the final ``answer``."""

from __future__ import annotations

from toolgym.envs.retrieval.base import Hit, Retriever
from toolgym.envs.tool import Tool, ToolResult, string_arguments


def format_hits(hits: list[Hit]) -> str:
    """Search-R1's layout: ``Doc 1 (Title: "...") text``, one passage a paragraph."""
    return "\n".join(f'Doc {i} (Title: "{h.passage.title}") {h.passage.text}' for i, h in enumerate(hits, start=1))


class SearchTool(Tool):
    """Top-``k`` passages for a query from a retriever (swapped per episode for per-example corpora)."""

    name = "search"
    description = "Search the knowledge base. Returns the most relevant passages (title and text) for a query."
    parameters = string_arguments(query="What to look for, e.g. a name.")
    # In-process retrieval is fast and bounded; remote backends carry their own socket timeouts.
    timeout = None

    def __init__(self, retriever: Retriever | None, k: int = 3):
        if k < 1:
            raise ValueError(f"top_k must be >= 1, got {k}.")
        self.retriever = retriever
        self.k = k

    def run(self, query: str) -> ToolResult:
        if not query.strip():
            return ToolResult.failure("search: the query is empty; write what to look for", invalid_arguments=True)
        try:
            (hits,) = self.retriever.search([query], self.k)
        except Exception as err:  # noqa: BLE001 - a backend failure is reported, the episode goes on
            return ToolResult.failure(f"search backend failed: {type(err).__name__}: {err}")
        if not hits:
            return ToolResult(f"No results found for {query!r}.", metadata={"passages": []})
        return ToolResult(format_hits(hits), metadata={"passages": [h.passage for h in hits]})

