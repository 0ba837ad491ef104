"""The readers on tiny files written here: exact round trips, the csv cache, one clear error per bad input."""

from __future__ import annotations

import os

import numpy as np
import pytest
from helpers import faces, pixel_text, save, write_fer_csv, write_hw3
from PIL import Image

from fer.data.readers import ReadResult, read_fer2013, read_folder, read_hw3
from fer.data.splits import UNLABELED
from fer.errors import DataError

USAGES = ["Training"] * 4 + ["PublicTest"] * 3 + ["PrivateTest"] * 2 + ["Training"]


@pytest.fixture
def fer_data():
    images = faces(len(USAGES))
    labels = np.arange(len(USAGES)) % 7
    return images, labels


def assert_fer_splits(result: ReadResult, images, labels, rows):
    assert isinstance(result, ReadResult) and result.skipped == []
    assert list(result.splits) == ["Training", "PublicTest", "PrivateTest"]
    usage = np.array(USAGES)
    for name, split in result.splits.items():
        index = np.flatnonzero(usage == name)
        assert split.images.dtype == np.uint8 and split.labels.dtype == np.int64
        np.testing.assert_array_equal(split.images, images[index])
        np.testing.assert_array_equal(split.labels, labels[index])
        np.testing.assert_array_equal(split.rows, np.asarray(rows)[index])


# --- fer2013 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["fer2013.csv", "fer2013.csv.gz"])
def test_fer2013_csv_round_trips_pixel_exact(tmp_path, fer_data, name):
    images, labels = fer_data
    path = write_fer_csv(tmp_path / name, images, labels, USAGES)
    result = read_fer2013(path)
    assert_fer_splits(result, images, labels, rows=np.arange(len(USAGES)) + 2)  # line 1 is the header
    assert result.splits["Training"].rows[-1] == 11


def test_fer2013_npz_round_trips(tmp_path, fer_data):
    images, labels = fer_data
    path = tmp_path / "fer.npz"
    np.savez(path, pixels=images, emotion=labels.astype(np.int32), usage=np.array(USAGES))
    assert_fer_splits(read_fer2013(path), images, labels, rows=np.arange(len(USAGES)) + 1)
    assert not (tmp_path / "fer.prepared.npz").exists()


def test_fer2013_csv_layout_variants(tmp_path, fer_data):
    """Column order, extra columns, quotes, CRLF, a BOM and a trailing blank line are all accepted."""
    images, labels = fer_data
    lines = ['\ufeffUsage,note,pixels,emotion']
    lines += [f'{u},x,"{pixel_text(im)}",{lab}' for u, im, lab in zip(USAGES, images, labels, strict=True)]
    path = tmp_path / "odd.csv"
    path.write_text("\r\n".join(lines) + "\r\n\r\n", encoding="utf-8", newline="")
    assert_fer_splits(read_fer2013(path), images, labels, rows=np.arange(len(USAGES)) + 2)


def test_fer2013_without_usage_is_all_training(tmp_path, fer_data):
    images, labels = fer_data
    result = read_fer2013(write_fer_csv(tmp_path / "fer.csv", images, labels))
    assert list(result.splits) == ["Training"]
    np.testing.assert_array_equal(result.splits["Training"].images, images)


def test_csv_cache_is_written_then_used(tmp_path, fer_data, capsys):
    images, labels = fer_data
    path = write_fer_csv(tmp_path / "fer2013.csv", images, labels, USAGES)
    first = read_fer2013(path)
    err = capsys.readouterr().err
    cache = tmp_path / "fer2013.prepared.npz"
    assert f"parsed 10 rows of {path}" in err and f"cached as {cache}" in err
    assert cache.is_file()

    # Break the csv but keep it older than the cache: a second call that parsed it would fail.
    path.write_text("garbage\n")
    os.utime(path, ns=(cache.stat().st_mtime_ns - 10**9,) * 2)
    second = read_fer2013(path)
    assert capsys.readouterr().err.strip() == f"fer: using cached {cache} (delete it to re-parse {path})"
    assert_fer_splits(second, images, labels, rows=np.arange(len(USAGES)) + 2)
    for name, split in first.splits.items():
        np.testing.assert_array_equal(second.splits[name].images, split.images)


