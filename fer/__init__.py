"""fer: run, track and explain facial-expression-recognition experiments on FER2013.

Rooms, lowest first (each imports only rooms above it in this list): the leaves `console`, `errors`, `labels`,
`registry` and `config`; `data`, `models`; `training`; `explain`; `artifacts`; `tracking` (MLflow I/O); `runs`
(the run's life); `sweeps`; then `cli`, the entry points (`train`, `evaluate`, `predict`, `report`, `delivery`,
`explain/__main__`) and `bench`. README.md's "Where things live" maps them.
"""

__version__ = "0.1.0"
