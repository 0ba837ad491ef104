"""`hydra/sweeper=fer_optuna`: hyper-parameter search with current Optuna, each trial an ordinary Hydra job."""