def test_csv_newer_than_cache_is_reparsed(tmp_path, fer_data, capsys):
    images, labels = fer_data
    path = write_fer_csv(tmp_path / "fer2013.csv", images, labels, USAGES)
    read_fer2013(path)
    cache = tmp_path / "fer2013.prepared.npz"
    new_labels = (labels + 1) % 7
    write_fer_csv(path, images, new_labels, USAGES)
    os.utime(path, ns=(cache.stat().st_mtime_ns + 10**9,) * 2)
    capsys.readouterr()
    result = read_fer2013(path)
    assert "parsed 10 rows" in capsys.readouterr().err
    assert_fer_splits(result, images, new_labels, rows=np.arange(len(USAGES)) + 2)


def test_unreadable_cache_is_replaced(tmp_path, fer_data, capsys):
    images, labels = fer_data
    path = write_fer_csv(tmp_path / "fer2013.csv", images, labels, USAGES)
    cache = tmp_path / "fer2013.prepared.npz"
    cache.write_bytes(b"not an npz")
    os.utime(cache, ns=(path.stat().st_mtime_ns + 10**9,) * 2)
    assert_fer_splits(read_fer2013(path), images, labels, rows=np.arange(len(USAGES)) + 2)
    err = capsys.readouterr().err
    assert f"cannot use cache {cache}" in err and "cached as" in err
    assert read_fer2013(path).splits.keys() == {"Training", "PublicTest", "PrivateTest"}
    assert "using cached" in capsys.readouterr().err


def test_cache_that_cannot_be_written_is_skipped_with_a_note(tmp_path, fer_data, capsys):
    images, labels = fer_data
    folder = tmp_path / "ro"
    folder.mkdir()
    path = write_fer_csv(folder / "fer2013.csv", images, labels, USAGES)
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as a user who can write to read-only folders")
        assert_fer_splits(read_fer2013(path), images, labels, rows=np.arange(len(USAGES)) + 2)
    finally:
        folder.chmod(0o755)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not cached" in err[0] and "parsed 10 rows" in err[0]
    assert not (folder / "fer2013.prepared.npz").exists()


def test_cache_write_failure_does_not_fail_the_read(tmp_path, fer_data, capsys):
    images, labels = fer_data
    path = write_fer_csv(tmp_path / "fer2013.csv", images, labels, USAGES)
    (tmp_path / "fer2013.prepared.npz").mkdir()  # the cache's name is taken by a folder
    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)
    assert_fer_splits(read_fer2013(path), images, labels, rows=np.arange(len(USAGES)) + 2)
    assert "not cached" in capsys.readouterr().err


# --- hw3 ----------------------------------------------------------------------------------------------


def test_hw3_train_and_unlabeled_test_with_ids(tmp_path):
    train, test = faces(6, 1), faces(3, 2)
    folder = write_hw3(tmp_path / "hw3", train, [0, 1, 2, 3, 4, 5], test, [7, 8, 9])
    for path in (folder, folder / "train.csv"):
        result = read_hw3(path)
        assert list(result.splits) == ["train", "test"] and result.skipped == []
        np.testing.assert_array_equal(result.splits["train"].images, train)
        np.testing.assert_array_equal(result.splits["train"].labels, [0, 1, 2, 3, 4, 5])
        np.testing.assert_array_equal(result.splits["train"].rows, [2, 3, 4, 5, 6, 7])
        split = result.splits["test"]
        np.testing.assert_array_equal(split.images, test)
        assert (split.labels == UNLABELED).all() and not split.labeled
        assert split.ids.dtype == np.int64 and split.ids.tolist() == [7, 8, 9]


def test_hw3_without_test_csv(tmp_path):
    folder = write_hw3(tmp_path / "hw3", faces(2), [3, 4])
    assert list(read_hw3(folder).splits) == ["train"]


# --- image folders ------------------------------------------------------------------------------------


def test_folder_reader(tmp_path, capsys):
    images = faces(5, 3)
    save(tmp_path / "train/Happy/b.png", images[0])
    save(tmp_path / "train/happy/a.png", images[1])  # name folders match case-insensitively
    save(tmp_path / "train/0/z.png", images[2])  # digit folders are labels
    save(tmp_path / "train/surprise/big.png", np.full((64, 64), 200, np.uint8))
    save(tmp_path / "train/sad/rgb.png", np.stack([images[3]] * 3, -1), mode="RGB")
    (tmp_path / "train/sad/notes.txt").write_text("not an image")
    save(tmp_path / "test/neutral/t.png", images[4])
    result = read_folder(tmp_path)

    assert list(result.splits) == ["train", "test"] and result.skipped == []
    train = result.splits["train"]
    assert train.ids.tolist() == ["train/0/z.png", "train/Happy/b.png", "train/happy/a.png",
                                  "train/sad/rgb.png", "train/surprise/big.png"]
    assert train.labels.tolist() == [0, 3, 3, 4, 5] and train.rows.tolist() == [1, 2, 3, 4, 5]
    np.testing.assert_array_equal(train.images[:4], images[[2, 0, 1, 3]])
    assert train.images.shape == (5, 48, 48) and (train.images[4] == 200).all()
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"fer: resized 1 images of {tmp_path} to 48×48 (first: train/surprise/big.png, 64×64)",
                   f"fer: converted 1 colour images of {tmp_path} to grayscale (first: train/sad/rgb.png, RGB)"]
    test = result.splits["test"]
    assert test.labels.tolist() == [6] and test.ids.tolist() == ["test/neutral/t.png"]
    np.testing.assert_array_equal(test.images[0], images[4])


