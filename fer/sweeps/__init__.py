"""Sweeps, from the launching process: a Hydra multirun as one MLflow parent run with its jobs as children, their
comparison, fer's Optuna search, and the report page built from them (a job seen from inside is fer/runs/job.py).
Imports fer.runs and below; nothing imports sweeps but entry points and the sweeper plugin."""
