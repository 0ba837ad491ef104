"""Checks that a type cannot express (ranges, option names), run before any data is read or model built, and what
the composed config leaves to resolve (`model.match`'s widths, `trainer.precision=auto`).

The option names come from each room's registry, so a new option is valid once it is registered; this is why it
sits above every room that has one.
"""

from __future__ import annotations

import dataclasses

from omegaconf import DictConfig, OmegaConf

from fer.config.hydra_errors import unknown_key
from fer.config.options import option
from fer.data.augment import AUGMENTATIONS
from fer.data.load import DATASETS
from fer.data.readers.base import ON_BAD_ROW
from fer.data.readers.ferplus import CLEANING, LABEL_MODES
from fer.data.splits import VAL_POLICIES
from fer.errors import ConfigError
from fer.explain.saliency import METHODS, TARGETS
from fer.labels import CLASS_SETS
from fer.models import FULLY_CONVOLUTIONAL, MATCH_TARGETS, MODELS, count_params, create_model
from fer.models.act import ACTIVATIONS
from fer.models.dnn import matched_widths
from fer.models.norm import NORMS
from fer.training.module import class_set
from fer.training.optim import OPTIMIZERS, SCHEDULES
from fer.training.trainer import FULL_PRECISION, PRECISIONS, STRATEGIES, check_accelerator, native_precision
from fer.training.tta import RESIZING, TTA_MODES

CHOICES = (MODELS, ACTIVATIONS, DATASETS, VAL_POLICIES, ON_BAD_ROW, CLASS_SETS, LABEL_MODES, CLEANING, NORMS,
           OPTIMIZERS, SCHEDULES, AUGMENTATIONS, TTA_MODES, STRATEGIES)


def _check(cfg: DictConfig, key: str, ok, expected: str, prefix: str = "") -> None:
    value = OmegaConf.select(cfg, key)
    if not ok(value):
        raise ConfigError(prefix + key, expected, value)


def _check_keys(node: DictConfig, prefix: str = "") -> None:
    """`+key=value` may add a key no schema has; fer would ignore it, so it is refused like a typo."""
    schema = OmegaConf.get_type(node)
    names = [f.name for f in dataclasses.fields(schema)] if dataclasses.is_dataclass(schema) else None
    for key in node:
        if names is not None and key not in names:
            raise unknown_key(f"{prefix}{key}", names)
        if isinstance(child := OmegaConf.select(node, str(key)), DictConfig):
            _check_keys(child, f"{prefix}{key}.")


def validate(cfg: DictConfig, on_this_machine: bool = True) -> DictConfig:
    """Reject values no type can rule out, before any data is read or model built; the config, ready to build
    (`resolve_match`). A config for another machine (a cluster's node, a GPU recipe checked on a laptop) is not
    `on_this_machine`: its accelerator is that machine's to have."""
    _check_keys(cfg)
    for registry in CHOICES:
        _check(cfg, registry.key, lambda v, r=registry: v in r, registry.expected())
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
    _check(cfg, "trainer.precision", lambda v: v in PRECISIONS, "auto (bf16 where the device has it, else fp32) "
           f"or one of Lightning's: {', '.join(PRECISIONS[1:])}")
    # by its full name: the run's params, and what fer.bench times its bare model in, say the precision trained in
    cfg.trainer.precision = FULL_PRECISION.get(str(cfg.trainer.precision), cfg.trainer.precision)
    if on_this_machine:
        check_accelerator(cfg.trainer.accelerator, "trainer.accelerator")
        if cfg.trainer.precision == "auto":  # resolved here, so the run's params say what ran
            cfg.trainer.precision = native_precision(cfg.trainer.accelerator)
    _check(cfg, "seed", lambda v: 0 <= v < 2**32, "a whole number from 0 to 4294967295 (numpy's seeds)")
    _check(cfg, "sched.anneal", lambda v: v in ("cos", "linear"), "cos or linear")
    _check(cfg, "trainer.budget_min", lambda v: v is None or v > 0, "a positive number of minutes or null")
    _check(cfg, "label_smoothing", lambda v: 0 <= v < 1, "a number in [0, 1)")
    _check(cfg, "trainer.ema_decay", lambda v: 0 <= v < 1, "a decay in [0, 1) (0: no EMA)")
    _check(cfg, "trainer.checkpoint_upload_every", non_negative, "0 (never) or a number of epochs")
    if not DATASETS.get(cfg.data.name).needs_path:
        for k in ("n_train", "n_val", "n_test"):
            _check(cfg, f"data.{k}", positive, "a positive integer")
    elif not cfg.data.path:
        raise ConfigError("data.path", f"the path of the {cfg.data.name} data", cfg.data.path)
    validate_labels(cfg.data)
    if cfg.model.get("match") is not None:
        targets = f"{', '.join(MATCH_TARGETS[:-1])} or {MATCH_TARGETS[-1]}"
        _check(cfg, "model.match", lambda v: v in MATCH_TARGETS, targets)
        _check(cfg, "model.depth", positive, "a positive integer")
    if cfg.model.name == "resnet":
        _check(cfg, "model.stem", positive, "a positive integer")
        _check(cfg, "model.widths", lambda v: len(v) > 0 and all(w > 0 for w in v), "positive widths, one per stage")
        _check(cfg, "model.blocks", lambda v: len(v) == len(cfg.model.widths) and all(b >= 0 for b in v),
               f"one count of 0 or more per stage of model.widths ({len(cfg.model.widths)})")
    for k in ("rotation", "shift", "shear", "zoom", "erasing", "crop_padding"):
        _check(cfg, f"aug.{k}", non_negative, "0 or more")
    _check(cfg, "aug.crop_size", lambda v: v == 0 or 8 <= v <= 48, "0 (off) or a crop side from 8 to 48 px")
    if cfg.model.name not in FULLY_CONVOLUTIONAL:
        takes_48 = [m for m in TTA_MODES.names() if m not in RESIZING]
        _check(cfg, "aug.crop_size", lambda v: v in (0, 48), f"0 for model={cfg.model.name}, which takes 48-px "
               f"faces only (crops need {', '.join(FULLY_CONVOLUTIONAL)})")
        _check(cfg, "test.tta", lambda v: v in takes_48,
               f"{', '.join(takes_48)} for model={cfg.model.name}, which takes 48-px faces only")
    validate_tracking(cfg.tracking)
    if "explain" in cfg:
        validate_explain(cfg.explain)
    return resolve_match(cfg)


