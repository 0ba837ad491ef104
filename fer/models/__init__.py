"""The networks `model=` names, built with the activation `act=` names; imports only fer's leaves.

Every model is `Sequential(features=…, classifier=…)`, so layers have stable names (`features.3`,
`classifier.1`) for summaries, checkpoints and the layers that explanations pick. `MODELS` is the one list of
model options: add a builder there and its `conf/model/<name>.yaml`.
"""

from __future__ import annotations

from torch import nn

from fer.labels import NUM_CLASSES
from fer.models.act import init_weights
from fer.models.cnn import build_cnn
from fer.models.dnn import build_dnn
from fer.models.resnet import build_resnet
from fer.models.vgg import build_vgg
from fer.registry import Registry


def count_params(model: nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"params_total": total, "params_trainable": trainable, "params_non_trainable": total - trainable}


MODELS = Registry("model.name", {"cnn": build_cnn, "vgg16": build_vgg, "vgg19": build_vgg, "resnet": build_resnet,
                               "dnn": build_dnn})
FULLY_CONVOLUTIONAL = ("resnet",)  # global average pooling: they take faces of any size (crops in training and test)
MATCH_TARGETS = tuple(name for name, build in MODELS.items() if build is not build_dnn)  # model.match


def create_model(cfg, act, classes: int = NUM_CLASSES) -> nn.Sequential:
    """The network of the model config `cfg` with the activation config `act` (and its initialization), with
    one output per class."""
    return init_weights(MODELS.get(cfg.name)(cfg, act, classes), act)
