"""Build the network named by `model=` with the activation named by `act=`.

Every model is `Sequential(features=…, classifier=…)`, so layers have stable names
(`features.3`, `classifier.1`) for summaries, checkpoints and the layers that explanations pick.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf
from torch import nn

from fer.config import SCHEMAS
from fer.models.act import init_weights
from fer.models.cnn import build_cnn
from fer.models.dnn import build_dnn, matched_widths
from fer.models.vgg import build_vgg

CONF_MODEL_DIR = Path(__file__).resolve().parents[2] / "conf" / "model"


def count_params(model: nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"params_total": total, "params_trainable": trainable, "params_non_trainable": total - trainable}


def model_option(name: str):
    """The config of `conf/model/<name>.yaml` on its schema: what `model=<name>` gives by default."""
    path = CONF_MODEL_DIR / f"{name}.yaml"
    raw = OmegaConf.load(path)
    schema = raw.defaults[0].split("/")[-1].split("@")[0]
    raw.pop("defaults")
    return OmegaConf.merge(OmegaConf.structured(SCHEMAS["model"][schema]), raw)


def dnn_widths(cfg, act) -> list[int]:
    """The DNN's hidden widths: as given, or solved to match `model.match`'s parameter count."""
    if cfg.match is None:
        return list(cfg.hidden)
    target = count_params(build_model(model_option(cfg.match), act))["params_total"]
    return matched_widths(target, cfg.depth)


def build_model(cfg, act) -> nn.Sequential:
    if cfg.name == "cnn":
        net = build_cnn(cfg, act)
    elif cfg.name in ("vgg16", "vgg19"):
        net = build_vgg(cfg, act)
    elif cfg.name == "dnn":
        net = build_dnn(dnn_widths(cfg, act), cfg, act)
    else:
        raise ValueError(f"unknown model {cfg.name!r}")
    return init_weights(net, act)
