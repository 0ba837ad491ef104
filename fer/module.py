"""The LightningModule: one network, cross-entropy, torchmetrics for every split."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score

from fer.labels import EMOTIONS, IMAGE_SIZE, NUM_CLASSES
from fer.models import build_model
from fer.norm import Normalizer
from fer.optim import configure


def test_metrics() -> MetricCollection:
    return MetricCollection({
        "acc": MulticlassAccuracy(NUM_CLASSES, average="micro"),
        "f1": MulticlassF1Score(NUM_CLASSES, average="macro"),
        "class_acc": MulticlassAccuracy(NUM_CLASSES, average="none"),
        "confmat": MulticlassConfusionMatrix(NUM_CLASSES),
    })


class FERModule(pl.LightningModule):
    """Classifies normalized faces; `config` is the resolved run config as a plain dict.

    The confusion matrices of the last test are kept in `test_results` for the artifact callback.
    """

    def __init__(self, config: dict, test_names: list[str]):
        super().__init__()
        self.save_hyperparameters(logger=False)
        cfg = OmegaConf.create(config)
        self.cfg = cfg
        self.normalizer = Normalizer(cfg.norm.name)
        self.net = build_model(cfg.model, cfg.act)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.train_acc = MulticlassAccuracy(NUM_CLASSES, average="micro")
        self.val_acc = MulticlassAccuracy(NUM_CLASSES, average="micro")
        self.val_f1 = MulticlassF1Score(NUM_CLASSES, average="macro")
        self.test_names = list(test_names)
        groups = self.test_names + (["all"] if len(self.test_names) > 1 else [])
        self.tests = nn.ModuleDict({name: test_metrics() for name in groups})
        self.test_results: dict[str, dict] = {}
        self.example_input_array = torch.zeros(1, 1, IMAGE_SIZE, IMAGE_SIZE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for images scaled to [0, 1], shape (B, 1, 48, 48)."""
        return self.net(self.normalizer(x))

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        loss = self.criterion(logits, y)
        self.train_acc(logits, y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("train_acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def on_train_epoch_start(self):
        self.log("lr", self.optimizers().param_groups[0]["lr"], on_step=False, on_epoch=True)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.val_acc(logits, y)
        self.val_f1(logits, y)
        self.log("val_loss", self.criterion(logits, y), on_step=False, on_epoch=True, prog_bar=True)
        self.log("val_acc", self.val_acc, on_step=False, on_epoch=True, prog_bar=True)
        self.log("val_f1", self.val_f1, on_step=False, on_epoch=True)

    def test_step(self, batch, batch_idx, dataloader_idx: int = 0):
        x, y = batch
        logits = self(x)
        name = self.test_names[dataloader_idx]
        self.tests[name].update(logits, y)
        if "all" in self.tests:
            self.tests["all"].update(logits, y)

    def on_test_epoch_end(self):
        """`test_<split>_acc` per named split (FER2013's public, private), `test_acc` and the per-class
        accuracies over all test rows."""
        self.test_results = {}
        overall = "all" if "all" in self.tests else self.test_names[0]
        for name, metrics in self.tests.items():
            values = metrics.compute()
            metrics.reset()
            confmat = values["confmat"].cpu()
            if name not in ("all", "test"):
                self.log(f"test_{name}_acc", values["acc"])
                self.log(f"test_{name}_f1", values["f1"])
            if name == overall:
                self.log("test_acc", values["acc"])
                self.log("test_f1", values["f1"])
                support = confmat.sum(1)
                for i, cls in enumerate(EMOTIONS):
                    if support[i] > 0:
                        self.log(f"test_acc_{cls}", values["class_acc"][i])
            self.test_results[name] = {"acc": float(values["acc"]), "confmat": confmat.tolist()}

    def predict_step(self, batch, batch_idx, dataloader_idx: int = 0):
        return self(batch[0]).softmax(dim=1)

    def configure_optimizers(self):
        return configure(self.cfg.optim, self.cfg.sched, self.parameters(), self.trainer.max_epochs,
                         self.trainer.estimated_stepping_batches)
