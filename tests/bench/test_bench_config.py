"""`bench.pipelines` names come from the bench's registry: an unknown one is the usual one `fer: error:` line."""

from __future__ import annotations

import pytest
from helpers import call_fer

from fer.bench.__main__ import PIPELINES
from fer.data.augment import AUGMENTATIONS


def test_the_registry_names_every_pipeline_and_one_per_augmentation_impl():
    assert PIPELINES.key == "bench.pipelines"
    assert PIPELINES.names() == ("conventional", "fer", *(f"fer_{impl}" for impl in AUGMENTATIONS), "bare")


def test_an_unknown_pipeline_is_one_error_line_naming_the_key_and_the_choices(tmp_path):
    proc = call_fer("fer.bench", "bench.pipelines=[fer,fast]", "bench.output=out/bench.json", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("fer: error: ")]
    assert errors == ["fer: error: config key 'bench.pipelines': expected names among conventional, fer, "
                      "fer_kornia, fer_fused, bare, got ['fast']"], proc.stderr
    assert proc.stderr.rstrip().endswith(errors[0]) and "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("arg, says", [
    ("bench.output={tmp}/a-file/bench.json", "config key 'bench.output': expected a path through folders "
                                             "({tmp}/a-file is a file), got '{tmp}/a-file/bench.json'"),
    ("bench.workers=-1", "config key 'bench.workers': expected 0 or more, got -1"),
    ("bench.matmul_size=0", "config key 'bench.matmul_size': expected 1 or more, got 0"),
], ids=["output-through-a-file", "negative-workers", "no-matmul"])
def test_what_would_fail_after_the_timing_is_refused_before_it(tmp_path, arg, says):
    """The bench times for minutes: its output and settings are checked before the first step, not after."""
    (tmp_path / "a-file").write_text("not a folder")
    proc = call_fer("fer.bench", arg.format(tmp=tmp_path), cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [f"fer: error: {says.format(tmp=tmp_path)}"]
    assert not list(tmp_path.rglob("*.json"))  # nothing timed
