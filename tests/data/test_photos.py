"""Faces in ordinary photos: found where they are, in the photo as its EXIF tag turns it, made 48×48 grey."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import ASTRONAUT_FACE, astronaut, write_photos
from PIL import Image

from fer.data.photos import crop, faces_in, find_faces, photo_files, read_photo
from fer.errors import DataError


def centre_on_face(box, face=ASTRONAUT_FACE, dx: int = 0) -> bool:
    x, y, w, h = box
    left, top, right, bottom = face
    return left + dx < x + w / 2 < right + dx and top < y + h / 2 < bottom


def test_the_astronaut_has_one_face_and_its_box_is_on_it():
    (face,) = find_faces(astronaut(), "cascade", margin=0.2)
    assert centre_on_face(face.box)
    assert 60 <= face.box[2] <= 160  # a face, not the whole photo or an eye
    assert face.pixels.shape == (48, 48) and face.pixels.dtype == np.uint8


def test_several_faces_in_one_photo_and_none_in_a_photo_without():
    two = find_faces(np.concatenate([astronaut(), astronaut()], axis=1), "cascade", margin=0.2)
    assert len(two) == 2 and centre_on_face(two[0].box) and centre_on_face(two[1].box, dx=512)
    import skimage.data

    assert find_faces(skimage.data.coffee(), "cascade", margin=0.2) == []


def test_exif_rotation_is_honoured_and_grey_photos_work(tmp_path):
    """A phone stores the sensor's pixels and says in EXIF how to turn them; the face is found upright."""
    upright = Image.fromarray(astronaut())
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    upright.rotate(90, expand=True).save(tmp_path / "phone.jpg", exif=exif, quality=92)
    rgb = read_photo(tmp_path / "phone.jpg")
    assert rgb.shape == (512, 512, 3)
    (face,) = find_faces(rgb, "cascade", margin=0.2)
    assert centre_on_face(face.box)
    upright.convert("L").save(tmp_path / "grey.png")
    assert len(find_faces(read_photo(tmp_path / "grey.png"), "cascade", margin=0.2)) == 1


def test_a_precropped_face_is_the_whole_image_and_crops_repeat_the_edge():
    face = np.tile(np.arange(96, dtype=np.uint8), (96, 1))
    (whole,) = find_faces(np.stack([face] * 3, axis=-1), "none", margin=0.2)
    assert whole.box == (0, 0, 96, 96) and whole.pixels.shape == (48, 48)
    assert np.all(np.diff(whole.pixels[0].astype(int)) > 0)  # the ramp, halved, neither flipped nor padded
    corner = crop(face, (0, 0, 20, 20), margin=0.5)  # reaches past the photo's top-left corner
    assert corner.shape == (48, 48) and corner[:, 0].max() == 0


def test_bad_files_are_said_once_each_and_the_rest_goes_on(tmp_path):
    expected = write_photos(tmp_path / "photos")
    said = []
    found = {name: len(faces) for name, _, faces in
             faces_in(tmp_path / "photos", photo_files(tmp_path / "photos"), "cascade", 0.2, said.append)}
    assert found == {k: v for k, v in expected.items() if v}
    assert said == ["coffee.webp: no face found",
                    f"skipped {tmp_path / 'photos' / 'notes.jpg'}: cannot decode image: not an image Pillow can read; "
                    "expected one of .jpg, .jpeg, .png, .webp, .bmp"]


def test_a_truncated_photo_is_said_as_damaged(tmp_path):
    Image.fromarray(astronaut()).save(tmp_path / "cut.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "cut.jpg").read_bytes()[:4000])
    with pytest.raises(DataError, match=r"cut.jpg: cannot decode image: damaged \("):
        read_photo(tmp_path / "cut.jpg")


def test_a_folder_without_photos_and_a_missing_path_are_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no photos here")
    with pytest.raises(DataError, match="the folder has no photos"):
        photo_files(tmp_path / "empty")
    with pytest.raises(DataError, match="no such file or folder"):
        photo_files(tmp_path / "nowhere")


def test_a_16_bit_photo_is_read_at_its_depth_and_one_too_large_is_skipped(tmp_path, monkeypatch):
    """Pillow's 8-bit conversion clips 16-bit gray to white; a file past its pixel limit ends only itself."""
    gray = np.asarray(Image.fromarray(astronaut()).convert("L"), dtype=np.uint16)
    (tmp_path / "photos").mkdir()
    Image.fromarray(gray * 257).save(tmp_path / "photos" / "deep.png")  # 16-bit: what 8-bit 0–255 was
    assert Image.open(tmp_path / "photos" / "deep.png").mode in ("I;16", "I")  # Pillow 10 reads it as I
    Image.new("L", (600, 600)).save(tmp_path / "photos" / "huge.png")
    Image.fromarray(astronaut()).save(tmp_path / "photos" / "later.jpg")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 140_000)  # refused past twice this, 280,000: 600² is, 512² is not
    said = []
    found = {name: faces for name, _, faces in
             faces_in(tmp_path / "photos", photo_files(tmp_path / "photos"), "cascade", 0.2, said.append)}
    assert sorted(found) == ["deep.png", "later.jpg"]
    (deep,), (later,) = found["deep.png"], found["later.jpg"]
    assert centre_on_face(deep.box) and np.abs(deep.pixels.astype(int) - later.pixels).mean() < 8
    assert said == [f"skipped {tmp_path / 'photos' / 'huge.png'}: 360,000 pixels, more than Pillow decodes safely "
                    "(280,000); scale it down"]
