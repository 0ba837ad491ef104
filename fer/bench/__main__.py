"""`python -m fer.bench [model=vgg16] [experiment=sota] [bench.images=…]`: how fast fer trains.

On one model and device it times (a) `conventional`: per-sample PIL transforms in DataLoader workers
(fer/bench/conventional.py), (b) `fer`: the FERDataModule — uint8 splits on the device, batched augmentation
there — both as real `Trainer.fit` epochs of the same FERModule (same precision, channels_last, compile),
and (c) `bare`: optimizer steps of that model on one fixed batch, no data at all (by default as many as (b)
times). Rows `fer_kornia` and `fer_fused` time (b) with that `aug.impl`. Each row: images per second after
warm-up (the median of `bench.rounds`), the seconds a FER2013 training epoch (28,709 images) takes at that rate,
and the median of its rounds' ratios to bare; CUDA events on a GPU, perf_counter on a CPU.
With them: training FLOPs per image (forward + backward, torch.utils.flop_counter), a measured matmul
ceiling (bf16 on a GPU; on a CPU bf16 or fp32, as the training precision) and the fraction of it each row
reaches. Prints a table and writes `bench.output` (JSON). The images are random bytes of FER2013's shape:
timings do not depend on content.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import statistics
import time
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from rich.console import Console
from rich.table import Table
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from fer.bench.conventional import PerSampleDataset, collate
from fer.cli import entry_point
from fer.config.schema import FerConfig
from fer.console import say
from fer.data.augment import AUGMENTATIONS, training_side
from fer.data.batch import Batch
from fer.data.datamodule import FERDataModule
from fer.data.splits import Split, Splits
from fer.errors import ConfigError, output_path
from fer.labels import IMAGE_SIZE, NUM_CLASSES, TRAINING_ROWS
from fer.registry import Registry
from fer.runs.validate import validate
from fer.training.module import FERModule
from fer.training.optim import build_optimizer
from fer.training.trainer import device_kwargs


@dataclass
class BenchConfig:
    """`bench:` in conf/bench.yaml: what is timed, on images of FER2013's shape (random bytes: timings do not
    depend on content)."""

    images: int = TRAINING_ROWS  # training rows per epoch (FER2013's Training split)
    warmup_epochs: int = 1  # untimed epochs first (compilation, worker start, cudnn autotuning)
    epochs: int = 1  # timed epochs per pipeline
    bare_steps: int | None = None  # timed optimizer steps of the bare model; null: the timed fer epochs' steps
    workers: int | None = None  # the conventional DataLoader's workers; null: all cores but one
    pipelines: list[str] = field(default_factory=lambda: ["conventional", "fer", "bare"])  # also fer_<impl>
    rounds: int = 1  # the pipelines timed in turn this many times; each row is its median
    matmul_size: int | None = None  # side of the square matmul timed for the ceiling; null: 8192 GPU, 1024 CPU
    output: str = "bench.json"


@dataclass
class BenchRoot(FerConfig):
    bench: BenchConfig = field(default_factory=BenchConfig)


class Clock:
    """Elapsed seconds between marks: CUDA events on a GPU (read after one synchronize), else perf_counter."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def mark(self):
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def seconds(self, start, end) -> float:
        if not self.cuda:
            return end - start
        end.synchronize()
        return start.elapsed_time(end) / 1000


class EpochTimer(pl.Callback):
    """The seconds and images of each training epoch, from its first batch fetch to its last step."""

    def __init__(self, clock: Clock):
        self.clock, self.marks, self.images = clock, [], []

    def on_train_epoch_start(self, trainer, pl_module):
        self.marks.append([self.clock.mark(), None])
        self.images.append(0)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch: Batch, batch_idx):
        self.images[-1] += len(batch.labels)

    def on_train_epoch_end(self, trainer, pl_module):
        self.marks[-1][1] = self.clock.mark()

    def rate(self, skip: int) -> float:
        """Images per second over the epochs after the first `skip`."""
        seconds = sum(self.clock.seconds(a, b) for a, b in self.marks[skip:])
        return sum(self.images[skip:]) / seconds


class ConventionalData(pl.LightningDataModule):
    """Training batches the conventional way: shuffled indices, per-sample transforms in workers, collation (into
    the `Batch` fer's steps take), pinned memory and a copy to the device per batch."""

    def __init__(self, split: Split, batch_size: int, aug_cfg, workers: int, pin: bool):
        super().__init__()
        self.ds = PerSampleDataset(split.images, split.labels, aug_cfg)
        self.batch_size, self.workers, self.pin = batch_size, workers, pin

    def train_dataloader(self):
        return DataLoader(self.ds, batch_size=self.batch_size, shuffle=True, drop_last=True, collate_fn=collate,
                          num_workers=self.workers, pin_memory=self.pin, persistent_workers=self.workers > 0)