def test_folder_in_the_adjective_naming_with_16_bit_images(tmp_path):
    """The popular release whose class folders are adjectives (disgusted, fearful, surprised), and a 16-bit PNG
    read at its depth, not clipped to white."""
    images = faces(7, 4)
    for label, name in enumerate(["angry", "disgusted", "fearful", "happy", "sad", "surprised", "neutral"]):
        save(tmp_path / f"train/{name}/{label}.png", images[label])
    Image.fromarray(images[3].astype(np.uint16) * 257).save(tmp_path / "train/happy/deep.png")
    train = read_folder(tmp_path).splits["train"]
    assert train.labels.tolist() == [0, 1, 2, 3, 3, 4, 5, 6]
    assert train.ids.tolist()[3:5] == ["train/happy/3.png", "train/happy/deep.png"]
    np.testing.assert_array_equal(train.images[4], images[3])


def test_folder_without_test(tmp_path):
    save(tmp_path / "train/fear/a.jpg", faces(1)[0])
    result = read_folder(tmp_path)
    assert list(result.splits) == ["train"] and result.splits["train"].labels.tolist() == [2]


# --- errors -------------------------------------------------------------------------------------------


def bad_csv(tmp_path, row: int, edit) -> tuple:
    """fer2013.csv with row `row` (0-based data row) edited; returns the path and its line number."""
    images, labels = faces(4), [0, 1, 2, 3]
    lines = [f"{lab},{pixel_text(im)},Training" for lab, im in zip(labels, images, strict=True)]
    lines[row] = edit(lines[row])
    path = tmp_path / "fer2013.csv"
    path.write_text("emotion,pixels,Usage\n" + "\n".join(lines) + "\n")
    return path, row + 2


def drop_pixel(line):
    return line.rsplit(" ", 1)[0] + "," + line.rsplit(",", 1)[1]


def set_field(i, value):
    def edit(line):
        fields = line.split(",")
        fields[i] = value
        return ",".join(fields)
    return edit


def replace_pixel(value):
    """Replace the 10th pixel token."""
    def edit(line):
        label, pixels, usage = line.split(",")
        tokens = pixels.split(" ")
        tokens[9] = value
        return ",".join([label, " ".join(tokens), usage])
    return edit


@pytest.mark.parametrize(("edit", "expected"), [
    (drop_pixel, ["2303 pixels", "2304"]),
    (lambda line: line.replace(",Training", " 7,Training"), ["2305 pixels", "2304"]),
    (replace_pixel("abc"), ["'abc'"]),
    (replace_pixel("12.5"), ["'12.5'"]),
    (replace_pixel("256"), ["256", "0–255"]),
    (replace_pixel("-1"), ["-1", "0–255"]),
    (set_field(0, "7"), ["label 7", "0–6"]),
    (set_field(0, "-1"), ["label -1", "0–6"]),
    (set_field(0, "happy"), ["'happy'"]),
    (set_field(2, "Validation"), ["'Validation'", "Training, PublicTest, PrivateTest"]),
    (lambda line: line.rsplit(",", 2)[1], ["only 1 of 3 fields"]),
], ids=["short", "long", "non-numeric", "float", "over-255", "negative", "label-7", "label-neg", "label-name",
        "usage", "one-field"])
