"""Typed configs: one dataclass per config option, registered in Hydra's ConfigStore.

Each `conf/<group>/<option>.yaml` starts from its schema (`/schema/<group>/<kind>@_here_`), so a
typo in a key or a value of the wrong type fails while Hydra composes, naming the key. Checks that a
type cannot express (ranges, choices) run in `validate` before anything is built.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import typing
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError

from fer.errors import ConfigError, FerError, guarded


@dataclass
class CNNConfig:
    name: str = "cnn"
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 128])
    first_kernel: int = 5
    kernel: int = 3
    batchnorm_from: int = 2  # conv index from which batch-norm is used (the last two of four)
    hidden: int = 256
    dropout: float = 0.5


@dataclass
class VGGConfig:
    name: str = "vgg16"
    depth: int = 16
    classifier_width: int = 512
    dropout: float = 0.5


@dataclass
class DNNConfig:
    name: str = "dnn"
    hidden: list[int] = field(default_factory=lambda: [1024, 512, 256])
    match: str | None = None  # a model option name; the widths are then solved for its parameter count
    depth: int = 3  # number of hidden layers when matching
    dropout: float = 0.5


@dataclass
class ActConfig:
    name: str = "relu"
    slope: float = 0.01  # leaky_relu's negative slope; ignored by the others


@dataclass
class DataConfig:
    name: str = "synthetic"
    path: str | None = None
    batch_size: int = 64
    val_policy: str = "auto"  # auto | usage | fraction | first
    val_fraction: float = 0.1
    val_count: int = 0  # rows for val_policy=first
    limit: int | None = None  # cap on the rows of each split, for quick runs
    on_bad_row: str = "error"  # error | skip
    seed: int = 0  # seeds the validation split and `limit`, independent of the training seed
    num_workers: int = 0
    on_device: bool | None = None  # splits kept on the trainer's device as uint8; null: true on a GPU
    # data=synthetic only
    n_train: int = 7000
    n_val: int = 1400
    n_test: int = 1400
    noise: float = 0.06


@dataclass
class NormConfig:
    name: str = "standardize"


@dataclass
class AugConfig:
    """Batched, per-sample random augmentation; all zero is `aug=none`."""

    name: str = "none"
    rotation: float = 0.0  # degrees
    shift: float = 0.0  # fraction of the image size, horizontal and vertical
    shear: float = 0.0  # degrees (Keras's shear_range)
    zoom: float = 0.0  # scale drawn from [1 - zoom, 1 + zoom]
    hflip: bool = False
    crop_padding: int = 0  # random crop of 48 px from the image padded by this many pixels
    erasing: float = 0.0  # probability of random erasing
    impl: str = "kornia"  # kornia | fused (one grid_sample for crop, flip and affine; batched erasing)


@dataclass
class OptimConfig:
    name: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    nesterov: bool = True
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])


@dataclass
class SchedConfig:
    name: str = "none"
    factor: float = 0.5  # plateau
    patience: int = 3  # plateau, in epochs
    min_lr: float = 0.0  # plateau and cosine
    pct_start: float = 0.3  # onecycle
    max_lr_factor: float = 1.0  # onecycle: peak learning rate = optim.lr × this


@dataclass
class TrainerConfig:
    name: str = "default"
    accelerator: str = "auto"
    devices: Any = "auto"
    strategy: str = "auto"  # ddp: one process per device (trainer=ddp); metrics synced, rank 0 tracks
    precision: str = "32-true"
    max_epochs: int = 12
    limit_train_batches: int | None = None
    limit_val_batches: int | None = None
    limit_test_batches: int | None = None
    num_sanity_val_steps: int = 2
    gradient_clip_val: float | None = None
    deterministic: bool = False
    progress_bar: bool = True
    compile: bool = False  # torch.compile the forward pass (training batches all full, eval batches padded)
    channels_last: bool = False  # the network's weights (and so its activations) in NHWC
    benchmark: bool | None = None  # torch.backends.cudnn.benchmark; null: Lightning's default
    ema_decay: float = 0.0  # > 0: validate, checkpoint and test an EMA of the weights (per optimizer step)


@dataclass
class TestConfig:
    tta: str = "none"  # none | flip | tencrop: test-time augmentation in test and predict (fer/tta.py)


@dataclass
class TrackingConfig:
    name: str = "local"
    uri: str = "sqlite:///mlflow.db"
    experiment: str = "fer"  # the MLflow experiment runs go to
    artifact_root: str | None = "mlruns"  # for a new experiment; a server chooses its own when null


@dataclass
class FiltersConfig:
    """Gradient ascent on the input for the first `n` filters of each layer in `layers`."""

    enabled: bool = True
    layers: list[str] = field(default_factory=lambda: ["conv:0", "conv:-1"])
    n: int = 32
    steps: int = 200
    lr: float = 0.05
    jitter: int = 2
    rotation: float = 5.0
    blur_every: int = 0
    contrast: float = 0.5  # minus this × the strongest other filter's activation (0: plain maximization)


@dataclass
class LayerOutputsConfig:
    enabled: bool = True
    layers: list[str] = field(default_factory=lambda: ["conv:0", "conv:-1"])
    n: int = 16  # feature maps shown per layer
    probe: int = 0  # which probe image (index into the probes)


@dataclass
class ExplainConfig:
    """Captum explanations rendered into the run: at the end of training, and every n epochs if set."""

    name: str = "default"
    enabled: bool = True
    methods: list[str] = field(default_factory=lambda: ["saliency", "integrated_gradients", "guided_backprop",
                                                        "gradcam", "smoothgrad"])
    target: str = "label"  # label | predicted: the class the attribution is for
    probe_ids: list[int] | None = None  # rows of the validation split; default one per class
    gradcam_layer: str | None = None  # default: the activation after the last conv; conv:<k> or a module name
    threshold: float = 0.3  # the mask column keeps pixels above this fraction of the map's maximum
    every_n_epochs: int = 0  # 0: only at the end; n: saliency figures logged as images every n epochs
    filters: FiltersConfig = field(default_factory=FiltersConfig)
    layer_outputs: LayerOutputsConfig = field(default_factory=LayerOutputsConfig)


@dataclass
class FerConfig:
    model: Any = MISSING
    act: Any = MISSING
    data: Any = MISSING
    norm: Any = MISSING
    aug: Any = MISSING
    optim: Any = MISSING
    sched: Any = MISSING
    trainer: Any = MISSING
    tracking: Any = MISSING
    explain: Any = MISSING
    seed: int = 0
    run_name: str | None = None
    label_smoothing: float = 0.0
    test: TestConfig = field(default_factory=TestConfig)
    resume: str | None = None  # a run id or "last": continue that killed run (fer/resume.py)


@dataclass
class BenchConfig:
    """`python -m fer.bench`: what is timed, on images of FER2013's shape (random bytes: timings do not
    depend on content)."""

    images: int = 28709  # training rows per epoch (FER2013's Training split)
    warmup_epochs: int = 1  # untimed epochs first (compilation, worker start, cudnn autotuning)
    epochs: int = 1  # timed epochs per pipeline
    bare_steps: int = 30  # timed optimizer steps of the bare model on one fixed batch
    workers: int | None = None  # the conventional DataLoader's workers; null: all cores but one
    pipelines: list[str] = field(default_factory=lambda: ["conventional", "fer", "bare"])  # also fer_<impl>
    matmul_size: int | None = None  # side of the square matmul timed for the ceiling; null: 8192 GPU, 1024 CPU
    output: str = "bench.json"


@dataclass
class BenchRoot(FerConfig):
    bench: BenchConfig = field(default_factory=BenchConfig)


SCHEMAS = {
    "model": {"cnn": CNNConfig, "vgg": VGGConfig, "dnn": DNNConfig},
    "act": {"act": ActConfig},
    "data": {"data": DataConfig},
    "norm": {"norm": NormConfig},
    "aug": {"aug": AugConfig},
    "optim": {"optim": OptimConfig},
    "sched": {"sched": SchedConfig},
    "trainer": {"trainer": TrainerConfig},
    "tracking": {"tracking": TrackingConfig},
    "explain": {"explain": ExplainConfig},
}

CHOICES = {
    "model.name": ("cnn", "vgg16", "vgg19", "dnn"),
    "act.name": ("relu", "selu", "leaky_relu", "elu", "gelu"),
    "data.name": ("synthetic", "fer2013", "hw3", "folder"),
    "data.val_policy": ("auto", "usage", "fraction", "first"),
    "data.on_bad_row": ("error", "skip"),
    "norm.name": ("none", "unit", "symmetric", "standardize"),
    "optim.name": ("adam", "adamax", "sgd"),
    "sched.name": ("none", "plateau", "cosine", "onecycle"),
    "aug.impl": ("kornia", "fused"),
    "test.tta": ("none", "flip", "tencrop"),
    # ranks > 0 re-run the command and join rank 0's run (fer/ddp.py): only launchers that re-run it
    "trainer.strategy": ("auto", "ddp", "ddp_find_unused_parameters_true"),
}


def register() -> None:
    """Put the root schema and every option schema into Hydra's ConfigStore."""
    # conf/config.yaml puts the process id in hydra.run.dir: runs started in the same second get their own
    # output (and checkpoint) folder
    OmegaConf.register_new_resolver("fer.pid", os.getpid, replace=True)
    cs = ConfigStore.instance()
    cs.store(name="fer_schema", node=FerConfig)
    cs.store(name="bench_schema", node=BenchRoot)
    for group, kinds in SCHEMAS.items():
        for kind, node in kinds.items():
            cs.store(group=f"schema/{group}", name=kind, node=node)


