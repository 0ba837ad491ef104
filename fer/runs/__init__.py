"""The run's life in one room: how a training run opens (new, resumed, preempted, joined by a DDP rank), what each
launcher can do for it, how it ends (signals, stop requests, pruning, divergence, each mapped to a run status), a
sweep's job and an Optuna trial seen from inside, checking a config before any of it, and bringing a finished run
back. Imports tracking (MLflow I/O) and every room below it; only sweeps and the entry points import it."""
