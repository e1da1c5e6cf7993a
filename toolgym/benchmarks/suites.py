"""Named sets of envs that papers report together, for ``toolgym bench --suite NAME``.

``search-r1``: the seven sets of Search-R1 (and ReSearch, R1-Searcher, StepSearch), each question
answered by searching one shared corpus: general QA (NQ, TriviaQA, PopQA; test splits) and
multi-hop QA (HotpotQA, 2WikiMultihopQA, MuSiQue; dev splits; Bamboogle; test).
``agent-r1``: the three multi-hop sets of the Agent-R1 paper.
"""

from __future__ import annotations

import re

from toolgym.envs.errors import unknown_name_error

#: (env id, column title) in Search-R1's table order.
SEARCH_R1_GENERAL = (("NQ-v0", "NQ"), ("TriviaQA-v0", "TriviaQA"), ("PopQA-v0", "PopQA"))
SEARCH_R1_MULTIHOP = (("HotpotQA-v0", "HotpotQA"), ("TwoWikiMultihopQA-v0", "2wiki"), ("MuSiQue-v0", "Musique"),
                      ("Bamboogle-v0", "Bamboogle"))
AGENT_R1 = ("HotpotQA-v0", "TwoWikiMultihopQA-v0", "MuSiQue-v0")

SUITES: dict[str, tuple[str, ...]] = {
    "search-r1": tuple(env for env, _ in SEARCH_R1_GENERAL + SEARCH_R1_MULTIHOP),
    "agent-r1": AGENT_R1,
}


def suite_envs(name: str) -> list[str]:
    """The env ids of a suite; an unknown name suggests the closest."""
    if name not in SUITES:
        raise unknown_name_error("suite", name, SUITES)
    return list(SUITES[name])


#: How tables and plots title an env: its id without the version, or the name given here.
SHORT_NAMES = {"TwoWikiMultihopQA": "2Wiki", "MuSiQue": "MuSiQue", "HotpotQA": "HotpotQA"}


def short_name(env_id: str) -> str:
    """``"TwoWikiMultihopQA-v0"`` -> ``"2Wiki"``; other ids lose their version suffix."""
    base = re.sub(r"-v\d+$", "", env_id.split(":")[-1])
    return SHORT_NAMES.get(base, base)
