"""How a run ends: each way a run's block can be left maps to one run status and exit code, a requested stop waits
for a safe place (a batch, an upload, a spool's next call), each launcher's abilities come from one table, and a
command outside training ends a stop in one line."""

from __future__ import annotations

import shutil
import signal

import pytest
from helpers import tiny
from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf
from pytorch_lightning.utilities.exceptions import SIGTERMException

from fer.errors import EXIT_CODES, guarded
from fer.runs.ending import Interruption, Pruned, ending
from fer.runs.launchers import LAUNCHERS, OTHER, launcher_of
from fer.stops import Stopped, StopRequests
from fer.tracking import delivering_client
from fer.tracking import spool as spool_module
from fer.tracking.spool import Spool
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


@pytest.mark.parametrize("stop,line,code", [(KeyboardInterrupt(), "fer: stopped by Ctrl-C", 130),
                                            (Stopped("SIGTERM"), "fer: stopped by SIGTERM", 143)])
def test_a_command_that_restores_a_run_ends_a_stop_in_one_line(capsys, stop, line, code):
    """fer.evaluate, fer.explain, fer.predict, fer.demo: a stop they do not handle themselves is one line; a
    training command leaves it to the run's own ending."""
    def interrupted():
        raise stop

    with pytest.raises(SystemExit) as ended:
        guarded(interrupted, say_stops=True)()
    assert ended.value.code == code and capsys.readouterr().err.strip() == line
    with pytest.raises(KeyboardInterrupt):
        guarded(interrupted)()


def test_ctrl_c_during_a_spool_replay_keeps_exactly_the_calls_not_delivered(tmp_path, empty_store, monkeypatch,
                                                                           capsys):
    """SIGINT while the third of six kept calls is delivered: that call lands, the stop waits for it, and the
    spool holds the other three, so the same command goes on without delivering any twice."""
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("fer")).info.run_id
    monkeypatch.setattr(spool_module, "SPOOL_ROOT", tmp_path / "mlflow-spool")
    spool = Spool.create(uri)
    calls = [{"op": "log_batch", "run_id": run_id, "metrics": [["loss", float(k), 1000 + k, k]], "params": [],
              "tags": []} for k in range(6)]
    spool.save(calls)
    delivered = []

    def deliver_then_signal(client, call, root):
        spool_module.deliver(client, call, root)
        delivered.append(call)
        if len(delivered) == 3:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(delivering_client, "deliver", deliver_then_signal)
    with pytest.raises(SystemExit) as ended:
        delivering_client.replay(spool.root)
    assert ended.value.code == 130
    assert [m.step for m in client.get_metric_history(run_id, "loss")] == [0, 1, 2]
    assert Spool(spool.root).load() == calls[3:]
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"fer: stopped by Ctrl-C: 3 of 6 calls delivered; the other 3 stay in {spool.root}: run the same command "
        "to go on")
    assert delivering_client.replay(spool.root) and [m.step for m in client.get_metric_history(run_id, "loss")] == [
        0, 1, 2, 3, 4, 5]
