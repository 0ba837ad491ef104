"""The fast training path on CPU: splits on the device, the fused augmentation, compiled steps without
recompiles, NHWC activations, test-time augmentation, the EMA of the weights, and the sota recipe's config."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from helpers import TINY_RESNET, composed, tiny
from omegaconf import OmegaConf
from torch import nn
from torch._dynamo.testing import CompileCounter

from fer.bench.__main__ import autocast as bench_autocast
from fer.config.schema import AugConfig
from fer.data.augment import FusedAugmentation, build_augmentation
from fer.data.batch import Batch
from fer.errors import ConfigError
from fer.runs.validate import validate
from fer.training import tta
from fer.training.export import example_images, exportable
from fer.training.module import FERModule
from fer.training.trainer import build_trainer


class Recorder(pl.Callback):
    """Training batch sizes, and the live weights after every optimizer step."""

    def __init__(self):
        self.sizes, self.weights = [], []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.sizes.append(len(batch[1]))
        self.weights.append({k: v.detach().clone() for k, v in pl_module.net.state_dict().items()})


def fit(cfg, dm, module, tmp_path, *callbacks):
    trainer, ckpt = build_trainer(cfg.trainer, False, list(callbacks), tmp_path / "checkpoints")
    trainer.fit(module, datamodule=dm)
    return trainer, ckpt


def test_on_device_splits_train_exactly_like_host_memory(tmp_path):
    results = {}
    for on_device in (False, True):
        cfg, dm, module = tiny(f"data.on_device={on_device}", f"data.num_workers={2 if on_device else 0}")
        rec = Recorder()
        torch.manual_seed(1)
        trainer, _ = fit(cfg, dm, module, tmp_path / str(on_device), rec)
        assert dm.device == (trainer.strategy.root_device if on_device else None)
        assert dm.train_dataloader().num_workers == 0  # a device slice needs no worker
        assert rec.sizes == ([16] * 6 + [4]) * 2
        results[on_device] = (trainer.callback_metrics["train_loss"], trainer.callback_metrics["val_acc"],
                              rec.weights[-1])
    (loss_a, acc_a, w_a), (loss_b, acc_b, w_b) = results[False], results[True]
    assert torch.equal(loss_a, loss_b) and torch.equal(acc_a, acc_b)
    assert all(torch.equal(w_a[k], w_b[k]) for k in w_a)


def test_compiled_steps_see_one_graph_per_mode_despite_short_batches(tmp_path, monkeypatch):
    """Dynamo with a counting backend (no code generation): the 40-row val and test splits end in a batch of 8,
    padded to 16; ten-crop views keep the input's shape; training drops its short batch. Training mode and
    eval mode are the only two graphs."""
    counter = CompileCounter()
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend=counter))
    cfg, dm, module = tiny("trainer.compile=true", "test.tta=tencrop")
    rec = Recorder()
    trainer, ckpt = fit(cfg, dm, module, tmp_path, rec)
    trainer.test(module, datamodule=dm, ckpt_path="best", verbose=False)
    assert counter.frame_count == 2
    assert rec.sizes == [16] * 12  # 100 rows: 6 full batches per epoch, the 4 left over dropped
    assert 0 <= float(trainer.callback_metrics["test_acc"]) <= 1
    module.eval()
    x = torch.rand(5, 1, 48, 48)
    assert torch.allclose(module.logits(x), module(x), atol=1e-6)


def test_flip_tta_leaves_a_mirror_symmetric_model_unchanged():
    _, _, module = tiny("test.tta=flip")
    batch = Batch(torch.rand(8, 1, 48, 48), torch.zeros(8, dtype=torch.long))

    def with_and_without_flip():
        module.eval()
        module.tta = "flip"
        flipped = module.predict_step(batch, 0)
        module.tta = "none"
        return flipped, module.predict_step(batch, 0)

    flipped, plain = with_and_without_flip()
    assert not torch.allclose(flipped, plain, atol=1e-4)  # the DNN is not mirror symmetric
    module.net = nn.Sequential(nn.AdaptiveAvgPool2d((6, 1)), nn.Flatten(), nn.Linear(6, 7))  # row means: symmetric
    flipped, plain = with_and_without_flip()
    assert torch.allclose(flipped, plain, atol=1e-6)


def test_tencrop_views_are_four_px_corner_shifts_center_and_mirrors():
    x = torch.rand(3, 1, 48, 48)
    views = list(tta.views(x, "tencrop"))
    assert len(views) == 10 and all(v.shape == x.shape for v in views)
    top_left, top_right, center = views[0], views[2], views[8]
    assert torch.equal(center, x) and torch.equal(views[9], x.flip(-1))
    assert torch.equal(top_left[..., 4:, 4:], x[..., :-4, :-4])  # the face moved 4 px right and down
    assert torch.equal(top_right[..., 4:, :-4], x[..., :-4, 4:])
    assert torch.equal(views[1], top_left.flip(-1))
    _, _, module = tiny("test.tta=tencrop")
    module.eval()
    batch = Batch(x, torch.zeros(3, dtype=torch.long))
    ten = module.predict_step(batch, 0)
    module.tta = "none"
    plain = module.predict_step(batch, 0)
    assert torch.allclose(ten.sum(1), torch.ones(3)) and not torch.allclose(ten, plain)


def test_inner_tencrop_views_are_the_corners_and_center_of_the_face_and_mirrors():
    """What a model trained on random crops sees at test: windows of the face itself, no invented border."""
    x = torch.rand(3, 1, 48, 48)
    views = list(tta.views(x, "tencrop_inner"))
    assert len(views) == 10 and all(v.shape == (3, 1, 44, 44) for v in views)
    corners = [x[..., :44, :44], x[..., :44, 4:], x[..., 4:, :44], x[..., 4:, 4:], x[..., 2:46, 2:46]]
    for k, crop in enumerate(corners):
        assert torch.equal(views[2 * k], crop) and torch.equal(views[2 * k + 1], crop.flip(-1))


@pytest.mark.parametrize("mode", tta.TTA_MODES.names())
def test_the_exported_graph_gives_fers_probabilities_from_raw_pixels(mode):
    """torch.export of the tested model: 0–255 floats in, normalization and TTA inside, any batch size."""
    _, _, module = tiny(f"test.tta={mode}", *(TINY_RESNET if mode in tta.RESIZING else []))
    module.normalizer.fit(np.random.default_rng(0).integers(0, 256, (32, 48, 48), dtype=np.uint8))
    program = torch.export.export(exportable(module), (example_images(),),
                                  dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))
    faces = np.random.default_rng(1).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    with torch.no_grad():
        out = program.module()(torch.from_numpy(faces).float().unsqueeze(1))
    np.testing.assert_allclose(out.numpy(), module.classify(faces), atol=1e-5, rtol=0)


def test_ema_is_validated_checkpointed_and_tested(tmp_path):
    decay = 0.8
    cfg, dm, module = tiny(f"trainer.ema_decay={decay}", "data.n_train=64")
    rec = Recorder()
    trainer, ckpt = fit(cfg, dm, module, tmp_path, rec)
    ema = rec.weights[0]  # the first update copies, then w_ema ← d·w_ema + (1 − d)·w with d warmed up
    for n, w in enumerate(rec.weights[1:], start=1):
        d = min(decay, (1 + n) / (10 + n))
        ema = {k: d * ema[k] + (1 - d) * w[k] for k in ema}
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == len(rec.weights)  # the last epoch's, also when it was not the best
    for k, v in ema.items():
        assert torch.allclose(last["state_dict"][f"net.{k}"], v, atol=1e-6)
        assert torch.equal(last["current_model_state"][f"net.{k}"], rec.weights[-1][k])
    best = torch.load(ckpt.best_model_path, weights_only=True)
    trainer.test(module, datamodule=dm, ckpt_path="best", verbose=False)
    assert all(torch.equal(v, best["state_dict"][k]) for k, v in module.state_dict().items())
    exported = exportable(module)  # what the run logs as its MLflow Model: the averaged weights it tested
    assert all(torch.equal(v, best["state_dict"][f"net.{k}"]) for k, v in exported.net.state_dict().items())
    module.eval()
    images = torch.from_numpy(dm.splits.val.images).unsqueeze(1).float() / 255
    with torch.no_grad():
        acc = (module(images).argmax(1) == torch.from_numpy(dm.splits.val.labels)).float().mean()
    assert abs(float(acc) - float(ckpt.best_model_score)) < 1e-6  # selection saw the averaged weights


def test_fused_augmentation_draws_per_sample_crops_flips_and_erasures():
    x = torch.rand(64, 1, 48, 48)
    flip = build_augmentation(OmegaConf.structured(AugConfig(hflip=True, impl="fused")))(x)
    mirrored = [torch.allclose(f, a.flip(-1), atol=1e-5) for f, a in zip(flip, x, strict=True)]
    kept = [torch.allclose(f, a, atol=1e-5) for f, a in zip(flip, x, strict=True)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True)) and 10 < sum(mirrored) < 54
    crop = build_augmentation(OmegaConf.structured(AugConfig(crop_padding=4, impl="fused")))(x)
    shifts = set()
    for c, a in zip(crop, x, strict=True):
        found = [(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5)
                 if torch.allclose(c[:, 8:-8, 8:-8], torch.roll(a, (dy, dx), (-2, -1))[:, 8:-8, 8:-8], atol=1e-5)]
        assert len(found) == 1
        shifts.add(found[0])
    assert len(shifts) > 20
    erased = build_augmentation(OmegaConf.structured(AugConfig(erasing=1.0, impl="fused")))(torch.ones(64, 1, 48, 48))
    for e in erased[:, 0]:
        rows, cols = (e == 0).any(1).nonzero(), (e == 0).any(0).nonzero()
        h, w = len(rows), len(cols)
        assert int((e == 0).sum()) == h * w and 0.015 <= h * w / 48**2 <= 0.26  # one rectangle, 2–25 % of the face
        assert rows.max() - rows.min() + 1 == h and cols.max() - cols.min() + 1 == w


@pytest.mark.parametrize("options", [dict(crop_size=44, hflip=True), dict(crop_padding=4, hflip=True),
                                     dict(crop_padding=4, crop_size=40)])
def test_whole_pixel_augmentation_gathers_what_the_warp_would_sample(options):
    """Crops, padding and flips are gathered, not resampled: the same faces, from the same random draws."""
    aug = FusedAugmentation(OmegaConf.structured(AugConfig(impl="fused", **options)))
    x = torch.rand(64, 3, 48, 48)
    warp = aug.draw(x)
    assert torch.allclose(aug.gather(x, warp), aug.resample(x, warp), atol=1e-5)


@pytest.mark.parametrize("impl", ["fused", "kornia"])
def test_smaller_crops_are_whole_pixel_windows_of_each_face_at_many_places(impl):
    """aug.crop_size trains on random windows of the face, unblurred; both implementations agree on what."""
    x = torch.rand(64, 1, 48, 48)
    crops = build_augmentation(OmegaConf.structured(AugConfig(crop_size=40, impl=impl)))(x)
    assert crops.shape == (64, 1, 40, 40)
    places = set()
    for c, a in zip(crops, x, strict=True):
        found = [(top, left) for top in range(9) for left in range(9)
                 if torch.allclose(c, a[:, top:top + 40, left:left + 40], atol=1e-5)]
        assert len(found) == 1
        places.add(found[0])
    assert len(places) > 20


def test_the_default_network_max_pools_nhwc_activations_and_nchw_computes_the_same():
    """On a CPU, max pooling NCHW activations is ~10x slower than NHWC (torch 2.13): fer's default network keeps
    its activations NHWC, `trainer.channels_last=false` NCHW, and both give the same probabilities."""
    faces = torch.rand(4, 1, 48, 48)
    probabilities, layouts = {}, {}
    for channels_last in (True, False):
        cfg = validate(composed() if channels_last else composed("trainer.channels_last=false"))
        torch.manual_seed(0)
        module = FERModule(OmegaConf.to_container(cfg, resolve=True), ["test"]).eval()
        seen = layouts[channels_last] = []
        for pool in [m for m in module.net.modules() if isinstance(m, nn.MaxPool2d)]:
            pool.register_forward_hook(lambda m, args, out, seen=seen: seen.append(
                args[0].is_contiguous(memory_format=torch.channels_last)))
        with torch.no_grad():
            probabilities[channels_last] = module(faces).softmax(1)
    assert layouts[True] == [True] * len(layouts[True]) and layouts[False] == [False] * len(layouts[False])
    assert len(layouts[True]) == 4  # the default cnn's four pools
    torch.testing.assert_close(probabilities[True], probabilities[False], atol=1e-5, rtol=1e-4)


def test_sota_recipe_composes_and_validates():
    cfg = validate(composed("experiment=sota"), on_this_machine=False)  # a GPU recipe
    assert (cfg.model.name, cfg.optim.name, cfg.optim.nesterov, cfg.sched.name, cfg.aug.name) == (
        "vgg16", "sgd", True, "onecycle", "strong")
    assert (cfg.data.name, cfg.data.val_policy, cfg.test.tta, cfg.trainer.precision) == (
        "fer2013", "usage", "tencrop", "bf16-mixed")
    assert cfg.trainer.compile and cfg.trainer.channels_last and cfg.trainer.ema_decay > 0
    assert cfg.label_smoothing > 0 and cfg.data.on_device is None and not cfg.explain.enabled


@pytest.mark.parametrize("override,key", [("test.tta=fivecrop", "test.tta"), ("aug.impl=numpy", "aug.impl"),
                                          ("trainer.ema_decay=1.0", "trainer.ema_decay"),
                                          ("trainer.precision=bf32", "trainer.precision")])
def test_bad_pipeline_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key):
        validate(composed(override))


@pytest.mark.parametrize("alias,full", [("bf16", "bf16-mixed"), ("32", "32-true"), ("16", "16-mixed")])
def test_a_precision_alias_is_recorded_and_benchmarked_by_its_full_name(alias, full):
    """Lightning trains `bf16` as bf16-mixed: the run's param says so, and fer.bench's bare model runs in it too."""
    cfg = validate(composed(f"trainer.precision={alias}"), on_this_machine=False)
    assert cfg.trainer.precision == full
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(full)
    with bench_autocast(cfg.trainer.precision, torch.device("cpu")):
        assert torch.is_autocast_enabled("cpu") == (dtype is not None)
        if dtype is not None:
            assert torch.get_autocast_dtype("cpu") == dtype


@pytest.mark.parametrize("avx512_bf16,amx,expected", [(False, False, "32-true"), (True, False, "bf16-mixed"),
                                                      (False, True, "bf16-mixed")])
def test_the_laptop_recipe_takes_bf16_only_on_a_cpu_with_bf16_units(monkeypatch, avx512_bf16, amx, expected):
    """A laptop without AVX-512 BF16 or AMX would emulate bf16, slower than fp32: it trains in fp32."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert validate(composed("experiment=laptop")).trainer.precision == expected
    assert validate(composed("experiment=laptop", "trainer.precision=32-true")).trainer.precision == "32-true"
