"""`bench.pipelines` names come from the bench's registry: an unknown one is the usual one `fer: error:` line."""

from __future__ import annotations

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
