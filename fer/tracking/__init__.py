"""Tracking: the store and its clients, what a run records, the run's life (new, resumed, joined; finished, killed,
failed), resume, DDP ranks and the spool. Imports fer.config and the leaves; never training code, sweeps or explain."""
