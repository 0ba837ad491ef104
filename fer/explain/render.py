"""Render every configured explanation of a model into an MLflow run.

Shared by the Lightning callback (during and after training) and `python -m fer.explain` (after the
fact, from a run's checkpoint), so both produce the same figures under the same artifact paths.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import torch
from captum.attr import LayerActivation
from PIL import Image

from fer.data.splits import Split
from fer.errors import ConfigError
from fer.explain.figures import layer_output_figure, saliency_figure
from fer.explain.layers import gradcam_layer, has_conv, rectified, resolve_layer
from fer.explain.saliency import METHODS, attribute, mass_ratio, normalize
from fer.tracking.tags import EXPLAIN_NOTES


def choose_probes(split: Split, probe_ids) -> np.ndarray:
    """Rows of `split` to explain: as given, or the first row of each class (stable for the same data)."""
    if probe_ids:
        ids = np.asarray(list(probe_ids))
        bad = ids[(ids < 0) | (ids >= len(split))]
        if len(bad):
            raise ConfigError("explain.probe_ids", f"rows of the validation split (0–{len(split) - 1})", int(bad[0]))
        return ids
    return np.array([np.flatnonzero(split.labels == c)[0] for c in np.unique(split.labels[split.labels >= 0])])


@dataclass
class MlflowSink:
    """Where figures go: artifacts of one run, or (with `step`) images MLflow shows per step. `obey` runs before
    each figure and each step of a filter ascent: a stop requested meanwhile raises there, what was written stays."""

    client: object
    run_id: str
    written: list[str] = field(default_factory=list)
    obey: Callable[[], None] = lambda: None

    def figure(self, fig, path: str) -> None:
        self.obey()
        self.client.log_figure(self.run_id, fig, path)
        self.written.append(path)
        plt.close(fig)

    def image(self, fig, key: str, step: int) -> None:
        self.obey()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        plt.close(fig)
        self.client.log_image(self.run_id, Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), key=key, step=step)
        self.written.append(f"{key}@{step}")


def _probe_batch(module, split: Split, cfg):
    idx = choose_probes(split, cfg.probe_ids)
    x = torch.from_numpy(split.images[idx]).float().div(255).unsqueeze(1).to(module.device)
    y = torch.from_numpy(split.labels[idx]).to(module.device)
    with torch.no_grad():
        probs = module(x).softmax(1)
    conf, pred = probs.max(1)
    return idx, x, y, pred, conf


def render_saliency(module, split: Split, cfg, sink: MlflowSink, step: int | None = None, prefix: str = "",
                    captions: list[str] | None = None) -> dict[str, float]:
    """One figure per method (under `prefix`, each probe titled by its `captions` when given); returns the
    mean mask-mass ratio per method where the data has masks."""
    idx, x, y, pred, conf = _probe_batch(module, split, cfg)
    target = y if cfg.target == "label" else pred
    cam = gradcam_layer(module.net, cfg.gradcam_layer)
    ratios = {}
    for method in cfg.methods:
        spec = METHODS.get(method)
        if spec.on_layer and cam is None:
            continue  # no conv layer to take Grad-CAM on (DNN); said in the run's notes
        maps = normalize(attribute(module, x, target, method, gradcam_layer=cam[1] if cam else None))
        note = f"Grad-CAM on {cam[0]}" if spec.on_layer else spec.caveat(module.net) if spec.caveat else None
        title = f"{method} — target: {'true' if cfg.target == 'label' else 'predicted'} class"
        if step is not None:
            title += f" — epoch {step}"  # from 0, as the MLflow step it is logged at
        names = module.classes
        truth = None if captions else [names[i] for i in y.tolist()]  # a user's photo has no label
        fig = saliency_figure(x[:, 0].cpu().numpy(), maps.cpu().numpy(), truth, [names[i] for i in pred.tolist()],
                              conf.tolist(), title, cfg.threshold, note, method,
                              [captions[i] for i in idx] if captions else None)
        if step is None:
            sink.figure(fig, f"{prefix}saliency/{method}.png")
        else:
            sink.image(fig, f"saliency_{method}", step)
        if split.masks is not None:
            ratios[method] = float(mass_ratio(maps, torch.from_numpy(split.masks[idx]).to(maps.device)).mean())
    return ratios


def render_filters(module, cfg, sink: MlflowSink) -> None:
    from fer.explain.ascent import filters_figure, visualize_filters

    specs = list(cfg.filters.layers) if has_conv(module.net) else ["linear:0"]
    for spec in specs:
        name, layer = resolve_layer(module.net, spec, "explain.filters.layers")
        width = layer.out_channels if hasattr(layer, "out_channels") else layer.out_features
        # a conv filter's activation is its rectified output; a DNN unit's is its value (a dead ReLU has no gradient)
        target = rectified(module.net, layer)[1] if isinstance(layer, torch.nn.Conv2d) else layer
        f = cfg.filters
        result = visualize_filters(module, target, list(range(min(f.n, width))), steps=f.steps, lr=f.lr,
                                   jitter=f.jitter, rotation=f.rotation, blur_every=f.blur_every, contrast=f.contrast,
                                   each_step=sink.obey)
        title = f"{name}: inputs that maximize each filter ({f.steps} steps, contrast {f.contrast:g})"
        sink.figure(filters_figure(result, title), f"filters/{name}.png")


def render_layer_outputs(module, split: Split, cfg, sink: MlflowSink) -> None:
    idx, x, y, pred, conf = _probe_batch(module, split, cfg)
    k = min(cfg.layer_outputs.probe, len(idx) - 1)
    face = x[k:k + 1]
    for spec in cfg.layer_outputs.layers:
        name, layer = resolve_layer(module.net, spec, "explain.layer_outputs.layers")
        with torch.no_grad():
            maps = LayerActivation(module, layer).attribute(face)[0, : cfg.layer_outputs.n]
        title = f"{name} outputs for validation row {idx[k]} (true {module.classes[int(y[k])]})"
        sink.figure(layer_output_figure(face[0, 0].cpu().numpy(), maps.cpu().numpy(), title),
                    f"layer_outputs/{name}.png")


def check_layers(net, cfg) -> None:
    """Resolve every layer the config names now, so a typo fails before training rather than after it."""
    gradcam_layer(net, cfg.gradcam_layer)
    if has_conv(net):
        for spec in cfg.filters.layers:
            resolve_layer(net, spec, "explain.filters.layers")
        for spec in cfg.layer_outputs.layers:
            resolve_layer(net, spec, "explain.layer_outputs.layers")


def render_all(module, split: Split, cfg, sink: MlflowSink) -> tuple[dict[str, float], list[str]]:
    """Saliency, filters and layer outputs as configured; returns mask ratios and notes for the run."""
    was_training = module.training
    module.eval()
    notes = []
    try:
        with torch.inference_mode(False), torch.enable_grad():
            ratios = render_saliency(module, split, cfg, sink)
            if not has_conv(module.net):
                notes += [f"{m} skipped: the model has no conv layer" for m in cfg.methods if METHODS.get(m).on_layer]
            if cfg.filters.enabled:
                render_filters(module, cfg, sink)
            if cfg.layer_outputs.enabled:
                if has_conv(module.net):
                    render_layer_outputs(module, split, cfg, sink)
                else:
                    notes.append("layer outputs skipped: a DNN has no feature maps")
    finally:
        module.train(was_training)
    return ratios, notes


def render_into_run(module, split: Split, cfg, sink: MlflowSink) -> list[str]:
    """`render_all`, then the mask ratios as metrics and the notes as a tag of the run; returns the notes."""
    ratios, notes = render_all(module, split, cfg, sink)
    for method, ratio in ratios.items():
        sink.client.log_metric(sink.run_id, f"saliency_mask_ratio_{method}", ratio)
    if notes:
        sink.client.set_tag(sink.run_id, EXPLAIN_NOTES, "; ".join(notes))
    return notes
