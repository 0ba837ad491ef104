"""The synthetic faces must be reproducible, balanced, and carry their class only inside their masks."""

import numpy as np
import pytest

from fer.data import synthetic
from fer.data.splits import Split
from fer.labels import EMOTIONS, IMAGE_SIZE, NUM_CLASSES

ANGRY, FEAR, HAPPY, SAD, SURPRISE = (EMOTIONS.index(e) for e in ("Angry", "Fear", "Happy", "Sad", "Surprise"))


@pytest.fixture(scope="module")
def batch() -> Split:
    return synthetic.generate(700, seed=0)


def test_shapes_dtypes_and_rows(batch):
    n = 700
    assert batch.images.shape == (n, IMAGE_SIZE, IMAGE_SIZE) and batch.images.dtype == np.uint8
    assert batch.labels.shape == (n,) and batch.labels.dtype == np.int64
    assert batch.masks.shape == (n, IMAGE_SIZE, IMAGE_SIZE) and batch.masks.dtype == bool
    np.testing.assert_array_equal(batch.rows, np.arange(1, n + 1))
    assert batch.labeled
    assert batch.images.min() < 40 and batch.images.max() > 200, "images should use most of the uint8 range"


def test_empty_request_gives_an_empty_split():
    empty = synthetic.generate(0, seed=0)
    assert len(empty) == 0 and empty.images.shape == (0, IMAGE_SIZE, IMAGE_SIZE)


@pytest.mark.parametrize("n, noise", [(-1, 0.06), (5, -0.1), (5, float("nan"))])
def test_rejects_bad_arguments(n, noise):
    with pytest.raises(ValueError):
        synthetic.generate(n, seed=0, noise=noise)


def test_same_seed_is_byte_identical_and_other_seeds_differ():
    a, b, c = synthetic.generate(60, seed=3), synthetic.generate(60, seed=3), synthetic.generate(60, seed=4)
    for field in ("images", "labels", "masks"):
        assert getattr(a, field).tobytes() == getattr(b, field).tobytes(), field
    assert not np.array_equal(a.images, c.images)
    assert not np.array_equal(a.masks, c.masks)


def test_noise_changes_only_pixels():
    clean, noisy = synthetic.generate(40, seed=5, noise=0.0), synthetic.generate(40, seed=5, noise=0.1)
    np.testing.assert_array_equal(clean.labels, noisy.labels)
    np.testing.assert_array_equal(clean.masks, noisy.masks)
    spread = (noisy.images.astype(float) - clean.images).std()
    assert 10 < spread < 40, spread  # ~0.1 of 255, less where clipping eats it


def test_classes_are_balanced(batch):
    counts = np.bincount(batch.labels, minlength=NUM_CLASSES)
    assert counts.min() >= len(batch) // NUM_CLASSES and counts.max() <= len(batch) // NUM_CLASSES + 1, counts


def test_masks_cover_a_minority_near_the_centre(batch):
    area = batch.masks.mean(axis=(1, 2))
    assert area.min() > 0.02, "every image has class-deciding regions"
    assert 0.05 < area.mean() < 0.3 and area.max() < 0.4, (area.mean(), area.max())
    frame = np.ones((IMAGE_SIZE, IMAGE_SIZE), bool)
    frame[1:-1, 1:-1] = False
    assert not (batch.masks & frame).any(), "features never reach the image border"
    ys, xs = np.mgrid[:IMAGE_SIZE, :IMAGE_SIZE]
    centre = (IMAGE_SIZE - 1) / 2
    weight = batch.masks.sum(axis=(1, 2))
    cy = (batch.masks * ys).sum(axis=(1, 2)) / weight
    cx = (batch.masks * xs).sum(axis=(1, 2)) / weight
    assert np.abs(cy - centre).max() < 10 and np.abs(cx - centre).max() < 8


def test_masks_grow_with_wide_eyes_and_open_mouths(batch):
    area = batch.masks.mean(axis=(1, 2))
    by_class = np.array([area[batch.labels == c].mean() for c in range(NUM_CLASSES)])
    assert by_class[FEAR] > 1.15 * by_class[ANGRY] and by_class[SURPRISE] > 1.15 * by_class[ANGRY], by_class


@pytest.mark.parametrize("a, b", [(HAPPY, SAD), (FEAR, SURPRISE), (ANGRY, SAD)])
def test_changing_the_expression_changes_only_masked_pixels(a, b):
    """Render the same poses, lighting and identities with two expressions: every pixel that differs
    must lie in one of the two masks, and the masks must hold real differences."""
    n = 64

    def render(label):
        params = synthetic._sample_params(np.random.default_rng(11), np.full(n, label))
        return synthetic._render(params)

    (img_a, mask_a), (img_b, mask_b) = render(a), render(b)
    diff = np.abs(img_a - img_b)
    inside = mask_a | mask_b
    assert diff[~inside].max() == 0
    changed = (diff > 0.1).mean(axis=(1, 2))
    assert (changed > 0.01).mean() > 0.9, "nearly every face visibly changes"
