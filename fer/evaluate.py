"""`python -m fer.evaluate run_id=…`: re-test a run's best checkpoint and log the results into that run."""

from __future__ import annotations

from fer.artifacts.callback import RunArtifacts
from fer.cli import entry_point, restore
from fer.tracking import tags
from fer.tracking.logger import RunLogger
from fer.tracking.provenance import run_name
from fer.tracking.store import set_tags
from fer.training.trainer import inference_trainer


@entry_point("evaluate")
def main(cfg) -> float:
    client, r = restore(cfg.tracking.uri, cfg.run_id, cfg.get("data"))
    run = client.get_run(cfg.run_id)
    exp = client.get_experiment(run.info.experiment_id)
    logger = RunLogger(experiment_name=exp.name, tracking_uri=client.tracking_uri, run_id=cfg.run_id)
    artifacts = RunArtifacts(client, cfg.run_id, run_name(r.cfg), texts={})
    trainer = inference_trainer(cfg.accelerator, logger, [artifacts])
    trainer.test(r.module, datamodule=r.datamodule, verbose=False)
    set_tags(client, cfg.run_id, {tags.EVALUATED_DATA: f"{r.cfg.data.name}:{r.cfg.data.path}"})
    acc = float(trainer.callback_metrics["test_acc"])
    for name, res in r.module.test_results.items():
        print(f"fer: {name}: accuracy {res['acc']:.4f}")
    print(f"fer: run {cfg.run_id} re-tested: test_acc {acc:.4f} (logged into the run)")
    return acc


if __name__ == "__main__":
    main()
