"""How a run ends: each way a run's block can be left maps to one run status and exit code, a requested stop waits
for a safe place, and each launcher's abilities come from one table."""

from __future__ import annotations

import pytest
from helpers import tiny
from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from omegaconf import OmegaConf
from pytorch_lightning.utilities.exceptions import SIGTERMException

from fer.errors import EXIT_CODES
from fer.runs.ending import Interruption, Pruned, Stopped, StopRequests, ending
from fer.runs.launchers import LAUNCHERS, OTHER, launcher_of
from fer.training.faults import NonFiniteLoss
from fer.training.trainer import build_trainer


@pytest.mark.parametrize("exception,signal_cause,status,cause,exit_code", [
    (KeyboardInterrupt(), None, "KILLED", "Ctrl-C", 130),
    (SystemExit(1), "SIGTERM", "KILLED", "SIGTERM", 143),  # Lightning's exit after the signal it saw
    (SIGTERMException(), None, "KILLED", "SIGTERM", 143),
    (Stopped("preemption"), None, "KILLED", "preemption", EXIT_CODES["preemption"]),
    (SystemExit(0), None, "KILLED", None, None),  # an exit nobody asked for by signal goes on up as it is
    (Pruned("epoch 1: val_acc 0.2000"), None, "KILLED", "pruned", None),
    (NonFiniteLoss("diverged"), None, "FAILED", None, None),
    (RuntimeError("a bug"), None, "FAILED", None, None),
])
def test_every_way_out_of_a_run_maps_to_one_status_and_exit(exception, signal_cause, status, cause, exit_code):
    end = ending(exception, signal_cause)
    assert (end.status, end.cause, end.exit_code) == (status, cause, exit_code)
    assert end.detail == (str(exception) if cause == "pruned" else "")


def test_a_requested_stop_waits_for_the_next_batch_or_the_end_of_an_upload(tmp_path):
    """What a sweep's worker does on SIGTERM: nothing at once (a handler's exception can land in a garbage
    collector's callback and be dropped), then Stopped at the next training batch, or when an upload ends."""
    stops = StopRequests()
    with pytest.raises(Stopped, match="SIGTERM"), stops.deferred():
        stops.request("SIGTERM")
        uploaded = True
    assert uploaded
    cfg, dm, module = tiny()
    interruption = Interruption(stops)
    trainer, _ = build_trainer(cfg.trainer, False, [interruption], tmp_path)
    with pytest.raises(SystemExit):  # Lightning ends an interrupted fit with exit 1; the callback knows why
        trainer.fit(module, datamodule=dm)
    assert interruption.cause == "SIGTERM" and trainer.global_step == 0


def test_the_launcher_table_knows_each_launcher_hydra_offers_fer_by_its_real_target():
    """A launcher whose class moved would silently fall back to OTHER: the table's keys are checked against the
    targets Hydra's plugins register. Only submitit gives a job its own allocation (DDP) and preempts it."""
    Plugins.instance()  # the plugin scan registers the launchers' configs
    registered = ConfigStore.instance().repo["hydra"]["launcher"]
    targets = {name.removesuffix(".yaml"): node.node._target_ for name, node in registered.items()}
    assert {name: LAUNCHERS[target].name for name, target in targets.items()} == {
        "basic": "basic", "joblib": "joblib", "submitit_local": "submitit_local", "submitit_slurm": "submitit_slurm"}
    assert {launcher.name for launcher in LAUNCHERS.values() if launcher.ddp} == {"submitit_local", "submitit_slurm"}
    assert {launcher.name for launcher in LAUNCHERS.values() if not launcher.stops_here} == {"joblib"}
    assert launcher_of(OmegaConf.create({"_target_": "some.other.Launcher"})) is OTHER