def resolve_match(cfg: DictConfig) -> DictConfig:
    """`model=dnn model.match=<option>`: the hidden widths solved for the parameter count of that model option (as
    `model=<option>` configures it, with the run's classes), written into `model.hidden`, so the config and the
    run's params say what is built. Idempotent: a restored run's config resolves to the same widths."""
    if cfg.model.name != "dnn" or cfg.model.get("match") is None:
        return cfg
    classes = len(class_set(cfg))
    target = count_params(create_model(option("model", cfg.model.match), cfg.act, classes))["params_total"]
    cfg.model.hidden = matched_widths(target, cfg.model.depth, classes)
    return cfg


def validate_labels(data: DictConfig) -> None:
    """The class set, FER+'s labels file and what reads it fit the data set."""
    source = DATASETS.get(data.name)
    if source.classes is not None and data.classes != source.classes:
        raise ConfigError("data.classes", f"{source.classes}: data={data.name} brings its own classes (the choice "
                          "is data=synthetic's)", data.classes)
    if data.label_mode != "majority" and data.name != "ferplus":
        raise ConfigError("data.label_mode", f"majority: label modes read FER+'s votes (data=ferplus), not "
                          f"data={data.name}", data.label_mode)
    if data.clean != "none" and data.name != "fer2013":
        raise ConfigError("data.clean", f"none: data.clean=ferplus cleans data=fer2013 (row-aligned with FER+), "
                          f"not data={data.name}", data.clean)
    reads_labels = data.name == "ferplus" or data.clean == "ferplus"
    if reads_labels and not data.labels:
        what = "data=ferplus" if data.name == "ferplus" else "data.clean=ferplus"
        raise ConfigError("data.labels", f"the path of FER+'s fer2013new.csv, which {what} reads", data.labels)
    if data.labels and not reads_labels:
        raise ConfigError("data.labels", "null: only data=ferplus and data=fer2013 data.clean=ferplus read FER+'s "
                          "labels", data.labels)


def validate_tracking(tracking: DictConfig) -> None:
    """What is registered is the logged model; an alias points at a registered version."""
    if tracking.register and not tracking.log_model:
        raise ConfigError("tracking.log_model", f"true, so that tracking.register={tracking.register} has a model "
                          "to register", False)
    if tracking.alias and not tracking.register:
        raise ConfigError("tracking.register", f"a registered model name for tracking.alias={tracking.alias} to "
                          "point into", None)
    _check(tracking, "system_metrics_every_s", lambda v: v > 0, "a positive number of seconds",
           prefix="tracking.")
    _check(tracking, "final_wait_s", lambda v: v >= 0, "a number of seconds, 0 or more", prefix="tracking.")


def validate_explain(explain: DictConfig) -> None:
    for method in explain.methods:
        if method not in METHODS:
            raise ConfigError("explain.methods", "names among " + ", ".join(METHODS), method)
    checks = [("target", lambda v: v in TARGETS, " or ".join(TARGETS)),
              ("threshold", lambda v: 0 <= v < 1, "a fraction in [0, 1)"),
              ("every_n_epochs", lambda v: v >= 0, "0 or more"),
              ("filters.n", lambda v: v > 0, "a positive integer"),
              ("filters.steps", lambda v: v > 0, "a positive integer"),
              ("filters.contrast", lambda v: v >= 0, "0 or more"),
              ("layer_outputs.n", lambda v: v > 0, "a positive integer")]
    for key, ok, expected in checks:
        _check(explain, key, ok, expected, prefix="explain.")
