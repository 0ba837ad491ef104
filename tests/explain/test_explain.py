"""Explanations measured on a briefly trained cnn: saliency lands on the class-deciding regions the synthetic
generator knows, and gradient ascent finds inputs that drive the filter it was run for; a DNN gets what applies."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from helpers import composed
from omegaconf import OmegaConf

from fer.data.datamodule import FERDataModule
from fer.data.load import load_splits
from fer.data.synthetic import generate
from fer.explain.ascent import filters_figure, visualize_filters
from fer.explain.figures import layer_output_figure, saliency_figure
from fer.explain.layers import gradcam_layer, rectified, resolve_layer
from fer.explain.render import MlflowSink, render_into_run
from fer.explain.saliency import METHODS, attribute, guided_rule_note, mass_ratio, normalize
from fer.models import create_model
from fer.runs.validate import validate
from fer.tracking.store import client_for
from fer.training.module import FERModule

pytestmark = pytest.mark.xdist_group("explained_cnn")  # one worker trains the module's cnn
PROBES = 35  # validation faces the ratios are averaged over (70 gave the same ratios within 0.13, at twice the cost)


@pytest.fixture(scope="module")
def cnn():
    """The default cnn trained 3 epochs on 2,800 synthetic faces (~23 s on one core; val_acc 0.60), and the same
    network untrained; both see the data through the same standardization."""
    cfg = composed("explain=none", "data.n_train=2800", "data.n_val=300", "data.n_test=100", "trainer.max_epochs=3",
                   "trainer.channels_last=false")  # the network the thresholds below were measured on
    splits = load_splits(cfg.data)
    config = OmegaConf.to_container(cfg, resolve=True)
    pl.seed_everything(0)
    untrained = FERModule(config, ["test"])
    untrained.normalizer.fit(splits.train.images)
    pl.seed_everything(0)
    trained = FERModule(config, ["test"])
    trained.normalizer.fit(splits.train.images)
    trainer = pl.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, deterministic=True)
    trainer.fit(trained, datamodule=FERDataModule(splits, cfg.data, cfg.aug))
    return trained.eval(), untrained.eval(), splits.val, float(trainer.callback_metrics["val_acc"])


def ratios(module, val) -> dict[str, float]:
    x = torch.from_numpy(val.images[:PROBES]).float().div(255).unsqueeze(1)
    y = torch.from_numpy(val.labels[:PROBES])
    masks = torch.from_numpy(val.masks[:PROBES])
    cam = gradcam_layer(module.net, None)[1]
    return {m: float(mass_ratio(normalize(attribute(module, x, y, m, gradcam_layer=cam)), masks).mean())
            for m in ("saliency", "integrated_gradients", "gradcam")}


@pytest.mark.slow
def test_saliency_concentrates_on_the_class_deciding_regions(cnn):
    trained, untrained, val, val_acc = cnn
    assert val_acc > 0.5  # chance is 0.14
    after, before = ratios(trained, val), ratios(untrained, val)
    print(f"mask mass / mask area, trained (val_acc {val_acc:.2f}): {after}; untrained: {before}")
    # the masks cover ~11 % of the image: a ratio of 1 is attribution spread like the area
    assert after["saliency"] > 2.5 and after["integrated_gradients"] > 2.5
    assert after["gradcam"] > 1.4  # Grad-CAM works at 6×6, bilinearly upsampled: its ceiling here is ~4
    for method in after:
        assert before[method] < 2.0, (method, before[method])
        assert after[method] > 1.5 * before[method], (method, after[method], before[method])


@pytest.mark.slow
def test_gradient_ascent_drives_the_filter_it_was_run_for(cnn):
    trained, _, _, _ = cnn
    name, conv = resolve_layer(trained.net, "conv:-1")
    act_name, act = rectified(trained.net, conv)
    assert act_name != name and isinstance(act, torch.nn.ReLU)
    channels = list(range(16))
    result = visualize_filters(trained, act, channels, steps=100, contrast=0.5, seed=0)
    print(f"{act_name}: start {result.start.mean():.3f} → final {result.final.mean():.3f}")
    assert result.images.shape == (16, 1, 48, 48) and 0 <= result.images.min() and result.images.max() <= 1
    assert (result.final > result.start).all() and result.final.mean() > 5 * result.start.mean()
    others = result.all_final.clone()
    others[torch.arange(16), channels] = float("-inf")
    # measured 14 of 16: a layer's broadly tuned channels can still outdo a filter on its own image
    assert (result.final > others.amax(1)).sum() >= 12, (result.final, others.amax(1))
    again = visualize_filters(trained, act, channels[:2], steps=5, seed=3)
    assert torch.equal(again.images, visualize_filters(trained, act, channels[:2], steps=5, seed=3).images)
    assert all(p.grad is None and p.requires_grad for p in trained.parameters())
    fig = filters_figure(result, "t", columns=8)
    assert len([ax for ax in fig.axes if ax.images]) == 16


def test_guided_backprop_says_when_it_is_plain_gradients():
    relu_cfg, selu_cfg = composed(), composed("act=selu")
    assert guided_rule_note(create_model(relu_cfg.model, relu_cfg.act)) is None
    assert "SELU" in guided_rule_note(create_model(selu_cfg.model, selu_cfg.act))


def test_figures_have_a_row_per_probe_and_a_tile_per_feature_map():
    rng = np.random.default_rng(0)
    faces, maps = rng.random((3, 48, 48)), rng.random((3, 48, 48))
    maps[2] = 0  # an all-zero attribution (a dead Grad-CAM) still draws
    fig = saliency_figure(faces, maps, ["Angry", "Happy", "Neutral"], ["Angry", "Sad", "Neutral"], [0.9, 0.5, 0.7],
                          "saliency", 0.3)
    assert len(fig.axes) == 9 and fig.axes[3].get_title().startswith("true Happy\npred Sad (50%)")
    masked = fig.axes[2].images[0].get_array()
    assert np.array_equal(masked, np.where(maps[0] / maps[0].max() > 0.3, faces[0], 0.0))
    fig = layer_output_figure(faces[0], rng.random((16, 24, 24)), "features.0")
    assert len(fig.axes) == 17 and [ax.get_title() for ax in fig.axes[1:3]] == ["ch 0", "ch 1"]


def test_a_dnn_is_explained_without_gradcam_or_feature_maps(tmp_path, empty_store):
    """A DNN as large as VGG16, untrained: saliency for every method but Grad-CAM, filters of its first hidden
    layer, no layer outputs, and the run says why in its notes tag."""
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    cfg = validate(composed("model=dnn", "model.match=vgg16", "explain.filters.steps=2", "explain.filters.n=2"))
    module = FERModule(OmegaConf.to_container(cfg, resolve=True), ["test"])
    client = client_for(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp_id = client.create_experiment("dnn", artifact_location=(tmp_path / "mlruns").as_uri())
    run_id = client.create_run(exp_id).info.run_id
    notes = render_into_run(module, generate(21, seed=1), cfg.explain, MlflowSink(client, run_id))
    assert {a.path for a in client.list_artifacts(run_id, "saliency")} == {
        f"saliency/{m}.png" for m in METHODS if m != "gradcam"}
    assert [a.path for a in client.list_artifacts(run_id, "filters")] == ["filters/classifier.0.png"]
    assert not client.list_artifacts(run_id, "layer_outputs")
    tag = client.get_run(run_id).data.tags["fer.explain.notes"]
    assert tag == "; ".join(notes) and "gradcam skipped" in tag and "layer outputs skipped" in tag