def _check(cfg: DictConfig, key: str, ok, expected: str, prefix: str = "") -> None:
    value = OmegaConf.select(cfg, key)
    if not ok(value):
        raise ConfigError(prefix + key, expected, value)


def _unknown_key(full_key: str, names) -> ConfigError:
    parent = full_key.rpartition(".")[0] or "the config"
    return ConfigError(full_key, f"one of the keys of {parent} ({', '.join(names)})", full_key.rpartition(".")[2])


def _check_keys(node: DictConfig, prefix: str = "") -> None:
    """`+key=value` may add a key no schema has; fer would ignore it, so it is refused like a typo."""
    schema = OmegaConf.get_type(node)
    names = [f.name for f in dataclasses.fields(schema)] if dataclasses.is_dataclass(schema) else None
    for key in node:
        if names is not None and key not in names:
            raise _unknown_key(f"{prefix}{key}", names)
        if isinstance(child := OmegaConf.select(node, str(key)), DictConfig):
            _check_keys(child, f"{prefix}{key}.")


_TYPE_NAMES = {int: ("an integer", "integers"), float: ("a number", "numbers"), bool: ("true or false", "booleans"),
               str: ("a string", "strings")}


def _type_name(tp, plural: bool = False) -> str:
    """How a schema type reads in an error: `list[int]` → 'a list of integers', `int | None` → '… or null'."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) is list:
        return "a list of " + _type_name(args[0], plural=True) if args else "a list"
    if type(None) in args and len(args) == 2:
        return _type_name(next(a for a in args if a is not type(None)), plural) + " or null"
    return _TYPE_NAMES.get(tp, ("a value", "values"))[plural]


def _composition_error(e: Exception) -> FerError:
    """What Hydra reports in several lines (an unknown option or key, a value of the wrong type), as one."""
    if isinstance(e, MissingConfigException) and e.options:
        group, _, name = e.missing_cfg_file.rpartition("/")
        return ConfigError(group, "one of " + ", ".join(e.options), name)
    if isinstance(e, OverrideParseException):
        return ConfigError(e.override.partition("=")[0], "a value in Hydra's override syntax "
                           "(https://hydra.cc/docs/advanced/override_grammar/basic)", e.override.partition("=")[2])
    cause = e.__cause__
    if isinstance(cause, OmegaConfBaseException) and cause.full_key:
        owner, parent = cause.object_type, cause.parent_node
        if isinstance(cause, ConfigAttributeError | ConfigKeyError):
            if dataclasses.is_dataclass(owner):
                return _unknown_key(cause.full_key, [f.name for f in dataclasses.fields(owner)])
            if isinstance(parent, DictConfig):
                return _unknown_key(cause.full_key, [str(k) for k in parent if k != "hydra"])
        if isinstance(cause, ValidationError):
            if dataclasses.is_dataclass(owner):
                tp = typing.get_type_hints(owner).get(cause.key)
            else:  # an element of a typed list
                tp = (typing.get_args(cause.ref_type) or [None])[0]
            return ConfigError(cause.full_key, _type_name(tp), cause.value)
    text = f"{e}\n{cause or ''}"
    return FerError("; ".join(line.strip() for line in text.splitlines() if line.strip()))


def reports_config_errors(main):
    """Wrap a `@hydra.main` entry point so a bad override stops with one `fer: error:` line and exit 2, like
    every other bad input, instead of Hydra's several lines and exit 1.

    Hydra raises instead of printing while HYDRA_FULL_ERROR=1; a user who sets it keeps Hydra's full trace.
    """

    @guarded
    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        before = os.environ.get("HYDRA_FULL_ERROR")
        if before == "1":
            return main(*args, **kwargs)
        os.environ["HYDRA_FULL_ERROR"] = "1"
        try:
            return main(*args, **kwargs)
        except (ConfigCompositionException, OverrideParseException) as e:
            raise _composition_error(e) from None
        finally:
            if before is None:
                os.environ.pop("HYDRA_FULL_ERROR", None)
            else:
                os.environ["HYDRA_FULL_ERROR"] = before

    return wrapper


def validate(cfg: DictConfig) -> DictConfig:
    """Reject values no type can rule out, before any data is read or model built."""
    _check_keys(cfg)
    for key, allowed in CHOICES.items():
        _check(cfg, key, lambda v, a=allowed: v in a, "one of " + ", ".join(a for a in allowed))
    positive = lambda v: v is not None and v > 0  # noqa: E731
    non_negative = lambda v: v is not None and v >= 0  # noqa: E731
    _check(cfg, "data.batch_size", positive, "a positive integer")
    _check(cfg, "data.val_fraction", lambda v: 0 < v < 1, "a fraction between 0 and 1")
    _check(cfg, "data.limit", lambda v: v is None or v > 0, "a positive integer or null")
    _check(cfg, "data.num_workers", non_negative, "0 or more")
    _check(cfg, "data.val_count", non_negative, "0 or more")
    _check(cfg, "optim.lr", positive, "a positive number")
    _check(cfg, "optim.weight_decay", non_negative, "0 or more")
    _check(cfg, "trainer.max_epochs", positive, "a positive integer")
    _check(cfg, "label_smoothing", lambda v: 0 <= v < 1, "a number in [0, 1)")
    _check(cfg, "trainer.ema_decay", lambda v: 0 <= v < 1, "a decay in [0, 1) (0: no EMA)")
    if cfg.data.name == "synthetic":
        for k in ("n_train", "n_val", "n_test"):
            _check(cfg, f"data.{k}", positive, "a positive integer")
    elif not cfg.data.path:
        raise ConfigError("data.path", f"the path of the {cfg.data.name} data", cfg.data.path)
    if cfg.model.name == "dnn" and cfg.model.match is not None:
        _check(cfg, "model.match", lambda v: v in ("cnn", "vgg16", "vgg19"), "cnn, vgg16 or vgg19")
        _check(cfg, "model.depth", positive, "a positive integer")
    for k in ("rotation", "shift", "shear", "zoom", "erasing", "crop_padding"):
        _check(cfg, f"aug.{k}", non_negative, "0 or more")
    if "explain" in cfg:
        validate_explain(cfg.explain)
    return cfg


def validate_explain(explain: DictConfig) -> None:
    from fer.explain.saliency import METHODS

    for method in explain.methods:
        if method not in METHODS:
            raise ConfigError("explain.methods", "names among " + ", ".join(METHODS), method)
    checks = [("target", lambda v: v in ("label", "predicted"), "label or predicted"),
              ("threshold", lambda v: 0 <= v < 1, "a fraction in [0, 1)"),
              ("every_n_epochs", lambda v: v >= 0, "0 or more"),
              ("filters.n", lambda v: v > 0, "a positive integer"),
              ("filters.steps", lambda v: v > 0, "a positive integer"),
              ("filters.contrast", lambda v: v >= 0, "0 or more"),
              ("layer_outputs.n", lambda v: v > 0, "a positive integer")]
    for key, ok, expected in checks:
        _check(explain, key, ok, expected, prefix="explain.")


register()
