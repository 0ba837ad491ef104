"""Lightning callbacks that write what describes a run into its MLflow artifacts."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytorch_lightning as pl
from mlflow.tracking import MlflowClient

from fer.artifacts.confusion import confused_pairs_markdown, confusion_json
from fer.artifacts.figures import confusion_figure, training_curves_figure

CURVES = ("train_acc", "val_acc", "train_loss", "val_loss")


class RunArtifacts(pl.Callback):
    """`texts` (config.yaml, model_summary.txt) when fit starts; after test, the confusion matrix (png and
    json), confused_pairs.md and curves.png, read back from the metrics MLflow holds."""

    def __init__(self, client: MlflowClient, run_id: str, title: str, texts: dict[str, str]):
        self.client, self.run_id, self.title, self.texts = client, run_id, title, texts

    def on_fit_start(self, trainer, pl_module):
        if trainer.is_global_zero:
            for path, text in self.texts.items():
                self.client.log_text(self.run_id, text, path)

    def on_test_end(self, trainer, pl_module):
        if not trainer.is_global_zero or not pl_module.test_results:
            return
        results = pl_module.test_results
        main = results.get("all") or next(iter(results.values()))
        counts, classes = np.asarray(main["confmat"]), pl_module.classes
        doc = confusion_json(counts, classes)
        if len(results) > 1:
            doc["splits"] = {k: confusion_json(np.asarray(v["confmat"]), classes) for k, v in results.items()
                             if k != "all"}
        self.client.log_dict(self.run_id, doc, "confusion_matrix.json")
        self.client.log_text(self.run_id, confused_pairs_markdown(counts, classes), "confused_pairs.md")
        self.log_figure(confusion_figure(counts, f"{self.title} — test accuracy {main['acc']:.1%}", classes),
                        "confusion_matrix.png")
        history = {k: sorted((m.step, m.value) for m in self.client.get_metric_history(self.run_id, k))
                   for k in CURVES}
        self.log_figure(training_curves_figure(history, self.title), "curves.png")

    def log_figure(self, fig, path: str) -> None:
        self.client.log_figure(self.run_id, fig, path)
        plt.close(fig)
