"""The LightningModule: one network, cross-entropy (or FER+'s label-distribution losses), torchmetrics for every
split, test-time augmentation. The class set comes with the data and is kept in the checkpoint."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from torch import nn
from torch.nn import functional as F
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score

from fer.data.batch import Batch
from fer.labels import CLASS_SETS, IMAGE_SIZE
from fer.models import create_model
from fer.models.norm import Normalizer
from fer.training import tta
from fer.training.optim import configure

MULTILABEL_EPSILON = 0.001  # the paper's floor under every class's target in multilabel mode


def class_set(cfg) -> tuple[str, ...]:
    """The class names of the run config `cfg`, in label order."""
    return CLASS_SETS.get(cfg.data.get("classes", "fer2013"))


def test_metrics(classes: int) -> MetricCollection:
    return MetricCollection({
        "acc": MulticlassAccuracy(classes, average="micro"),
        "f1": MulticlassF1Score(classes, average="macro"),
        "class_acc": MulticlassAccuracy(classes, average="none"),
        "confmat": MulticlassConfusionMatrix(classes),
    })


def label_mode_loss(logits: torch.Tensor, targets: torch.Tensor, mode: str, smoothing: float) -> torch.Tensor:
    """The training loss against FER+ label distributions, by `data.label_mode` (as the paper's `cost_func`):
    majority, crossentropy: cross-entropy against the target (one-hot, or the vote shares); probability: against
    a label drawn from the shares, anew each step; multilabel: −log of the likeliest accepted class's
    probability, so predicting any class a good share of annotators chose costs little."""
    if mode == "probability":
        return F.cross_entropy(logits, torch.multinomial(targets, 1).squeeze(1), label_smoothing=smoothing)
    if mode == "multilabel":
        accepted = (1 - MULTILABEL_EPSILON) * (targets > 0) + MULTILABEL_EPSILON
        return -(accepted.log() + logits.log_softmax(1)).amax(1).mean()
    return F.cross_entropy(logits, targets, label_smoothing=smoothing)


def any_vote_hits(logits: torch.Tensor, shares: torch.Tensor) -> torch.Tensor:
    """1 where the predicted class got at least one annotator's vote, else 0."""
    return (shares.gather(1, logits.argmax(1, keepdim=True)).squeeze(1) > 0).float()


class FERModule(pl.LightningModule):
    """Classifies normalized faces; `config` is the resolved run config as a plain dict. Its `data.classes` names
    the classes (FER2013's seven in configs from before class sets).

    Each step gets a `Batch`; where it has label distributions (FER+), training fits the targets by
    `data.label_mode`, and evaluation also counts the predictions at least one annotator voted for
    (`*_any_vote_acc`); accuracy stays against the label (FER+'s majority). The losses are logged with the batch's
    size given, since Lightning would find a `Batch` without targets ambiguous.
    The confusion matrices of the last test are kept in `test_results` for the artifact callback.
    With `trainer.compile`, the steps of a fit (and the test after it) run `forward` through torch.compile;
    `forward` itself stays eager for explanations and restored models.
    """

    _compiled = None  # torch.compile(self.forward), made when a fit starts

    def __init__(self, config: dict, test_names: list[str]):
        super().__init__()
        self.save_hyperparameters(logger=False)
        cfg = OmegaConf.create(config)
        self.cfg = cfg
        self.classes = class_set(cfg)
        n = len(self.classes)
        self.normalizer = Normalizer(cfg.norm.name)
        self.net = create_model(cfg.model, cfg.act, n)
        if cfg.trainer.get("channels_last"):
            self.net = self.net.to(memory_format=torch.channels_last)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.label_mode = cfg.data.get("label_mode", "majority")
        # no argument checks per step: each would wait for the GPU
        self.train_acc = MulticlassAccuracy(n, average="micro", validate_args=False)
        self.val_acc = MulticlassAccuracy(n, average="micro", validate_args=False)
        self.val_f1 = MulticlassF1Score(n, average="macro", validate_args=False)
        self.val_any_vote = MeanMetric()
        self.tta = cfg.get("test", {}).get("tta", "none")
        self.batch_size = cfg.data.batch_size
        self.test_names = list(test_names)
        groups = self.test_names + (["all"] if len(self.test_names) > 1 else [])
        self.tests = nn.ModuleDict({name: test_metrics(n) for name in groups})
        self.test_any_vote = nn.ModuleDict({name: MeanMetric() for name in groups})
        self.test_results: dict[str, dict] = {}
        self.example_input_array = torch.zeros(1, 1, IMAGE_SIZE, IMAGE_SIZE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for images scaled to [0, 1], shape (B, 1, 48, 48)."""
        return self.net(self.normalizer(x))

    def __getstate__(self):
        """Copies (the EMA's average, pickles) leave the compiled forward behind: it is bound to this module."""
        state = super().__getstate__()
        state.pop("_compiled", None)
        return state

    @property
    def fixed_batch_shape(self) -> bool:
        """Whether training batches should all be full (the data module drops a short last one): compiled
        steps would otherwise compile again for it."""
        return bool(self.cfg.trainer.get("compile"))

    def on_fit_start(self):
        if self.fixed_batch_shape:
            self.compile_forward()

    def compile_forward(self) -> None:
        """Route the steps through torch.compile (once; later fits of this module reuse it)."""
        if self._compiled is None:
            self._compiled = torch.compile(self.forward)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """`forward` for the steps: compiled when a fit compiled it. A short evaluation batch is padded to
        `data.batch_size` there, so the compiled graph sees one shape (training batches are full then)."""
        if self._compiled is None:
            return self(x)
        n = x.shape[0]
        if not self.training and n < self.batch_size:
            x = torch.cat([x, x.new_zeros(self.batch_size - n, *x.shape[1:])])
        return self._compiled(x)[:n]

    def training_step(self, batch: Batch, batch_idx):
        x, y = batch.images, batch.labels
        logits = self.logits(x)
        if batch.targets is not None:
            loss = label_mode_loss(logits, batch.targets, self.label_mode, self.cfg.label_smoothing)
        else:
            loss = self.criterion(logits, y)
        self.train_acc(logits, y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True,
                 batch_size=len(y))
        self.log("train_acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def on_train_epoch_start(self):
        self.log("lr", self.optimizers().param_groups[0]["lr"], on_step=False, on_epoch=True, sync_dist=True)

    def validation_step(self, batch: Batch, batch_idx):
        x, y, shares = batch.images, batch.labels, batch.targets  # outside training the targets are vote shares
        logits = self.logits(x)
        self.val_acc(logits, y)
        self.val_f1(logits, y)
        self.log("val_loss", self.criterion(logits, y), on_step=False, on_epoch=True, prog_bar=True, sync_dist=True,
                 batch_size=len(y))
        self.log("val_acc", self.val_acc, on_step=False, on_epoch=True, prog_bar=True)
        self.log("val_f1", self.val_f1, on_step=False, on_epoch=True)
        if shares is not None:
            self.val_any_vote(any_vote_hits(logits, shares))
            self.log("val_any_vote_acc", self.val_any_vote, on_step=False, on_epoch=True)

    def test_step(self, batch: Batch, batch_idx, dataloader_idx: int = 0):
        y, shares = batch.labels, batch.targets
        probs = tta.probabilities(self.logits, batch.images, self.tta)
        name = self.test_names[dataloader_idx]
        for group in (name, "all") if "all" in self.tests else (name,):
            self.tests[group].update(probs, y)
            if shares is not None:
                self.test_any_vote[group].update(any_vote_hits(probs, shares))

    def on_test_epoch_end(self):
        """`test_<split>_acc` per named split (FER2013's public, private), `test_acc` and the per-class
        accuracies over all test rows."""
        self.test_results = {}
        log = partial(self.log, sync_dist=True)  # the values are already global (torchmetrics syncs): a no-op mean
        overall = "all" if "all" in self.tests else self.test_names[0]
        for name, metrics in self.tests.items():
            values = metrics.compute()
            metrics.reset()
            confmat = values["confmat"].cpu()
            voted = self.test_any_vote[name]
            if voted.update_called:
                values["any_vote_acc"] = voted.compute()
                voted.reset()
            shown = [k for k in ("acc", "f1", "any_vote_acc") if k in values]
            if name not in ("all", "test"):
                for k in shown:
                    log(f"test_{name}_{k}", values[k])
            if name == overall:
                for k in shown:
                    log(f"test_{k}", values[k])
                support = confmat.sum(1)
                for i, cls in enumerate(self.classes):
                    if support[i] > 0:
                        log(f"test_acc_{cls}", values["class_acc"][i])
            self.test_results[name] = {"acc": float(values["acc"]), "confmat": confmat.tolist()}

    def predict_step(self, batch: Batch, batch_idx, dataloader_idx: int = 0):
        return tta.probabilities(self.logits, batch.images, self.tta)

    @torch.no_grad()
    def classify(self, faces: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Class probabilities (test-time augmentation included) of uint8 faces (N, 48, 48), on the module's
        device, in eval mode: what fer.predict gives for photos and the exported MLflow Model reproduces."""
        was_training = self.training
        self.eval()
        try:
            out = [tta.probabilities(self, torch.from_numpy(faces[i:i + batch_size]).to(self.device).float()
                                     .div(255).unsqueeze(1), self.tta).cpu()
                   for i in range(0, len(faces), batch_size)]
        finally:
            self.train(was_training)
        return torch.cat(out).numpy() if out else np.zeros((0, len(self.classes)), np.float32)

    def configure_optimizers(self):
        return configure(self.cfg.optim, self.cfg.sched, self.parameters(), self.trainer.max_epochs,
                         self.trainer.estimated_stepping_batches)
