"""`python -m fer.bench` on CPU with small sizes: the three rows and an exact FLOP count (timings not judged)."""

from __future__ import annotations

import json
import statistics

from helpers import call_fer
from omegaconf import OmegaConf

from fer.bench.__main__ import flops_per_image
from fer.config.options import compose
from fer.data.augment import training_side
from fer.labels import IMAGE_SIZE, NUM_CLASSES
from fer.runs.validate import validate
from fer.training.module import FERModule


def dnn_training_flops(widths: list[int]) -> int:
    """Per image, counted by hand: each Linear costs 2·in·out FLOPs forward, as much for its weight gradient,
    and as much again for its input gradient except the first layer's (the image needs no gradient)."""
    dims = [IMAGE_SIZE * IMAGE_SIZE, *widths, NUM_CLASSES]
    layers = [2 * a * b for a, b in zip(dims, dims[1:], strict=False)]
    return 2 * sum(layers) + sum(layers[1:])


def test_bench_cli_writes_the_three_rows(tmp_path):
    proc = call_fer("fer.bench", "model=dnn", "model.hidden=[64,32]", "aug=strong", "data.batch_size=32",
                    "bench.images=96", "bench.workers=0", "bench.rounds=2",
                    "bench.output=out/bench.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "out" / "bench.json").read_text())
    rows = {r["pipeline"]: r for r in result["rows"]}
    assert list(rows) == ["conventional", "fer", "bare"]
    assert result["bare_steps"] == 3  # as many as fer's timed epoch of 96 rows at batch 32
    for name, rates in result["timings"].items():  # the pipelines timed in turn; each row their median
        assert len(rates) == 2 and rows[name]["images_per_s"] == statistics.median(rates)
        # against bare within each round, so a slow spell that hit one round's pipelines alike cancels
        ratios = [a / b for a, b in zip(rates, result["timings"]["bare"], strict=True)]
        assert rows[name]["of_bare"] == statistics.median(ratios)
    for r in rows.values():
        assert r["images_per_s"] > 0 and r["s_per_fer2013_epoch"] > 0 and 0 < r["fraction_of_ceiling"] < 1
        assert abs(r["s_per_fer2013_epoch"] * r["images_per_s"] - 28709) < 1e-6 * 28709
    assert result["train_flops_per_image"] == dnn_training_flops([64, 32])
    assert result["matmul_ceiling_flops"] > 0 and result["device"] == "cpu"
    assert "conventional" in proc.stdout and "s per FER2013 epoch" in proc.stdout and "of bare" in proc.stdout


def test_a_model_trained_on_crops_is_timed_and_counted_at_the_crop_side():
    """aug=crop_flip trains on 44-px faces: the bare model and the FLOPs must see those, not 48 px."""
    cfg = validate(compose("bench", ["model=resnet", "aug=crop_flip"]))
    assert training_side(cfg.aug) == 44
    module = FERModule(OmegaConf.to_container(cfg, resolve=True), ["test"])
    ratio = flops_per_image(module, 44) / flops_per_image(module, 48)
    # each stage's map shrinks between (44/48)² and, floored by the pooling at 6 px → 5 px, (5/6)²
    assert (5 / 6) ** 2 - 1e-3 < ratio < (44 / 48) ** 2
