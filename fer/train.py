"""`python -m fer.train [group=option …] [key=value …]`: train, test and track one run (or a sweep with -m)."""

from __future__ import annotations

import hydra

import fer.config  # noqa: F401  (registers the config schemas)
from fer.errors import guarded
from fer.experiment import fit_and_test


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
@guarded
def main(cfg) -> float:
    return fit_and_test(cfg).best_val_acc


if __name__ == "__main__":
    main()
