"""An invented world for offline multi-hop QA: entities, relations, passages and 2-4 hop questions.

``build_world`` generates people, cities, countries, universities, companies, films and books
with invented, pronounceable names and the relations between them, renders every entity as a
short encyclopedia-style passage, adds distractor entities with similar names, and asks
HotpotQA-style questions of two types:

* **bridge**: follow a chain of relations ("In which country was the director of FILM born?":
  film -> director -> birth city -> country, 3 supporting passages);
* **comparison**: compare a fact that sits behind a bridge hop ("Whose director was born earlier,
  FILM A or FILM B?", 4 supporting passages).

A passage states only its own entity's forward relations (a person's passage never lists the
films they directed), so the question text alone cannot retrieve the later hops. Every question
is checked at build time: it is dropped when BM25 over the question text already returns all of
its gold passages, or (bridge) any passage containing the answer. Everything is deterministic
from ``WorldConfig.seed``; train/validation/test are split by the question's first entity, so
test questions start from entities no training question mentions as its anchor.

>>> world = build_world(n_people=200, seed=3, templates=("film_director_birthplace",))
>>> q = world.questions("train")[0]
>>> q.type, q.hops, q.meta["template"]
('bridge', 2, 'film_director_birthplace')
>>> q.question == f"Where was the director of {q.supporting_titles[0]} born?"
True
>>> q.answer in world.passage(q.supporting_titles[1]).text
True

The modules: ``schema`` (entity kinds and relations), ``templates`` (the questions), ``names``
(invented names), ``passages`` (how entities are written), ``world`` (the config, the generated
world and its questions).
"""

from toolgym.envs.multihop_qa.synthetic.schema import ANCHOR_KINDS, KINDS, RELATIONS
from toolgym.envs.multihop_qa.synthetic.templates import QUESTION_TYPES, TEMPLATES, Template
from toolgym.envs.multihop_qa.synthetic.world import (
    CONTEXT_SIZE,
    SPLITS,
    SyntheticWorld,
    WorldConfig,
    build_world,
    leaks,
)

__all__ = ["ANCHOR_KINDS", "CONTEXT_SIZE", "KINDS", "QUESTION_TYPES", "RELATIONS", "SPLITS", "TEMPLATES",
           "SyntheticWorld", "Template", "WorldConfig", "build_world", "leaks"]
