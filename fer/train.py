"""`python -m fer.train [group=option …] [key=value …]`: train, test and track one run (or a sweep with -m)."""

from __future__ import annotations

import hydra

from fer.config import reports_config_errors  # also registers the config schemas
from fer.errors import guarded
from fer.experiment import fit_and_test


@reports_config_errors
@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
@guarded
def main(cfg) -> float:
    return fit_and_test(cfg).best_val_acc


if __name__ == "__main__":
    main()
