"""FER+ on tiny files the tests write: votes into labels the way the paper's code makes them, rows paired by
position with FER2013's pixels, the faces FER+ leaves out, and FER2013 cleaned by FER+."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import faces, write_fer_csv, write_ferplus

from fer.data.readers.ferplus import LABEL_MODES, clean_fer2013, process, read_ferplus
from fer.errors import DataError
from fer.labels import FERPLUS_EMOTIONS
from fer.training.module import any_vote_hits, label_mode_loss

N, H, SU, SA, AN, DI, FE, CO, UNK, NF = range(10)


def votes(**counts) -> np.ndarray:
    """Ten vote counts by FER+ column (n, h, su, sa, an, di, fe, co, unk, nf)."""
    names = ("n", "h", "su", "sa", "an", "di", "fe", "co", "unk", "nf")
    return np.array([counts.get(k, 0) for k in names], dtype=float)


def shares(**nonzero) -> np.ndarray:
    out = np.zeros(10)
    for k, v in nonzero.items():
        out[("n", "h", "su", "sa", "an", "di", "fe", "co", "unk", "nf").index(k)] = v
    return out


@pytest.mark.parametrize("mode,face,expected", [
    # single votes are outliers: removed before anything is counted
    ("majority", votes(n=6, h=2, su=1, sa=1), shares(n=1)),
    ("majority", votes(h=7, n=3), shares(h=1)),
    ("majority", votes(n=4, h=4, su=2), shares(unk=1)),  # a tie: no class has more than half
    ("majority", votes(n=5, h=3, su=2), shares(unk=1)),  # exactly half is not a majority
    ("majority", votes(nf=10), shares(nf=1)),
    ("crossentropy", votes(n=5, h=3, su=2), shares(n=5 / 8, h=3 / 8)),  # stops once 75 % of the votes are in
    ("crossentropy", votes(n=4, h=4, su=2), shares(n=0.5, h=0.5)),  # tied classes enter together
    ("crossentropy", votes(h=6, su=3, n=1), shares(h=2 / 3, su=1 / 3)),
    ("crossentropy", votes(unk=6, n=4), shares(unk=1)),  # unknown is the most voted: no label
    ("crossentropy", votes(n=4, unk=3, h=3), shares(n=4 / 7, h=3 / 7)),  # unknown tied with an emotion: left out
    ("crossentropy", votes(n=3, h=3, su=2, sa=2), shares(unk=1)),  # four classes: too spread
    ("probability", votes(n=5, h=3, su=2), shares(n=5 / 8, h=3 / 8)),
    ("multilabel", votes(n=5, h=3, su=2), shares(n=5 / 8, h=3 / 8)),  # 30 % or more of the votes
    ("multilabel", votes(n=4, h=4, su=2), shares(n=0.5, h=0.5)),
    ("multilabel", votes(n=2, h=2, su=2, sa=2, an=2), shares(unk=1)),  # none reaches 30 %
])
def test_votes_become_targets_as_the_papers_code_makes_them(mode, face, expected):
    assert np.allclose(process(face, mode), expected)


# Twelve faces: (Usage, image name, votes), and what becomes of each.
ROWS = [
    ("Training", "a", votes(n=10)),  # 0 neutral
    ("Training", "a", votes(h=6, su=3, n=1)),  # 1 happiness; crossentropy 2/3 happiness, 1/3 surprise
    ("Training", "a", votes(n=4, h=4, su=2)),  # 2 no majority: dropped, except by the distribution modes
    ("Training", "a", votes(nf=10)),  # 3 not a face
    ("Training", "", votes(nf=10)),  # 4 no FER+ image
    ("Training", "a", votes(n=2, unk=8)),  # 5 unknown
    ("Training", "a", votes(co=10)),  # 6 contempt
    ("Training", "a", votes(su=9, fe=1)),  # 7 surprise
    ("PublicTest", "a", votes(n=3, h=7)),  # 8 happiness; vote shares 0.3, 0.7
    ("PublicTest", "a", votes(n=4, h=4, su=2)),  # 9 no majority: dropped whatever the mode (tests are majority)
    ("PrivateTest", "a", votes(an=8, di=2)),  # 10 anger
    ("PrivateTest", "a", votes(di=10)),  # 11 disgust
]


@pytest.fixture
def files(tmp_path):
    usages = [u for u, _, _ in ROWS]
    pixels = write_fer_csv(tmp_path / "fer2013.csv", faces(len(ROWS)), [i % 7 for i in range(len(ROWS))], usages)
    labels = write_ferplus(tmp_path / "fer2013new.csv", usages, [v.astype(int) for _, _, v in ROWS],
                           [n for _, n, _ in ROWS])
    return pixels, labels


def test_majority_keeps_the_clear_faces_with_ferplus_labels_and_lists_the_rest(files, capsys):
    pixels, labels = files
    result = read_ferplus(pixels, labels, "majority")
    assert result.classes == FERPLUS_EMOTIONS and len(FERPLUS_EMOTIONS) == 8
    train, public, private = (result.splits[u] for u in ("Training", "PublicTest", "PrivateTest"))
    assert train.rows.tolist() == [2, 3, 8, 9] and train.labels.tolist() == [0, 1, 7, 2]  # csv lines of rows 0,1,6,7
    assert public.labels.tolist() == [1] and private.labels.tolist() == [4, 5]
    assert np.array_equal(train.images, faces(len(ROWS))[[0, 1, 6, 7]])
    assert np.allclose(train.targets, np.eye(8)[[0, 1, 7, 2]])  # majority: one-hot
    assert np.allclose(public.targets[0, :2], [0.3, 0.7])  # evaluation: the annotators' own shares
    dropped = dict(result.dropped)
    assert sorted(dropped) == [4, 5, 6, 7, 11]
    assert dropped[4] == "fer2013new.csv:4: no clear label (neutral 4, happiness 4, surprise 2)"
    assert dropped[5] == "fer2013new.csv:5: not a face (NF 10)"
    assert dropped[6] == "fer2013new.csv:6: FER+ has no image for it (not a face)"
    assert dropped[7] == "fer2013new.csv:7: unknown (neutral 2, unknown 8)"
    assert "FER+ left out 5 of 12 faces" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["probability", "crossentropy", "multilabel"])
def test_distribution_modes_train_on_the_vote_shares_and_test_on_the_majority(files, mode):
    pixels, labels = files
    result = read_ferplus(pixels, labels, mode)
    train = result.splits["Training"]
    assert train.rows.tolist() == [2, 3, 4, 8, 9]  # the tied face is kept for training
    assert np.allclose(train.targets[1, :3], [0, 2 / 3, 1 / 3]) and np.allclose(train.targets[2, :2], [0.5, 0.5])
    assert train.labels.tolist() == [0, 1, 0, 7, 2]
    assert result.splits["PublicTest"].rows.tolist() == [10]  # the same test rows in every mode
    assert np.allclose(train.targets.sum(1), 1)


def test_rows_pair_by_position_even_when_a_malformed_pixel_row_is_skipped(files):
    pixels, labels = files
    lines = pixels.read_text().splitlines()
    lines[2] = lines[2].replace(",", ",x", 1)  # row 1 (line 3) no longer parses
    pixels.write_text("\n".join(lines) + "\n")
    result = read_ferplus(pixels, labels, "majority", on_bad_row="skip")
    train = result.splits["Training"]
    assert train.rows.tolist() == [2, 8, 9] and train.labels.tolist() == [0, 7, 2]
    assert [line for line, _ in result.skipped] == [3]


def test_a_labels_file_longer_than_the_pixels_pairs_its_first_rows(tmp_path, files, capsys):
    """The shared npz holds Training and PublicTest only; fer2013new.csv goes on with PrivateTest."""
    pixels, labels = files
    short = write_fer_csv(tmp_path / "short.csv", faces(9), [0] * 9, [u for u, _, _ in ROWS[:9]])
    result = read_ferplus(short, labels, "majority")
    assert set(result.splits) == {"Training", "PublicTest"} and len(result.splits["PublicTest"]) == 1
    assert "fer2013new.csv has 12 rows and short.csv 9: the first 9 are paired by position" in capsys.readouterr().err


def test_usage_disagreement_names_the_first_line_and_how_many(files):
    pixels, labels = files
    text = labels.read_text().replace("PrivateTest", "PublicTest")
    labels.write_text(text)
    with pytest.raises(DataError) as info:
        read_ferplus(pixels, labels, "majority")
    assert str(info.value) == (f"{labels}:12: Usage PublicTest but row 12 of {pixels} is PrivateTest (2 of 12 rows "
                               "disagree): the files are not row-aligned; expected fer2013new.csv beside the "
                               "fer2013.csv it relabels")


def test_training_rows_reordered_are_found_by_their_image_names(tmp_path):
    """Two Training rows swapped keep their Usage, so only the names FER+ gives each face show it."""
    usages = [u for u, _, _ in ROWS]
    pixels = write_fer_csv(tmp_path / "fer2013.csv", faces(len(ROWS)), [i % 7 for i in range(len(ROWS))], usages)
    rows = [(u, f"fer{i:07d}.png" if n else "", v.astype(int)) for i, (u, n, v) in enumerate(ROWS)]
    rows[1], rows[3] = rows[3], rows[1]
    labels = write_ferplus(tmp_path / "fer2013new.csv", [u for u, _, _ in rows], [v for _, _, v in rows],
                           [n for _, n, _ in rows])
    with pytest.raises(DataError) as info:
        read_ferplus(pixels, labels, "majority")
    assert str(info.value) == (f"{labels}:4: Image name fer0000002.png after fer0000003.png: the rows are not in "
                               "FER+'s published order (2 such places), and FER+ pairs with FER2013's pixels by "
                               "position, so faces would get other faces' votes; expected fer2013new.csv with its "
                               "rows as published")


def test_clean_keeps_fer2013_labels_without_the_faces_ferplus_calls_not_a_face(files, capsys):
    pixels, labels = files
    result = clean_fer2013(pixels, labels)
    train = result.splits["Training"]
    assert train.rows.tolist() == [2, 3, 4, 7, 8, 9] and train.labels.tolist() == [0, 1, 2, 5, 6, 0]
    assert train.targets is None and result.classes[0] == "Angry"
    assert sorted(dict(result.dropped)) == [5, 6]
    assert "left out 2 of 12 faces as not a face (data.clean=ferplus)" in capsys.readouterr().err


def test_each_label_mode_has_a_loss_that_prefers_the_targets():
    targets = torch.tensor([[0.0, 2 / 3, 1 / 3, 0, 0, 0, 0, 0]])
    right = torch.tensor([[0.0, 3.0, 2.0, 0, 0, 0, 0, 0]])
    wrong = torch.tensor([[3.0, 0.0, 0.0, 0, 0, 0, 0, 0]])
    for mode in LABEL_MODES:
        torch.manual_seed(0)
        assert label_mode_loss(right, targets, mode, 0.0) < label_mode_loss(wrong, targets, mode, 0.0), mode
    soft = torch.nn.functional.cross_entropy(right, targets)
    assert torch.isclose(label_mode_loss(right, targets, "crossentropy", 0.0), soft)
    # multilabel: predicting either accepted class is equally right
    second = torch.tensor([[0.0, 0.0, 5.0, 0, 0, 0, 0, 0]])
    first = torch.tensor([[0.0, 5.0, 0.0, 0, 0, 0, 0, 0]])
    assert torch.isclose(label_mode_loss(first, targets, "multilabel", 0.0),
                         label_mode_loss(second, targets, "multilabel", 0.0))
    drawn = {int(torch.multinomial(targets, 1)) for _ in range(200)}
    assert drawn == {1, 2}  # probability: labels drawn only where annotators voted


def test_any_vote_counts_predictions_some_annotator_chose():
    shares_ = torch.tensor([[0.3, 0.7, 0, 0, 0, 0, 0, 0], [0.0, 0.0, 1.0, 0, 0, 0, 0, 0]])
    logits = torch.tensor([[5.0, 0, 0, 0, 0, 0, 0, 0], [5.0, 0, 0, 0, 0, 0, 0, 0]])
    assert any_vote_hits(logits, shares_).tolist() == [1.0, 0.0]

