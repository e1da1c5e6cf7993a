"""Tools for the people who work on toolgym itself (stdlib only; nothing here imports the rest of toolgym).

- ``python -m toolgym.devtools.imports``: the package's import graph, its cycles and its layer violations.
"""
