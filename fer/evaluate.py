"""`python -m fer.evaluate (run_id=… | model=models:/…)`: re-test a run's best checkpoint and log the results
(and the model as an MLflow Model carrying them) into that run."""

from __future__ import annotations

from fer.artifacts.callback import RunArtifacts
from fer.cli import entry_point
from fer.console import say
from fer.runs.restore import restore, run_to_restore
from fer.runs.validate import validate_tracking
from fer.tracking import tags
from fer.tracking.logged_model import log_and_register, test_step
from fer.tracking.logger import RunLogger
from fer.tracking.provenance import run_name
from fer.tracking.store import set_tags
from fer.training.trainer import inference_trainer


@entry_point("evaluate", takes_model_uri=True)
def main(cfg) -> float:
    validate_tracking(cfg.tracking)
    run_id = run_to_restore(cfg)
    client, r = restore(cfg.tracking.uri, run_id, cfg.get("data"))
    run = client.get_run(run_id)
    exp = client.get_experiment(run.info.experiment_id)
    # the re-test comes after everything the run holds, so the model logged with it carries only its metrics
    logger = RunLogger(experiment_name=exp.name, tracking_uri=client.tracking_uri, run_id=run_id,
                       step=test_step(client, run_id) + 1)
    artifacts = RunArtifacts(client, run_id, run_name(r.cfg), texts={})
    trainer = inference_trainer(cfg.accelerator, logger, [artifacts])
    trainer.test(r.module, datamodule=r.datamodule, verbose=False)
    set_tags(client, run_id, {tags.EVALUATED_DATA: f"{r.cfg.data.name}:{r.cfg.data.path}"})
    acc = float(trainer.callback_metrics["test_acc"])
    for name, res in r.module.test_results.items():
        say(f"{name}: accuracy {res['acc']:.4f}")
    log_and_register(client, run_id, r.module, cfg.tracking)
    say(f"run {run_id} re-tested: test_acc {acc:.4f} (logged into the run)")
    return acc


if __name__ == "__main__":
    main()
