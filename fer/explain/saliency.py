"""Saliency maps by Captum attribution method, reduced to one non-negative map per image."""

from __future__ import annotations

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

METHODS = ("saliency", "integrated_gradients", "guided_backprop", "gradcam", "smoothgrad")


def attribute(model: nn.Module, x: torch.Tensor, target: torch.Tensor, method: str,
              gradcam_layer: nn.Module | None = None) -> torch.Tensor:
    """|attribution| of `target` w.r.t. input images x (B, 1, 48, 48) in [0, 1]; returns (B, 48, 48).

    `gradcam` is Captum's LayerGradCam on `gradcam_layer` (see layers.gradcam_layer), upsampled to 48×48.
    """
    x = x.detach().clone().requires_grad_(True)
    target = target.tolist()
    if method == "saliency":
        a = Saliency(model).attribute(x, target=target, abs=True)
    elif method == "integrated_gradients":
        a = IntegratedGradients(model).attribute(x, baselines=torch.zeros_like(x), target=target, n_steps=32,
                                                 internal_batch_size=256).abs()
    elif method == "guided_backprop":
        a = GuidedBackprop(model).attribute(x, target=target).abs()
    elif method == "smoothgrad":
        a = NoiseTunnel(Saliency(model)).attribute(x, nt_type="smoothgrad", nt_samples=16, stdevs=0.1,
                                                   target=target, abs=True)
    elif method == "gradcam":
        if gradcam_layer is None:
            raise ValueError("gradcam needs a conv layer")
        cam = LayerGradCam(model, gradcam_layer).attribute(x, target=target, relu_attributions=True)
        a = LayerAttribution.interpolate(cam, x.shape[-2:], interpolate_mode="bilinear").clamp_min(0)
    else:
        raise ValueError(f"unknown saliency method {method!r}")
    return a.detach().sum(dim=1)


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


def guided_rule_note(model: nn.Module) -> str | None:
    """Captum's guided backprop overrides only nn.ReLU; with other activations it is plain gradients."""
    others = {type(m).__name__ for m in model.modules()
              if isinstance(m, nn.SELU | nn.ELU | nn.GELU | nn.LeakyReLU)}
    if others and not any(isinstance(m, nn.ReLU) for m in model.modules()):
        names = ", ".join(sorted(others))
        return f"guided backprop = plain gradients here: Captum's guided rule applies to ReLU only, not {names}"
    return None
