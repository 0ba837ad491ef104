"""Saliency maps by Captum attribution method, reduced to one non-negative map per image."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from captum.attr import (
    GuidedBackprop,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    NoiseTunnel,
    Saliency,
)
from torch import nn

from fer.models.act import ACTIVATION_TYPES
from fer.registry import Registry


def _saliency(model, x, target, layer):
    return Saliency(model).attribute(x, target=target, abs=True)


def _integrated_gradients(model, x, target, layer):
    return IntegratedGradients(model).attribute(x, baselines=torch.zeros_like(x), target=target, n_steps=32,
                                                internal_batch_size=256).abs()


def _guided_backprop(model, x, target, layer):
    return GuidedBackprop(model).attribute(x, target=target).abs()


def _gradcam(model, x, target, layer):
    if layer is None:
        raise ValueError("gradcam needs a conv layer")
    cam = LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=True)
    return LayerAttribution.interpolate(cam, x.shape[-2:], interpolate_mode="bilinear").clamp_min(0)


def _smoothgrad(model, x, target, layer):
    return NoiseTunnel(Saliency(model)).attribute(x, nt_type="smoothgrad", nt_samples=16, stdevs=0.1, target=target,
                                                  abs=True)


def guided_rule_note(model: nn.Module) -> str | None:
    """Captum's guided backprop overrides only nn.ReLU; with other activations it is plain gradients."""
    others = {type(m).__name__ for m in model.modules() if isinstance(m, ACTIVATION_TYPES) and type(m) is not nn.ReLU}
    if others and not any(isinstance(m, nn.ReLU) for m in model.modules()):
        names = ", ".join(sorted(others))
        return f"guided backprop = plain gradients here: Captum's guided rule applies to ReLU only, not {names}"
    return None


@dataclass(frozen=True)
class Method:
    attribute: Callable  # (model, x, target, layer) → attribution with x's shape
    on_layer: bool = False  # attributes to a conv layer's maps (Grad-CAM): needs a model with one
    caveat: Callable | None = None  # (network) → what the figure does not show, or None


METHODS = Registry("explain.methods", {"saliency": Method(_saliency),
                                       "integrated_gradients": Method(_integrated_gradients),
                                       "guided_backprop": Method(_guided_backprop, caveat=guided_rule_note),
                                       "gradcam": Method(_gradcam, on_layer=True),
                                       "smoothgrad": Method(_smoothgrad)})
TARGETS = Registry("explain.target", {"label": "the true class", "predicted": "the predicted class"})


def attribute(model: nn.Module, x: torch.Tensor, target: torch.Tensor, method: str,
              gradcam_layer: nn.Module | None = None) -> torch.Tensor:
    """|attribution| of `target` w.r.t. input images x (B, 1, 48, 48) in [0, 1]; returns (B, 48, 48).

    `gradcam` is Captum's LayerGradCam on `gradcam_layer` (see layers.gradcam_layer), upsampled to 48×48.
    """
    x = x.detach().clone().requires_grad_(True)
    return METHODS.get(method).attribute(model, x, target.tolist(), gradcam_layer).detach().sum(dim=1)


def normalize(maps: torch.Tensor) -> torch.Tensor:
    """Each map scaled to [0, 1] by its own maximum (all-zero maps stay zero)."""
    peak = maps.flatten(1).amax(1).clamp_min(1e-12)
    return maps / peak[:, None, None]


def mass_ratio(maps: torch.Tensor, masks: torch.Tensor) -> np.ndarray:
    """Per image: the share of attribution inside the mask divided by the mask's share of the area.

    1 means attribution spread like the area; above 1 means it concentrates on the masked regions.
    """
    masks = masks.to(maps.dtype)
    inside = (maps * masks).flatten(1).sum(1) / maps.flatten(1).sum(1).clamp_min(1e-12)
    area = masks.flatten(1).mean(1).clamp_min(1e-12)
    return (inside / area).cpu().numpy()