def random_splits(n: int, batch_size: int, seed: int) -> Splits:
    rng = np.random.default_rng(seed)

    def split(rows: int) -> Split:
        return Split(rng.integers(0, 256, (rows, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8),
                     rng.integers(0, NUM_CLASSES, rows).astype(np.int64))

    val = split(batch_size)
    return Splits(train=split(n), val=val, tests={"test": val})


def timed_fit(module: FERModule, datamodule, cfg, clock: Clock) -> float:
    """Images per second over the timed epochs of a fit of `warmup_epochs + epochs` (no validation)."""
    timer = EpochTimer(clock)
    trainer = pl.Trainer(**device_kwargs(cfg.trainer), max_epochs=cfg.bench.warmup_epochs + cfg.bench.epochs,
                         limit_val_batches=0, num_sanity_val_steps=0, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[timer])
    trainer.fit(module, datamodule=datamodule)
    return timer.rate(skip=cfg.bench.warmup_epochs)


def autocast(precision: str, device: torch.device):
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(str(precision))
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def conventional_rate(module: FERModule, splits: Splits, cfg, device: torch.device, clock: Clock,
                      workers: int) -> float:
    """Images per second of `Trainer.fit` epochs fed by `ConventionalData` (`workers` DataLoader workers)."""
    data = ConventionalData(splits.train, cfg.data.batch_size, cfg.aug, workers, pin=device.type == "cuda")
    return timed_fit(module, data, cfg, clock)


def fer_rate(module: FERModule, splits: Splits, cfg, device: torch.device, clock: Clock, workers: int,
             impl: str | None = None) -> float:
    """Images per second of `Trainer.fit` epochs fed by the FERDataModule (with `aug.impl=impl` when given)."""
    aug = OmegaConf.merge(cfg.aug, {"impl": impl} if impl else {})
    return timed_fit(module, FERDataModule(splits, cfg.data, aug), cfg, clock)


def bare_steps(bench, batch_size: int) -> int:
    """`bench.bare_steps`, by default as many steps as the timed fer epochs take: each round's ratio then compares
    equally long spells of a shared machine, not a few seconds against an epoch."""
    return bench.bare_steps or bench.epochs * (bench.images // batch_size)


def bare_rate(module: FERModule, splits: Splits, cfg, device: torch.device, clock: Clock, workers: int) -> float:
    """Images per second of forward, backward and optimizer step on one fixed batch already on the device."""
    module.to(device).train()
    opt = build_optimizer(cfg.optim, module.parameters())
    b, side = cfg.data.batch_size, training_side(cfg.aug)
    x = torch.rand(b, 1, side, side, device=device)
    y = torch.randint(0, NUM_CLASSES, (b,), device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast(cfg.trainer.precision, device):
            loss = module.criterion(module.logits(x), y)
        loss.backward()
        opt.step()

    steps = bare_steps(cfg.bench, b)
    for _ in range(max(3, steps // 5)):
        step()
    start = clock.mark()
    for _ in range(steps):
        step()
    return b * steps / clock.seconds(start, clock.mark())


def flops_per_image(module: FERModule, side: int) -> int:
    """Training FLOPs of one image of `side` px: a forward and backward of a batch of two in training mode, halved."""
    model = copy.deepcopy(module).cpu().float().train()
    x = torch.rand(2, 1, side, side)
    with FlopCounterMode(display=False) as counter:
        model.criterion(model(x), torch.zeros(2, dtype=torch.long)).backward()
    return counter.get_total_flops() // 2


def matmul_ceiling(device: torch.device, precision: str, size: int | None, clock: Clock) -> tuple[float, str]:
    """FLOP/s of a large square matmul: bf16 on a GPU, on a CPU in the training precision's (bf16 or fp32)."""
    dtype = torch.bfloat16 if device.type == "cuda" or str(precision).startswith("bf16") else torch.float32
    n = size or (8192 if device.type == "cuda" else 1024)
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    for _ in range(3):
        a @ b
    reps = 10
    start = clock.mark()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / clock.seconds(start, clock.mark()), str(dtype).removeprefix("torch.")


# What `bench.pipelines` may name, each timed by (module, splits, cfg, device, clock, workers) → images per second:
# `fer_<impl>` is `fer` with that `aug.impl`, one per registered implementation.
PIPELINES = Registry("bench.pipelines", {
    "conventional": conventional_rate,
    "fer": fer_rate,
    **{f"fer_{impl}": functools.partial(fer_rate, impl=impl) for impl in AUGMENTATIONS},
    "bare": bare_rate,
})


def root_device(cfg) -> torch.device:
    probe = pl.Trainer(**device_kwargs(cfg.trainer), logger=False, enable_progress_bar=False,
                       enable_model_summary=False, enable_checkpointing=False)
    return probe.strategy.root_device


def check(cfg) -> None:
    b = cfg.bench
    unknown = [p for p in b.pipelines if p not in PIPELINES]
    if unknown:
        raise ConfigError(PIPELINES.key, "names among " + ", ".join(PIPELINES), unknown)
    if b.images < cfg.data.batch_size:
        raise ConfigError("bench.images", f"at least data.batch_size ({cfg.data.batch_size})", b.images)
    lowest = {"epochs": 1, "warmup_epochs": 0, "bare_steps": 1, "rounds": 1, "workers": 0, "matmul_size": 1}
    for key, low in lowest.items():
        if b[key] is not None and b[key] < low:  # workers and matmul_size may be null: chosen for the device
            raise ConfigError(f"bench.{key}", f"{low} or more", b[key])


def run(cfg) -> dict:
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    device = root_device(cfg)
    clock = Clock(device)
    splits = random_splits(cfg.bench.images, cfg.data.batch_size, cfg.seed)
    module = FERModule(OmegaConf.to_container(cfg, resolve=True), ["test"])
    flops = flops_per_image(module, training_side(cfg.aug))
    if cfg.trainer.compile:
        module.compile_forward()
    workers = cfg.bench.workers if cfg.bench.workers is not None else max(1, (os.cpu_count() or 2) - 1)
    timings: dict[str, list[float]] = {name: [] for name in cfg.bench.pipelines}
    for _ in range(cfg.bench.rounds):  # in turn, so a shared machine's slow spells hit every pipeline alike
        for name in cfg.bench.pipelines:  # in the order given; the first also pays for compilation in its warm-up
            timings[name].append(PIPELINES.get(name)(module, splits, cfg, device, clock, workers))
    rates = {name: statistics.median(r) for name, r in timings.items()}
    # against bare, each round's ratio and their median: a slow spell of a shared machine hits a round's pipelines
    # alike and cancels out, where the ratio of two medians would take them from different rounds
    of_bare = {name: statistics.median(a / b for a, b in zip(r, timings["bare"], strict=True))
               if "bare" in timings else None for name, r in timings.items()}
    ceiling, dtype = matmul_ceiling(device, cfg.trainer.precision, cfg.bench.matmul_size, clock)
    rows = [{"pipeline": name, "images_per_s": rate, "s_per_fer2013_epoch": TRAINING_ROWS / rate,
             "fraction_of_ceiling": rate * flops / ceiling, "of_bare": of_bare[name]} for name, rate in rates.items()]
    return {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "model": cfg.model.name, "batch_size": cfg.data.batch_size, "aug": cfg.aug.name,
            "aug_impl": cfg.aug.impl, "precision": cfg.trainer.precision, "compile": cfg.trainer.compile,
            "channels_last": cfg.trainer.channels_last, "on_device": cfg.data.on_device, "images": cfg.bench.images,
            "rounds": cfg.bench.rounds, "bare_steps": bare_steps(cfg.bench, cfg.data.batch_size), "timings": timings,
            "conventional_workers": workers, "train_flops_per_image": flops, "matmul_ceiling_flops": ceiling,
            "matmul_ceiling_dtype": dtype, "rows": rows}


def print_table(result: dict) -> None:
    table = Table(title=f"fer.bench: {result['model']}, batch {result['batch_size']}, aug {result['aug']} "
                        f"({result['aug_impl']}), {result['precision']}, on {result['device']}")
    for col in ("pipeline", "images/s", "s per FER2013 epoch", "of matmul ceiling", "of bare"):
        table.add_column(col, justify="left" if col == "pipeline" else "right")
    for r in result["rows"]:
        table.add_row(r["pipeline"], f"{r['images_per_s']:,.0f}", f"{r['s_per_fer2013_epoch']:.3f}",
                      f"{r['fraction_of_ceiling']:.1%}", f"{r['of_bare']:.2f}×" if r["of_bare"] else "")
    console = Console()
    console.print(table)
    console.print(f"training FLOPs per image {result['train_flops_per_image'] / 1e9:.3f} G; matmul ceiling "
                  f"{result['matmul_ceiling_flops'] / 1e12:.1f} TFLOP/s ({result['matmul_ceiling_dtype']})")


@entry_point("bench", schemas={"bench_schema": BenchRoot})
def main(cfg) -> None:
    validate(cfg)
    check(cfg)
    out = output_path(cfg.bench.output, "bench.output")  # before minutes of timing, not after
    result = run(cfg)
    print_table(result)
    out.write_text(json.dumps(result, indent=2) + "\n")
    say(f"wrote {out.resolve()}")


if __name__ == "__main__":
    main()
