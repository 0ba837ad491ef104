"""Lightning's MLflow logger on a run fer opened, and its variant for a resumed run."""

from __future__ import annotations

from pytorch_lightning.loggers import MLFlowLogger

from fer.tracking.checkpoints import CheckpointCopies
from fer.tracking.store import delivering


class RunLogger(MLFlowLogger):
    """Lightning's MLFlowLogger on a run fer created: epoch-level metrics use the epoch as their step, they
    are written through the store's `DeliveringClient` (in order with fer's other writes), checkpoints are
    copied into the run every `checkpoint_upload_every` epochs (fer/tracking/checkpoints.py), and the run is
    left open at the end of fit (fer terminates it after testing and artifacts)."""

    def __init__(self, experiment_name: str, tracking_uri: str, run_id: str, step: int | None = None,
                 checkpoint_upload_every: int = 0):
        super().__init__(experiment_name=experiment_name, tracking_uri=tracking_uri, run_id=run_id)
        self.step = step  # every metric at this step (a re-test's) instead of its epoch
        self._mlflow_client = delivering(tracking_uri)
        self._experiment_id = self._mlflow_client.get_run(run_id).info.experiment_id
        self._initialized = True  # Lightning would look the run up again at its first write
        self.copies = CheckpointCopies(self._mlflow_client, run_id, checkpoint_upload_every)

    def log_metrics(self, metrics, step=None):
        if "epoch" in metrics:
            step = int(metrics["epoch"])
            metrics = {k: v for k, v in metrics.items() if k != "epoch"}
        super().log_metrics(metrics, step if self.step is None else self.step)

    def after_save_checkpoint(self, checkpoint_callback) -> None:
        self.copies.saved(checkpoint_callback)

    def finalize(self, status: str = "success") -> None:
        pass


class ResumedLogger(RunLogger):
    """fer's run logger that leaves out the (metric, epoch) values the run already holds."""

    def __init__(self, *args, logged: set[tuple[str, int]], **kwargs):
        super().__init__(*args, **kwargs)
        self.logged = logged

    def log_metrics(self, metrics, step=None):
        at = int(metrics["epoch"]) if "epoch" in metrics else step
        fresh = {k: v for k, v in metrics.items() if k == "epoch" or (k, at) not in self.logged}
        if set(fresh) - {"epoch"}:
            super().log_metrics(fresh, step)
