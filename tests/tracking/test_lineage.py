"""Dataset lineage: each split is a dataset input whose digest changes exactly when its rows do."""

from __future__ import annotations

from helpers import composed, faces, write_fer_csv

from fer.data.load import load_splits
from fer.tracking.lineage import dataset_inputs


def digests(*overrides) -> dict[str, str]:
    cfg = composed("data.n_train=70", "data.n_val=14", "data.n_test=14", *overrides)
    return {i.dataset.name: i.dataset.digest for i in dataset_inputs(load_splits(cfg.data), cfg.data)}


def test_same_data_same_digests_other_data_other_digests():
    first = digests()
    assert first == digests() and len(set(first.values())) == 3
    other = digests("data.seed=1")
    assert all(other[k] != v for k, v in first.items())


def test_a_file_data_set_names_its_file_and_splits_by_usage(tmp_path):
    usages = ["Training"] * 8 + ["PublicTest"] * 3 + ["PrivateTest"] * 3
    path = write_fer_csv(tmp_path / "fer2013.csv", faces(len(usages)), [i % 7 for i in range(len(usages))], usages)
    cfg = composed("data=fer2013", f"data.path={path}")
    inputs = dataset_inputs(load_splits(cfg.data), cfg.data)
    assert [i.dataset.name for i in inputs] == ["fer2013-train", "fer2013-val", "fer2013-test_public",
                                                "fer2013-test_private"]
    assert [{t.key: t.value for t in i.tags}["mlflow.data.context"] for i in inputs] == [
        "training", "validation", "test", "test"]
    assert all(str(path) in i.dataset.source for i in inputs)
