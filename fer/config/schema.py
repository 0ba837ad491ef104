"""Typed configs: one dataclass per kind of config option, put into Hydra's ConfigStore on demand.

Each `conf/<group>/<option>.yaml` starts from its schema (`/schema/<group>/<kind>@_here_`), so a typo in a key
or a value of the wrong type fails while Hydra composes, naming the key. `register_schemas` runs when an entry
point is declared (`fer.cli.entry_point`) or a config is composed (`fer.config.options.compose`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf


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
class ResNetConfig:
    name: str = "resnet"
    stem: int = 16  # channels of the one conv at 48×48
    widths: list[int] = field(default_factory=lambda: [32, 64, 128])  # per stage, each after a 2×2 max-pool
    blocks: list[int] = field(default_factory=lambda: [1, 1, 1])  # residual blocks per stage
    dropout: float = 0.0


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
    classes: str = "fer2013"  # the class set (fer.labels.CLASS_SETS): data=synthetic's choice, else the data's own
    # FER+ (fer/data/readers/ferplus.py)
    labels: str | None = None  # fer2013new.csv: for data=ferplus, or data=fer2013 with clean=ferplus
    label_mode: str = "majority"  # data=ferplus: majority | probability | crossentropy | multilabel
    clean: str = "none"  # data=fer2013: none | ferplus (without the faces FER+ marks as not a face)
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
    crop_size: int = 0  # < 48: train on random crops of this many px (validation and test see whole faces); 0: off
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
    anneal: str = "cos"  # onecycle: cos | linear, the shape of the warm-up and of the decay to the final rate
    cycle_momentum: bool = True  # onecycle: momentum (or Adam's beta1) from 0.95 down to 0.85 at the peak and back


@dataclass
class TrainerConfig:
    name: str = "default"
    accelerator: str = "auto"
    devices: Any = "auto"
    strategy: str = "auto"  # ddp: one process per device (trainer=ddp); metrics synced, rank 0 tracks
    precision: str = "32-true"  # Lightning's, or auto: bf16-mixed where the device has bf16 units, else 32-true
    max_epochs: int = 12
    budget_min: float | None = None  # minutes from the job's start to the end of training; steps and schedule fit it
    limit_train_batches: int | None = None
    limit_val_batches: int | None = None
    limit_test_batches: int | None = None
    num_sanity_val_steps: int = 2
    gradient_clip_val: float | None = None
    deterministic: bool = False
    progress_bar: bool = True
    compile: bool = False  # torch.compile the forward pass (training batches all full, eval batches padded)
    # the network's weights (and so its activations) in NHWC: on a CPU, max pooling of NCHW activations is ~10x
    # slower (torch 2.13), and the default cnn's training steps are 1.5x faster in NHWC; GPU tensor cores want NHWC
    channels_last: bool = True
    benchmark: bool | None = None  # torch.backends.cudnn.benchmark; null: Lightning's default
    ema_decay: float = 0.0  # > 0: validate, checkpoint and test an EMA of the weights (per optimizer step)
    checkpoint_upload_every: int = 1  # epochs between copies of last.ckpt (and the best) in the run's store; 0: never


@dataclass
class TestConfig:
    tta: str = "none"  # none | flip | tencrop: test-time augmentation in test and predict (fer/training/tta.py)


@dataclass
class TrackingConfig:
    name: str = "local"
    uri: str = "sqlite:///mlflow.db"
    experiment: str = "fer"  # the MLflow experiment runs go to
    artifact_root: str | None = "mlruns"  # for a new experiment; a server chooses its own when null
    log_model: bool = True  # the tested model as the run's MLflow Model (pt2; fer/tracking/logged_model.py)
    register: str | None = None  # a registered model name: the logged model becomes its next version
    alias: str | None = None  # pointed at that version (e.g. champion); needs register
    system_metrics: bool = True  # MLflow's CPU/memory/disk/network (and GPU) monitor on the run
    system_metrics_every_s: float = 10.0  # its sampling interval
    final_wait_s: float = 10.0  # how long a run's end retries a store that went away before leaving calls spooled


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
class TrialConfig:
    """Set by fer's Optuna sweeper on each trial's job: the trial it is, which its epochs report to (pruning)."""

    study: str | None = None
    trial: int | None = None


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
    resume: str | None = None  # a run id or "last": continue that killed run (fer/runs/resume.py)
    optuna: TrialConfig = field(default_factory=TrialConfig)


SCHEMAS = {
    "model": {"cnn": CNNConfig, "vgg": VGGConfig, "resnet": ResNetConfig, "dnn": DNNConfig},
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


def register_schemas(extra: dict[str, type] | None = None) -> None:
    """Put the root schema, every option schema and `extra` (name → root schema) into Hydra's ConfigStore."""
    # conf/config.yaml puts the process id in hydra.run.dir: runs started in the same second get their own
    # output (and checkpoint) folder
    OmegaConf.register_new_resolver("fer.pid", os.getpid, replace=True)
    cs = ConfigStore.instance()
    cs.store(name="fer_schema", node=FerConfig)
    for name, node in (extra or {}).items():
        cs.store(name=name, node=node)
    for group, kinds in SCHEMAS.items():
        for kind, node in kinds.items():
            cs.store(group=f"schema/{group}", name=kind, node=node)
