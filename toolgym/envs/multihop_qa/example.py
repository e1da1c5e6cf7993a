"""One normalised multi-hop QA example, whatever dataset it came from."""

from __future__ import annotations

from dataclasses import dataclass, field

from toolgym.envs.retrieval.base import Passage


@dataclass(frozen=True)
class QAExample:
    """A question with its gold answer and gold evidence.

    Every source (the synthetic world, HotpotQA, 2WikiMultihopQA, MuSiQue, and the
    question/answer-only sets: NQ, TriviaQA, PopQA, Bamboogle, ``"qa"``) is normalised to this.
    A question/answer-only example has no gold evidence: empty ``supporting_titles``,
    ``context`` and ``supporting_facts``, ``type == "qa"``; it is searched over an external corpus.

    Attributes:
        id: the dataset's own id (``_id`` / ``id``), so predictions can be written back in the
            official formats.
        question: the question text shown to the agent.
        answer: the gold answer string.
        aliases: other accepted answers (MuSiQue ``answer_aliases``, 2Wiki aliases); metrics take
            the best score over ``(answer, *aliases)``.
        supporting_titles: titles of the gold supporting passages, in hop order where known.
        context: the example's own paragraphs (the distractor setting); the gold ones among them
            have titles in ``supporting_titles``. Empty when the corpus is external.
        type: ``"bridge"``, ``"comparison"``, or the dataset's own label (2Wiki ``inference``,
            ``compositional``, ``bridge_comparison``; MuSiQue ``2hop``...).
        hops: how many supporting passages the question needs.
        supporting_facts: HotpotQA/2Wiki ``[title, sentence index]`` pairs, kept for the
            official prediction files; empty elsewhere.
        supporting_idxs: MuSiQue paragraph indices (``idx``) of the supporting paragraphs.
        meta: anything else worth keeping (level, decomposition, ...); JSON-serialisable.
    """

    id: str
    question: str
    answer: str
    aliases: tuple[str, ...] = ()
    supporting_titles: tuple[str, ...] = ()
    context: tuple[Passage, ...] = ()
    type: str = "bridge"
    hops: int = 2
    supporting_facts: tuple[tuple[str, int], ...] = ()
    supporting_idxs: tuple[int, ...] = ()
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def answers(self) -> tuple[str, ...]:
        """The gold answer followed by its aliases: what metrics compare against."""
        return (self.answer, *self.aliases)