@pytest.mark.parametrize("row", [0, 2])
def test_malformed_csv_row_names_file_and_line(tmp_path, edit, expected, row):
    path, line = bad_csv(tmp_path, row, edit)
    with pytest.raises(DataError) as info:
        read_fer2013(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: ") and "\n" not in message
    for part in expected:
        assert part in message
    assert not (tmp_path / "fer2013.prepared.npz").exists()


@pytest.mark.parametrize(("text", "expected"), [
    ("", "empty file"),
    ("  \n\n", "empty file"),
    ("\ufeff\n", "empty file"),
    ("emotion,pixels,Usage\n", "no data rows"),
    ("emotion,Usage\n0,Training\n", "missing column 'pixels'"),
    ("label,feature\n0,1 2 3\n", "found header 'label,feature'"),
])
def test_bad_fer_csv_file(tmp_path, text, expected):
    path = tmp_path / "fer2013.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=expected) as info:
        read_fer2013(path)
    assert str(path) in str(info.value)


def test_missing_column_lists_expected_columns(tmp_path):
    path = tmp_path / "fer2013.csv"
    path.write_text("emotion,Usage\n0,Training\n")
    with pytest.raises(DataError) as info:
        read_fer2013(path)
    assert str(info.value).startswith(f"{path}:1: ") and "emotion,pixels" in str(info.value)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(DataError, match="no such file") as info:
        read_fer2013(tmp_path / "nope.csv")
    assert "nope.csv" in str(info.value)
    with pytest.raises(DataError, match="is a folder"):
        read_fer2013(tmp_path)
    (tmp_path / "bad.csv.gz").write_bytes(b"\x1f\x8b" + b"junk" * 10)
    with pytest.raises(DataError, match="gzip") as info:
        read_fer2013(tmp_path / "bad.csv.gz")
    assert "bad.csv.gz" in str(info.value)


@pytest.mark.parametrize(("arrays", "expected"), [
    ({"emotion": np.zeros(2, int)}, "missing array 'pixels'"),
    ({"pixels": np.zeros((2, 48, 48), np.uint8)}, "missing array 'emotion'"),
    ({"pixels": np.zeros((2, 48, 48), np.float32), "emotion": np.zeros(2, int)}, "float32 .*uint8"),
    ({"pixels": np.zeros((2, 2304), np.uint8), "emotion": np.zeros(2, int)}, r"\(2, 2304\).*\(N, 48, 48\)"),
    ({"pixels": np.zeros((2, 48, 48), np.uint8), "emotion": np.zeros(3, int)}, "'emotion'.*\\(3,\\)"),
    ({"pixels": np.zeros((2, 48, 48), np.uint8), "emotion": np.zeros(2, float)}, "'emotion' is float64"),
    ({"pixels": np.zeros((2, 48, 48), np.uint8), "emotion": np.array([0, 9])}, "row 2: label 9"),
    ({"pixels": np.zeros((2, 48, 48), np.uint8), "emotion": np.zeros(2, int),
      "usage": np.array(["Training", "Val"])}, "row 2: unknown Usage 'Val'"),
])
def test_bad_npz(tmp_path, arrays, expected):
    path = tmp_path / "fer.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=expected) as info:
        read_fer2013(path)
    assert str(path) in str(info.value)


def test_npz_that_is_not_an_npz(tmp_path):
    path = tmp_path / "fer.npz"
    path.write_bytes(b"hello")
    with pytest.raises(DataError, match="not a readable .npz") as info:
        read_fer2013(path)
    assert "fer.npz" in str(info.value)


def test_hw3_errors(tmp_path):
    with pytest.raises(DataError, match="train.csv"):
        read_hw3(tmp_path / "missing")
    with pytest.raises(DataError, match="no train.csv in this folder"):
        read_hw3(tmp_path)
    folder = write_hw3(tmp_path / "hw3", faces(2), [0, 9])
    with pytest.raises(DataError) as info:
        read_hw3(folder)
    assert str(info.value).startswith(f"{folder / 'train.csv'}:3: label 9")
    write_hw3(folder, faces(2), [0, 1], faces(2), ["1", "x"])
    with pytest.raises(DataError) as info:
        read_hw3(folder)
    assert str(info.value).startswith(f"{folder / 'test.csv'}:3: id 'x'")
    (folder / "train.csv").write_text("label,pixels\n0,1 2\n")
    with pytest.raises(DataError, match="missing column 'feature'.*found header 'label,pixels'"):
        read_hw3(folder)


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="no such folder; expected .*train/<class>"):
        read_folder(tmp_path / "missing")
    with pytest.raises(DataError, match="no train folder"):
        read_folder(tmp_path)
    (tmp_path / "train/happy").mkdir(parents=True)
    with pytest.raises(DataError, match="no images") as info:
        read_folder(tmp_path)
    assert str(tmp_path / "train") in str(info.value)
    (tmp_path / "train/happy/broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match="cannot decode image") as info:
        read_folder(tmp_path)
    assert str(info.value).startswith(str(tmp_path / "train/happy/broken.png"))
    (tmp_path / "train/happy/broken.png").unlink()
    save(tmp_path / "train/happy/ok.png", faces(1)[0])
    (tmp_path / "train/joyful").mkdir()
    with pytest.raises(DataError, match="unknown class folder 'joyful'; expected one of angry, disgust"):
        read_folder(tmp_path)


# --- on_bad_row="skip" --------------------------------------------------------------------------------


def test_skip_drops_bad_rows_and_reports_their_lines(tmp_path, fer_data, capsys):
    images, labels = fer_data
    path = write_fer_csv(tmp_path / "fer2013.csv", images, labels, USAGES)
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace("Training", "Validation")  # line 3
    lines[5] = lines[5].rsplit(" ", 1)[0] + ",PublicTest"  # line 6: 2303 pixels
    path.write_text("\n".join(lines) + "\n")

    for _ in range(2):  # parsed, then from the cache
        result = read_fer2013(path, on_bad_row="skip")
        assert [line for line, _ in result.skipped] == [3, 6]
        assert all(reason.startswith("fer2013.csv: ") for _, reason in result.skipped)
        assert "Validation" in result.skipped[0][1] and "2303 pixels" in result.skipped[1][1]
        kept = np.array([i for i in range(len(USAGES)) if i + 2 not in (3, 6)])
        train = result.splits["Training"]
        np.testing.assert_array_equal(train.rows, [2, 4, 5, 11])
        np.testing.assert_array_equal(train.images, images[[0, 2, 3, 9]])
        assert sum(len(s) for s in result.splits.values()) == len(kept)
    assert "using cached" in capsys.readouterr().err

    with pytest.raises(DataError) as info:  # the cache remembers the bad rows
        read_fer2013(path)
    assert str(info.value).startswith(f"{path}:3: unknown Usage 'Validation'")


def test_skip_in_hw3_and_npz(tmp_path):
    folder = write_hw3(tmp_path / "hw3", faces(3), [0, 8, 1], faces(2), [1, 2])
    result = read_hw3(folder, on_bad_row="skip")
    assert len(result.skipped) == 1 and result.skipped[0][0] == 3
    assert result.skipped[0][1].startswith("train.csv: label 8 out of range; expected 0–6 (0 Angry")
    assert result.splits["train"].labels.tolist() == [0, 1] and len(result.splits["test"]) == 2

    path = tmp_path / "fer.npz"
    np.savez(path, pixels=faces(3), emotion=np.array([0, 7, 1]))
    result = read_fer2013(path, on_bad_row="skip")
    assert [line for line, _ in result.skipped] == [2]
    assert result.splits["Training"].rows.tolist() == [1, 3]


def test_all_rows_bad_is_an_error_even_when_skipping(tmp_path):
    path = tmp_path / "fer2013.csv"
    path.write_text("emotion,pixels,Usage\n9,1 2,Training\n")
    with pytest.raises(DataError, match="all 1 data rows are malformed"):
        read_fer2013(path, on_bad_row="skip")


def test_unknown_on_bad_row_mode(tmp_path):
    with pytest.raises(ValueError, match="on_bad_row"):
        read_fer2013(tmp_path / "x.csv", on_bad_row="ignore")


def test_skip_in_folders_leaves_out_undecodable_images(tmp_path):
    images = faces(3, 5)
    save(tmp_path / "train/happy/a.png", images[0])
    (tmp_path / "train/happy/b.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    save(tmp_path / "train/sad/c.png", images[1])
    (tmp_path / "test/sad").mkdir(parents=True)
    (tmp_path / "test/sad/d.jpg").write_bytes(b"not a jpeg")
    save(tmp_path / "test/fear/e.png", images[2])
    with pytest.raises(DataError) as info:
        read_folder(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'train/happy/b.png'}: cannot decode image")
    assert "expected a .png/.jpg/.jpeg/.bmp image" in str(info.value)

    result = read_folder(tmp_path, on_bad_row="skip")
    assert [(line, reason.split(":")[0]) for line, reason in result.skipped] == [(2, "train/happy/b.png"),
                                                                                  (2, "test/sad/d.jpg")]
    train, test = result.splits["train"], result.splits["test"]
    assert train.ids.tolist() == ["train/happy/a.png", "train/sad/c.png"] and train.rows.tolist() == [1, 3]
    np.testing.assert_array_equal(train.images, images[:2])
    assert test.ids.tolist() == ["test/fear/e.png"] and test.labels.tolist() == [2]

    (tmp_path / "test/fear/e.png").write_bytes(b"")
    with pytest.raises(DataError, match="none of its 2 images decode; the first: test/fear/e.png: cannot decode"):
        read_folder(tmp_path, on_bad_row="skip")
