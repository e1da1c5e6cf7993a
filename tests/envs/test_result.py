"""EpisodeResult: the typed end of an episode, its JSON form, and the errors that say what to fix."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest

from toolgym.envs import result as result_module
from toolgym.envs.result import EpisodeResult


def test_round_trip_through_info_and_json():
    result = EpisodeResult(success=np.bool_(True), score=np.float32(0.5), answer="Paris", gold=["Paris", "paris"],
                           extras={"qa": {"em": 1.0, "f1": 0.5}})
    assert result.success is True and type(result.score) is float
    data = json.loads(json.dumps({"result": result.to_dict()}))
    assert EpisodeResult.from_info(data) == result
    assert result.to_dict() is not result.to_dict()  # fresh objects: an info never shares them
    assert EpisodeResult.from_info({"turn": 3}) is None  # the episode has not ended
    assert result.metrics() == {"em": 1.0, "f1": 0.5, "success": 1.0, "score": 0.5}


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"success": 1.0, "score": 1.0}, TypeError, "success must be a bool, got float 1.0"),
    ({"success": True, "score": "1"}, TypeError, "score must be a number in \\[0, 1\\], got str '1'"),
    ({"success": True, "score": True}, TypeError, "score must be a number"),
    ({"success": True, "score": float("nan")}, ValueError, "score must be in \\[0, 1\\], got nan"),
    ({"success": True, "score": 1.5}, ValueError, "keep raw values in extras"),
    ({"success": True, "score": 1.0, "answer": 42}, TypeError, "answer must be a str or None, got int 42"),
    ({"success": True, "score": 1.0, "gold": {1, 2}}, TypeError, "gold must be JSON-serialisable"),
    ({"success": True, "score": 1.0, "extras": {"em": 1.0}}, TypeError, "map a task name \\(str\\) to a dict"),
    ({"success": True, "score": 1.0, "extras": [("qa", {})]}, TypeError, "extras must be a dict"),
    ({"success": True, "score": 1.0, "extras": {"qa": {1: 2}}}, TypeError, "extras\\['qa'\\] keys must be str"),
    ({"success": True, "score": 1.0, "extras": {"qa": {"x": object()}}}, TypeError, "JSON-serialisable"),
])
def test_invalid_results_say_what_to_fix(kwargs, error, message):
    with pytest.raises(error, match=message):
        EpisodeResult(**kwargs)


def test_a_malformed_info_result_names_the_fields():
    with pytest.raises(ValueError, match="missing \\['score'\\], unknown \\['em'\\]"):
        EpisodeResult.from_info({"result": {"success": True, "em": 1.0}})
    with pytest.raises(TypeError, match="must be a dict"):
        EpisodeResult.from_info({"result": "yes"})


def test_docstring_examples():
    assert doctest.testmod(result_module).failed == 0
