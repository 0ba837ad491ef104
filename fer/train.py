"""`python -m fer.train [group=option …] [key=value …]`: train, test and track one run (or a sweep with -m).

`train(cfg)` is the whole story, top to bottom: check the config, read the data, build the model, open the run,
fit, test, close the run.
"""

from __future__ import annotations

import sys
import time

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from fer.artifacts.callback import RunArtifacts
from fer.artifacts.summary import model_summary
from fer.cli import entry_point, job_overrides, output_dir
from fer.config.validate import validate
from fer.data.datamodule import FERDataModule
from fer.data.load import load_splits
from fer.explain.callback import ExplainCallback
from fer.explain.render import check_layers
from fer.models import count_params
from fer.sweeps.callback import sweep_job, sweep_parent
from fer.sweeps.optuna_trial import trial_callback
from fer.tracking import ddp, resume, tags
from fer.tracking.provenance import description, flatten, provenance_tags, run_name
from fer.tracking.run import RunResult, TrackedRun
from fer.tracking.store import check_server
from fer.training.faults import FiniteLoss, Interruption, divergence_hint
from fer.training.module import FERModule
from fer.training.trainer import build_trainer


def train(cfg: DictConfig) -> RunResult:
    started = time.monotonic()  # trainer.budget_min counts from here
    validate(cfg)
    check_server(cfg.tracking.uri)  # a server that is down or refuses us fails in seconds, before the data is read
    ddp.check_launch(cfg)
    ddp.export_submitit_tasks()
    sweep_tags = sweep_parent()
    resumed = resume.locate(cfg, job_overrides()) if cfg.resume else resume.preempted(cfg, sweep_tags,
                                                                                       job_overrides())
    if resumed and resumed.kept:  # a continued sweep's job whose run had finished
        print(f"fer: run {resumed.kept[0]} had FINISHED: kept as it is")
        return RunResult(resumed.kept[0], "", float("nan"), resumed.kept[1])
    cfg = resumed.cfg if resumed else cfg
    splits = load_splits(cfg.data)  # bad data fails here, before a run is created
    if hint := recipe_hint(cfg, job_overrides()):
        print(hint, file=sys.stderr)
    run_tags = {**provenance_tags(job_overrides()), **sweep_tags}
    if not splits.tests:
        print("fer: note: the data has no labeled test split: test metrics are on the validation split",
              file=sys.stderr)
        splits.tests = {"val": splits.val}
        run_tags[tags.TEST_SPLIT] = "val"

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = FERDataModule(splits, cfg.data, cfg.aug)
    module = FERModule(OmegaConf.to_container(cfg, resolve=True), datamodule.test_names)
    if cfg.explain.enabled:
        check_layers(module.net, cfg.explain)  # a wrong layer name fails now, not after training
    params = {**flatten(cfg), **count_params(module.net), **module.normalizer.fit(splits.train.images),
              "data.rows_train": len(splits.train), "data.rows_val": len(splits.val),
              **{f"data.rows_test_{k}": len(v) for k, v in splits.tests.items()}}

    pruning = trial_callback(cfg)  # a trial's study that cannot be reached fails before its run opens
    name = run_name(cfg)
    run = TrackedRun.open(cfg, name, params, run_tags, (output_dir() / "checkpoints").resolve(), resumed,
                          job_overrides())
    run.log_left_out(splits)
    run.log_datasets(splits, cfg.data)
    texts = {"config.yaml": OmegaConf.to_yaml(cfg, resolve=True), "model_summary.txt": model_summary(module)}
    interruption = Interruption()
    callbacks = [RunArtifacts(run.client, run.run_id, name, texts), FiniteLoss(divergence_hint(cfg.norm.name)),
                 interruption, ddp.ShareRun(run)]
    if cfg.explain.enabled:
        callbacks.append(ExplainCallback(run.client, run.run_id, splits.val, cfg.explain))
    if pruning:
        callbacks.append(pruning)
    trainer, ckpt = build_trainer(cfg.trainer, run.logger, callbacks, run.checkpoint_dir, started)

    with run.closing(interruption):
        trainer.fit(module, datamodule=datamodule, ckpt_path=resumed.checkpoint if resumed else None,
                    weights_only=True)
        trainer.test(module, datamodule=datamodule, ckpt_path="best" if ckpt.best_model_path else None,
                     verbose=False, weights_only=True)
        test_acc = float(trainer.callback_metrics.get("test_acc", float("nan")))
        any_vote = trainer.callback_metrics.get("test_any_vote_acc")
        run.log_model(module)
        run.finish(ckpt.best_model_path, description(cfg, params, test_acc, run_tags[tags.COMMAND],
                                                     None if any_vote is None else float(any_vote)))
    best_val_acc = float(ckpt.best_model_score) if ckpt.best_model_score is not None else float("nan")
    return run.result(test_acc, best_val_acc)


LAPTOP_ACCURACY = "65.8 %"  # experiment=laptop, mean PublicTest accuracy of 3 seeds (README: Ten minutes on a laptop)


def recipe_hint(cfg: DictConfig, overrides: list[str]) -> str | None:
    """A newcomer who points fer at the real FER2013 and nothing else trains the homework's CNN for 12 epochs:
    one line names the command that trains the better model in the same ten minutes."""
    chosen = {o.lstrip("+~").partition("=")[0] for o in overrides}
    if cfg.data.name != "fer2013" or chosen & {"experiment", "model", "hparams_search"}:
        return None
    return ("fer: note: this trains the homework's compact CNN (about 57 % in 10 minutes on 2 CPU cores); "
            f"experiment=laptop trains a residual net to {LAPTOP_ACCURACY} on PublicTest in the same time: "
            f"python -m fer.train experiment=laptop data.path={cfg.data.path}")


@entry_point("config")
def main(cfg: DictConfig) -> float:
    return sweep_job(lambda: train(cfg).best_val_acc)


if __name__ == "__main__":
    main()
