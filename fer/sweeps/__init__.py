"""Sweeps: a Hydra multirun as one MLflow parent run with its jobs as children, their comparison, and the report
page built from them. Imports fer.tracking and the leaves; nothing imports sweeps but entry points."""
