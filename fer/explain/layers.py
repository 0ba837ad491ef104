"""Finding the layers an explanation is about: by module name, or by kind and index (`conv:-1`)."""

from __future__ import annotations

from torch import nn

from fer.errors import ConfigError
from fer.models.act import ACTIVATION_TYPES

KINDS = {"conv": nn.Conv2d, "linear": nn.Linear}


def named_layers(net: nn.Module, kind: str) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in net.named_modules() if isinstance(m, KINDS[kind])]


def resolve_layer(net: nn.Module, spec: str, key: str = "explain.layers") -> tuple[str, nn.Module]:
    """`features.3` (a module name), `conv:0` (first conv), `conv:-1` (last conv) or `linear:0`."""
    kind, _, index = spec.partition(":")
    if kind in KINDS and index.lstrip("-").isdigit():
        layers = named_layers(net, kind)
        i = int(index)
        if not -len(layers) <= i < len(layers):
            raise ConfigError(key, f"an index among the model's {len(layers)} {kind} layers", spec)
        return layers[i]
    modules = dict(net.named_modules())
    if spec not in modules or not spec:
        convs = ", ".join(n for n, _ in named_layers(net, "conv")[:6])
        raise ConfigError(key, f"a module name (conv layers: {convs}, …) or conv:<k> / linear:<k>", spec)
    return spec, modules[spec]


def gradcam_layer(net: nn.Module, spec: str | None) -> tuple[str, nn.Module] | None:
    """Grad-CAM weighs the rectified maps of a conv layer (as Selvaraju et al. do), so `conv:<k>`, and the
    default (None: the last conv), mean the activation module right after that conv; a module name is taken
    as given. None when the model has no conv layer."""
    if spec is not None and not spec.startswith("conv:"):
        return resolve_layer(net, spec, "explain.gradcam_layer")
    if not has_conv(net):
        return None
    return rectified(net, resolve_layer(net, spec or "conv:-1", "explain.gradcam_layer")[1])


def rectified(net: nn.Module, layer: nn.Module) -> tuple[str, nn.Module]:
    """The first activation module after `layer` in the network (past its BatchNorm), or `layer` itself."""
    modules = list(net.named_modules())
    start = next(i for i, (_, m) in enumerate(modules) if m is layer)
    return next(((n, m) for n, m in modules[start + 1:] if isinstance(m, ACTIVATION_TYPES)), modules[start])


def has_conv(net: nn.Module) -> bool:
    return bool(named_layers(net, "conv"))
