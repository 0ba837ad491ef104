"""Tracking: MLflow I/O only: the store and its clients, retries and the spool, the logger, tags, provenance,
lineage, the logged model and checkpoint copies. What a run's life decides (when it opens, how it ends) is
fer/runs/. Imports fer.config and the leaves; never training code, runs, sweeps or explain."""
