"""Validation policy, `limit`, and what the data module hands the model (augmentation on training only)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from fer.config.schema import AugConfig, DataConfig
from fer.data.batch import Batch
from fer.data.datamodule import FERDataModule
from fer.data.splits import UNLABELED, Split, arrange
from fer.errors import DataError


def split(n: int, start: int = 0, labels=None, unlabeled: bool = False) -> Split:
    images = (np.arange(start, start + n)[:, None, None] % 256 * np.ones((1, 48, 48))).astype(np.uint8)
    y = np.full(n, UNLABELED) if unlabeled else (np.arange(n) % 7 if labels is None else np.asarray(labels))
    return Split(images, y.astype(np.int64), rows=np.arange(start + 2, start + n + 2))


def data_cfg(**kw):
    return OmegaConf.structured(DataConfig(name="fer2013", path="x", **kw))


def test_usage_gives_training_publictest_and_reports_tests_apart():
    raw = {"Training": split(70), "PublicTest": split(14, 100), "PrivateTest": split(21, 200)}
    s = arrange(raw, data_cfg(), "f.csv")
    assert len(s.train) == 70 and s.val is raw["PublicTest"]
    assert list(s.tests) == ["public", "private"] and len(s.tests["private"]) == 21


def test_fraction_and_first_n_without_usage():
    raw = {"train": split(100), "test": split(30, 500, unlabeled=True)}
    s = arrange(raw, data_cfg(val_policy="fraction", val_fraction=0.2), "d")
    assert (len(s.train), len(s.val)) == (80, 20)
    assert not set(s.train.rows) & set(s.val.rows)
    assert s.tests == {} and len(s.predict) == 30
    s = arrange(raw, data_cfg(val_policy="first", val_count=10), "d")
    assert list(s.val.rows) == list(range(2, 12)) and len(s.train) == 90


def test_same_seed_same_split_other_seed_other_split():
    raw = {"train": split(200)}
    a, b = (arrange(raw, data_cfg(val_policy="fraction", seed=s), "d").val.rows for s in (0, 0))
    c = arrange(raw, data_cfg(val_policy="fraction", seed=1), "d").val.rows
    assert list(a) == list(b) and list(a) != list(c)


def test_limit_caps_every_split_keeping_classes_mixed():
    raw = {"Training": split(700, labels=np.repeat(np.arange(7), 100)), "PublicTest": split(70, 1000)}
    s = arrange(raw, data_cfg(limit=50), "f.csv")
    assert len(s.train) == 50 and len(s.val) == 50 and len(s.tests["public"]) == 50
    assert len(np.unique(s.train.labels)) >= 5  # a random subset, not the first 50 rows (all Angry)
    assert np.all(np.diff(s.train.rows) > 0)


def test_usage_policy_without_publictest_is_refused():
    with pytest.raises(DataError, match="PublicTest"):
        arrange({"Training": split(20)}, data_cfg(val_policy="usage"), "f.csv")


def test_missing_class_in_training_warns(capsys):
    arrange({"train": split(40, labels=np.arange(40) % 6)}, data_cfg(val_policy="first", val_count=5), "d")
    assert "no training example of class 6 Neutral" in capsys.readouterr().err


class FakeTrainer:
    def __init__(self, training: bool):
        self.training = training


@pytest.mark.parametrize("impl", ["kornia", "fused"])
@pytest.mark.parametrize("aug", ["keras", "strong"])
def test_augmentation_only_on_training_batches_with_per_sample_parameters(aug, impl):
    cfg = {"keras": AugConfig(name="keras", rotation=10, shift=0.1, shear=0.1, zoom=0.1, hflip=True, impl=impl),
           "strong": AugConfig(name="strong", crop_padding=4, hflip=True, rotation=15, erasing=0.5, impl=impl)}[aug]
    raw = {"train": split(64)}
    s = arrange(raw, data_cfg(val_policy="first", val_count=8), "d")
    dm = FERDataModule(s, data_cfg(batch_size=16), OmegaConf.structured(cfg))
    x = torch.rand(16, 1, 48, 48).mul(255).to(torch.uint8)
    x[:] = x[0]  # identical images: different outputs can only come from per-sample parameters
    y = torch.zeros(16, dtype=torch.long)
    dm.trainer = FakeTrainer(training=False)
    plain = dm.on_after_batch_transfer(Batch(x, y), 0).images
    assert torch.equal(plain, x.float() / 255)
    dm.trainer = FakeTrainer(training=True)
    augmented, labels, _ = dm.on_after_batch_transfer(Batch(x, y), 0)
    assert augmented.shape == plain.shape and torch.equal(labels, y)
    assert not torch.allclose(augmented, plain)
    per_sample = augmented.flatten(1)
    assert (per_sample[1:] - per_sample[0]).abs().sum(1).gt(1e-3).sum() >= 12


def test_batches_are_slices_in_order_for_evaluation():
    s = arrange({"train": split(50)}, data_cfg(val_policy="first", val_count=10), "d")
    dm = FERDataModule(s, data_cfg(batch_size=4), OmegaConf.structured(AugConfig()))
    batches = list(dm.val_dataloader())
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    assert torch.equal(torch.cat([b[0] for b in batches]).squeeze(1), torch.from_numpy(s.val.images))


@pytest.mark.parametrize("fixed", [False, True])
def test_training_batches_are_all_full_for_a_model_that_needs_one_shape(fixed):
    s = arrange({"train": split(52)}, data_cfg(val_policy="first", val_count=10), "d")
    dm = FERDataModule(s, data_cfg(batch_size=4), OmegaConf.structured(AugConfig()))
    dm.trainer = SimpleNamespace(lightning_module=SimpleNamespace(fixed_batch_shape=fixed), world_size=1)
    train = list(dm.train_dataloader())
    assert [len(b[1]) for b in train] == [4] * 10 + ([] if fixed else [2])  # 42 rows
    rows = torch.cat([b[0][:, 0, 0, 0] for b in train]).tolist()  # each image holds its row number
    assert len(set(rows)) == (40 if fixed else 42) and set(rows) <= set(s.train.images[:, 0, 0].tolist())


@pytest.mark.parametrize("cfg,setting", [(dict(val_policy="first", val_count=10), "data.val_count=10"),
                                         (dict(val_policy="fraction", val_fraction=0.5), "data.val_fraction=0.5")])
def test_validation_that_leaves_no_training_rows_is_refused(cfg, setting):
    with pytest.raises(DataError) as info:
        arrange({"train": split(1 if "fraction" in setting else 10)}, data_cfg(**cfg), "d.csv")
    assert str(info.value).startswith(f"d.csv: the train split has no rows: {setting} takes")
