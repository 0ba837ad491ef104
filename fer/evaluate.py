"""`python -m fer.evaluate run_id=…`: re-test a run's best checkpoint and log the results into that run."""

from __future__ import annotations

import hydra

from fer import tracking
from fer.callbacks import RunArtifacts
from fer.config import reports_config_errors  # also registers the config schemas
from fer.errors import guarded
from fer.experiment import run_name
from fer.runs import client_and_data, restore
from fer.trainer import inference_trainer


@reports_config_errors
@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
@guarded
def main(cfg) -> float:
    client, data_cfg = client_and_data(cfg)
    r = restore(client, cfg.run_id, data_cfg)
    run = client.get_run(cfg.run_id)
    exp = client.get_experiment(run.info.experiment_id)
    logger = tracking.RunLogger(experiment_name=exp.name, tracking_uri=client.tracking_uri, run_id=cfg.run_id)
    artifacts = RunArtifacts(client, cfg.run_id, run_name(r.cfg), texts={})
    trainer = inference_trainer(cfg.accelerator, logger, [artifacts])
    trainer.test(r.module, datamodule=r.datamodule, verbose=False)
    tracking.set_tags(client, cfg.run_id, {"fer.evaluated_data": f"{r.cfg.data.name}:{r.cfg.data.path}"})
    acc = float(trainer.callback_metrics["test_acc"])
    for name, res in r.module.test_results.items():
        print(f"fer: {name}: accuracy {res['acc']:.4f}")
    print(f"fer: run {cfg.run_id} re-tested: test_acc {acc:.4f} (logged into the run)")
    return acc


if __name__ == "__main__":
    main()
