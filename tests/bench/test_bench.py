"""`python -m fer.bench` on CPU with small sizes: the three rows and an exact FLOP count (timings not judged)."""

from __future__ import annotations

import json

from helpers import run_fer

from fer.labels import IMAGE_SIZE, NUM_CLASSES


def dnn_training_flops(widths: list[int]) -> int:
    """Per image, counted by hand: each Linear costs 2·in·out FLOPs forward, as much for its weight gradient,
    and as much again for its input gradient except the first layer's (the image needs no gradient)."""
    dims = [IMAGE_SIZE * IMAGE_SIZE, *widths, NUM_CLASSES]
    layers = [2 * a * b for a, b in zip(dims, dims[1:], strict=False)]
    return 2 * sum(layers) + sum(layers[1:])


def test_bench_cli_writes_the_three_rows(tmp_path):
    proc = run_fer("fer.bench", "model=dnn", "model.hidden=[64,32]", "aug=strong", "data.batch_size=32",
                   "bench.images=96", "bench.workers=0", "bench.bare_steps=3", "bench.output=out/bench.json",
                   cwd=tmp_path)
    result = json.loads((tmp_path / "out" / "bench.json").read_text())
    rows = {r["pipeline"]: r for r in result["rows"]}
    assert list(rows) == ["conventional", "fer", "bare"]
    for r in rows.values():
        assert r["images_per_s"] > 0 and r["s_per_fer2013_epoch"] > 0 and 0 < r["fraction_of_ceiling"] < 1
        assert abs(r["s_per_fer2013_epoch"] * r["images_per_s"] - 28709) < 1e-6 * 28709
    assert result["train_flops_per_image"] == dnn_training_flops([64, 32])
    assert result["matmul_ceiling_flops"] > 0 and result["device"] == "cpu"
    assert "conventional" in proc.stdout and "s per FER2013 epoch" in proc.stdout
