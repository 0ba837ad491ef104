"""One training run: config → data → model → fit → test → a complete, terminated MLflow run."""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from fer import ddp, resume, tracking
from fer.callbacks import RunArtifacts
from fer.config import validate
from fer.data import load_splits
from fer.data.datamodule import FERDataModule
from fer.explain.callback import ExplainCallback
from fer.explain.render import check_layers
from fer.faults import EXIT_CODES, FiniteLoss, Interruption
from fer.models import count_params
from fer.module import FERModule
from fer.summary import model_summary
from fer.sweep import sweep_parent
from fer.trainer import build_trainer


@dataclass
class RunResult:
    run_id: str
    experiment_id: str
    test_acc: float
    best_val_acc: float


def run_name(cfg: DictConfig) -> str:
    """`<model>-<act>-<norm>-<aug>`, with the matched model for a DNN (`dnn~vgg16-…`)."""
    model = cfg.model.name + (f"~{cfg.model.match}" if cfg.model.get("match") else "")
    return cfg.run_name or f"{model}-{cfg.act.name}-{cfg.norm.name}-{cfg.aug.name}"


def job_overrides() -> list[str]:
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else sys.argv[1:]


def output_dir() -> Path:
    return Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else Path("outputs")


def fit_and_test(cfg: DictConfig) -> RunResult:
    validate(cfg)
    ddp.check_launch(cfg)
    resumed = resume.locate(cfg, job_overrides()) if cfg.resume else None
    if resumed:
        cfg = resumed.cfg
    splits = load_splits(cfg.data)  # bad data fails here, before a run is created
    tags = {**tracking.provenance_tags(job_overrides()), **sweep_parent()}
    if not splits.tests:
        print("fer: note: the data has no labeled test split: test metrics are on the validation split",
              file=sys.stderr)
        splits.tests = {"val": splits.val}
        tags["fer.test_split"] = "val"
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    dm = FERDataModule(splits, cfg.data, cfg.aug)
    module = FERModule(OmegaConf.to_container(cfg, resolve=True), dm.test_names)
    if cfg.explain.enabled:
        check_layers(module.net, cfg.explain)  # a wrong layer name fails now, not after training
    params = {**tracking.flatten(cfg), **count_params(module.net), **module.normalizer.fit(splits.train.images),
              "data.rows_train": len(splits.train), "data.rows_val": len(splits.val),
              **{f"data.rows_test_{k}": len(v) for k, v in splits.tests.items()}}
    client = tracking.client_for(cfg.tracking.uri)
    exp_id = tracking.experiment_id(client, cfg.tracking)
    name = run_name(cfg)
    logger_args = {"experiment_name": cfg.tracking.experiment, "tracking_uri": client.tracking_uri}
    joined = ddp.joined_run()
    if joined:  # another rank of rank 0's run: Lightning keeps it from logging, fer from writing
        run_id, ckpt_dir = joined
        logger = tracking.RunLogger(**logger_args, run_id=run_id)
    elif resumed:
        run_id, ckpt_dir = resumed.run_id, resumed.checkpoint_dir
        client.update_run(run_id, status="RUNNING")
        logger = resume.ResumedLogger(**logger_args, run_id=run_id, logged=resumed.logged)
        print(f"fer: resuming run {name} ({run_id}) from {resumed.checkpoint or 'its start (no epoch had ended)'}")
    else:
        ckpt_dir = (output_dir() / "checkpoints").resolve()
        run_id = tracking.start_run(client, exp_id, name, params, {**tags, resume.CHECKPOINT_DIR_TAG: str(ckpt_dir)})
        logger = tracking.RunLogger(**logger_args, run_id=run_id)
    ddp.share_run(run_id, ckpt_dir)
    if splits.skipped and not joined:
        tracking.log_skipped_rows(client, run_id, splits.skipped)
    texts = {"config.yaml": OmegaConf.to_yaml(cfg, resolve=True), "model_summary.txt": model_summary(module)}
    interruption = Interruption()
    callbacks = [RunArtifacts(client, run_id, name, texts), FiniteLoss(), interruption]
    if cfg.explain.enabled:
        callbacks.append(ExplainCallback(client, run_id, splits.val, cfg.explain))
    trainer, ckpt = build_trainer(cfg.trainer, logger, callbacks, ckpt_dir)
    try:
        trainer.fit(module, datamodule=dm, ckpt_path=resumed.checkpoint if resumed else None,
                    weights_only=True)
        trainer.test(module, datamodule=dm, ckpt_path="best" if ckpt.best_model_path else None, verbose=False,
                     weights_only=True)
        if joined:
            return RunResult(run_id, exp_id, float("nan"), float("nan"))
        if ckpt.best_model_path:
            client.log_artifact(run_id, ckpt.best_model_path, "checkpoints")
            tracking.set_tags(client, run_id, {"fer.checkpoint": f"checkpoints/{Path(ckpt.best_model_path).name}"})
        client.set_terminated(run_id, "FINISHED")
    except (KeyboardInterrupt, SystemExit) as e:
        if joined:
            raise
        cause = interruption.cause or ("Ctrl-C" if isinstance(e, KeyboardInterrupt) else None)
        client.set_terminated(run_id, "KILLED")
        last = ckpt_dir / "last.ckpt"
        print(f"fer: run {name} ({run_id}) KILLED by {cause or 'an exit'}; last checkpoint: "
              f"{last if last.is_file() else 'none (no epoch had ended)'}", file=sys.stderr)
        print(f"fer: resume it with: {resume.resume_command(run_id, job_overrides())}", file=sys.stderr, flush=True)
        if cause:
            raise SystemExit(EXIT_CODES[cause]) from None
        raise
    except BaseException:
        if joined:
            raise
        client.log_text(run_id, traceback.format_exc(), "error.txt")
        client.set_terminated(run_id, "FAILED")
        raise
    result = RunResult(run_id, exp_id, float(trainer.callback_metrics["test_acc"]),
                       float(ckpt.best_model_score) if ckpt.best_model_score is not None else float("nan"))
    print(f"fer: run {name} ({run_id}) finished: test_acc {result.test_acc:.4f}, "
          f"best val_acc {result.best_val_acc:.4f}")
    print(f"fer: open it with: {tracking.ui_command(cfg.tracking)}")
    print(f"fer:   then {tracking.run_url(cfg.tracking, exp_id, run_id)}")
    return result
