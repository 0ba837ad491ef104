"""`python -m fer.train [group=option …] [key=value …]`: train, test and track one run (or a sweep with -m).

Hydra composes the config and checks its keys first; then `train(cfg)` (fer/runs/train.py) runs, the whole story
top to bottom. It is imported only then, so a misspelt key or an unknown option is said in half a second, not after
the ~6 s that torch, Lightning and MLflow take to import.
"""

from __future__ import annotations

from omegaconf import DictConfig

from fer.cli import entry_point


@entry_point("config")
def main(cfg: DictConfig) -> float:
    from fer.runs.job import sweep_job  # imported after composing: see the module's doc
    from fer.runs.train import train

    return sweep_job(lambda: train(cfg).best_val_acc)


if __name__ == "__main__":
    main()
