"""`hydra/sweeper=fer_optuna`: Hydra finds sweepers only in the hydra_plugins namespace, so this registers the
sweeper's config and a Sweeper class that hands the search to fer/sweeps/optuna_sweeper.py, where it lives (read
that module for what the search does). fer is imported when a search starts, not when Hydra scans its plugins."""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass  # real annotations, not strings: Hydra's plugin scan runs this module outside sys.modules
class FerOptunaSweeperConf:
    _target_: str = "hydra_plugins.fer_optuna_sweeper.fer_optuna_sweeper.FerOptunaSweeper"
    n_trials: int = 20
    n_jobs: int = 1  # trials asked at once and launched together (in parallel with hydra/launcher=joblib)
    direction: str = "maximize"  # or minimize
    seed: int | None = 0  # of the TPE sampler
    storage: str | None = None  # an RDB URL (postgresql+psycopg2://…) or a journal file; null: <sweep>/optuna.journal
    study_name: str | None = None  # null: one named after the sweep folder
    pruner: str = "none"  # none | median | hyperband (fer/runs/trial.py)
    pruner_startup_trials: int = 2  # median: trials completed before any is pruned
    pruner_warmup_epochs: int = 1  # epochs a trial trains before it may be pruned
    heartbeat_s: int | None = 60  # RDB storage: heartbeat of running trials; stale after twice this
    max_retry: int = 0  # times a failed or stale trial is run again (0: a failing job aborts the search)
    params: dict[str, Any] = field(default_factory=dict)


ConfigStore.instance().store(group="hydra/sweeper", name="fer_optuna", node=FerOptunaSweeperConf, provider="fer")


class FerOptunaSweeper(Sweeper):
    def __init__(self, **settings: Any) -> None:
        from fer.sweeps.optuna_sweeper import OptunaSearch

        self.search = OptunaSearch(**settings)  # a bad setting fails here, naming its key

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context = config, hydra_context  # validate_batch_is_legal reads both
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function)

    def sweep(self, arguments: list[str]):
        return self.search.sweep(arguments, self.config, self.launcher, self.validate_batch_is_legal)
