"""fer: run, track and explain facial-expression-recognition experiments on FER2013.

Rooms, lowest first (each imports only rooms above it in this list): the leaves `errors`, `labels`, `registry`
and `config.schema`/`config.options`; `data`, `models`; `training`; `artifacts`, `tracking`, `explain`;
`sweeps`; `config.validate`; then `cli`, the entry points (`train`, `evaluate`, `predict`, `report`, `delivery`,
`explain/__main__`) and `bench`. README.md's "Where things live" maps them.
"""

__version__ = "0.1.0"
