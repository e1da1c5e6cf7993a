"""Fakes and helpers shared by several test directories.

Tests import them as ``tests.fakes.<module>`` (and a directory's own helpers as
``tests.<dir>.<module>``): pyproject's ``pythonpath = ["."]`` puts the repository root on
``sys.path``, since the ``importlib`` import mode adds no test directory there.
"""
