"""The episode viewer: ``toolgym view PATH`` writes one offline HTML page of episode records.

A layer of its own above trainers and benchmarks: it reads the files they write (``episodes.jsonl``,
``trainer_state.json``); neither imports it. See :mod:`toolgym.viewer.page`.
"""
