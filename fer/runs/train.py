"""A training run from its composed config to its end, top to bottom: begin the run's session (the config checked,
the run to continue found), read the data, build the model, open the run, fit, test, close the run. `python -m
fer.train` (fer/train.py) calls `train(cfg)` once Hydra has composed the config."""

from __future__ import annotations

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from fer.artifacts.summary import model_summary
from fer.console import say
from fer.data.datamodule import FERDataModule
from fer.data.load import load_splits
from fer.explain.render import check_layers
from fer.models import count_params
from fer.runs.run import RunResult
from fer.runs.session import Session
from fer.tracking.provenance import description, flatten, run_name
from fer.training.module import FERModule
from fer.training.trainer import build_trainer


def train(cfg: DictConfig) -> RunResult:
    session = Session.begin(cfg)  # the config, the store and the launcher checked; the run to continue found
    if session.kept:  # a continued sweep's job whose run had finished
        return session.kept
    cfg = session.cfg
    splits = load_splits(cfg.data)  # bad data fails here, before a run is created
    if hint := recipe_hint(cfg, session.overrides):
        say(hint, err=True)
    if not splits.tests:
        say("note: the data has no labeled test split: test metrics are on the validation split", err=True)
        splits.tests = {"val": splits.val}

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = FERDataModule(splits, cfg.data, cfg.aug)
    module = FERModule(OmegaConf.to_container(cfg, resolve=True), datamodule.test_names)
    if cfg.explain.enabled:
        check_layers(module.net, cfg.explain)  # a wrong layer name fails now, not after training
    params = {**flatten(cfg), **count_params(module.net), **module.normalizer.fit(splits.train.images),
              "data.rows_train": len(splits.train), "data.rows_val": len(splits.val),
              **{f"data.rows_test_{k}": len(v) for k, v in splits.tests.items()}}
    texts = {"config.yaml": OmegaConf.to_yaml(cfg, resolve=True), "model_summary.txt": model_summary(module)}

    with session.open(run_name(cfg), params, splits, texts) as run:
        trainer, ckpt = build_trainer(cfg.trainer, run.logger, run.callbacks, run.checkpoint_dir, session.started)
        trainer.fit(module, datamodule=datamodule, ckpt_path=session.resumed.checkpoint if session.resumed else None,
                    weights_only=True)
        trainer.test(module, datamodule=datamodule, ckpt_path="best" if ckpt.best_model_path else None,
                     verbose=False, weights_only=True)
        test_acc = float(trainer.callback_metrics.get("test_acc", float("nan")))
        any_vote = trainer.callback_metrics.get("test_any_vote_acc")
        run.log_model(module)
        run.finish(ckpt.best_model_path, description(cfg, params, test_acc, run.command,
                                                     None if any_vote is None else float(any_vote)))
    best_val_acc = float(ckpt.best_model_score) if ckpt.best_model_score is not None else float("nan")
    return run.result(test_acc, best_val_acc)


LAPTOP_ACCURACY = "66.5 %"  # experiment=laptop in fp32 (a laptop without bf16 units), mean PublicTest accuracy of 3
# seeds (README: Ten minutes on a laptop)


def recipe_hint(cfg: DictConfig, overrides: list[str]) -> str | None:
    """A newcomer who points fer at the real FER2013 and nothing else trains the homework's CNN for 12 epochs:
    one line names the command that trains the better model in the same ten minutes."""
    chosen = {o.lstrip("+~").partition("=")[0] for o in overrides}
    if cfg.data.name != "fer2013" or chosen & {"experiment", "model", "hparams_search"}:
        return None
    return ("note: this trains the homework's compact CNN (about 57 % in 6 to 9 minutes on 2 CPU cores); "
            f"experiment=laptop trains a residual net to {LAPTOP_ACCURACY} on PublicTest in 10 minutes: "
            f"python -m fer.train experiment=laptop data.path={cfg.data.path}")
