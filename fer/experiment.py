"""One training run: config → data → model → fit → test → a complete, terminated MLflow run."""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from fer import tracking
from fer.callbacks import RunArtifacts
from fer.config import validate
from fer.data import load_splits
from fer.data.datamodule import FERDataModule
from fer.explain.callback import ExplainCallback
from fer.explain.render import check_layers
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
    client = tracking.client_for(cfg.tracking)
    exp_id = tracking.experiment_id(client, cfg.tracking)
    name = run_name(cfg)
    run_id = tracking.start_run(client, exp_id, name, params, tags)
    if splits.skipped:
        tracking.log_skipped_rows(client, run_id, splits.skipped)
    logger = tracking.RunLogger(experiment_name=cfg.tracking.experiment, tracking_uri=client.tracking_uri,
                                run_id=run_id)
    texts = {"config.yaml": OmegaConf.to_yaml(cfg, resolve=True), "model_summary.txt": model_summary(module)}
    artifacts = RunArtifacts(client, run_id, name, texts)
    callbacks = [artifacts]
    if cfg.explain.enabled:
        callbacks.append(ExplainCallback(client, run_id, splits.val, cfg.explain))
    trainer, ckpt = build_trainer(cfg.trainer, logger, callbacks, output_dir() / "checkpoints")
    try:
        trainer.fit(module, datamodule=dm)
        trainer.test(module, datamodule=dm, ckpt_path="best" if ckpt.best_model_path else None, verbose=False)
        if ckpt.best_model_path:
            client.log_artifact(run_id, ckpt.best_model_path, "checkpoints")
            tracking.set_tags(client, run_id, {"fer.checkpoint": f"checkpoints/{Path(ckpt.best_model_path).name}"})
        client.set_terminated(run_id, "FINISHED")
    except (KeyboardInterrupt, SystemExit):
        client.set_terminated(run_id, "KILLED")
        raise
    except BaseException:
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
