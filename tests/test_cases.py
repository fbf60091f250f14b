"""The npz contract: validation with one clear line per problem, atomic output, label dtype."""

import zipfile

import numpy as np
import pytest

from medsam_laptop.io.case_files import list_cases
from medsam_laptop.io.cases import CaseError, label_dtype, read_case, write_segs
from medsam_laptop.io.npz import NpzError


def _save(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_reads_real_2d_and_3d_cases(cases_dir):
    case2d = read_case(cases_dir / "imgs" / "2DBox_US_stubus_01.npz")
    case3d = read_case(cases_dir / "imgs" / "3DBox_PET_ibsi-sts_STS002.npz")
    assert not case2d.is_3d and case2d.image.shape == (128, 128, 3) and case2d.boxes.shape == (1, 4)
    assert case3d.is_3d and case3d.image.shape == (48, 27, 30) and case3d.boxes.shape == (1, 6)


@pytest.mark.parametrize(
    "name, arrays, message",
    [
        ("2DBox_a.npz", {"imgs": np.zeros((8, 8, 3), np.uint8)}, "missing key(s) ['boxes']"),
        ("2DBox_a.npz", {"imgs": np.zeros((8, 8, 3), np.float32), "boxes": np.array([[1, 1, 4, 4]])}, "uint8"),
        ("2DBox_a.npz", {"imgs": np.zeros((8, 8), np.uint8), "boxes": np.array([[1, 1, 4, 4]])}, "(H, W, 3)"),
        ("3DBox_a.npz", {"imgs": np.zeros((4, 8, 8), np.uint8), "boxes": np.array([[1, 1, 4, 4]])}, "(N, 6)"),
        ("2DBox_a.npz", {"imgs": np.zeros((8, 8, 3), np.uint8), "boxes": np.array([[5, 1, 4, 4]])}, "inverted"),
        ("2DBox_a.npz", {"imgs": np.zeros((8, 8, 3), np.uint8), "boxes": np.array([[9, 9, 12, 12]])}, "outside"),
        ("2DBox_a.npz", {"imgs": np.zeros((8, 8, 3), np.uint8), "boxes": np.array([[1, np.nan, 4, 4]])}, "NaN"),
        (
            "2DBox_a.npz",
            {"imgs": np.zeros((8, 8, 3), np.uint8), "boxes": np.array([[1, 1, 4, 4]], dtype=object)},
            "pickled object array",
        ),
    ],
)
def test_bad_cases_raise_one_line(tmp_path, name, arrays, message):
    path = _save(tmp_path / name, **arrays)
    with pytest.raises(CaseError) as err:
        read_case(path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_not_a_zip_is_a_case_error(tmp_path):
    path = tmp_path / "2DBox_x.npz"
    path.write_bytes(b"not a zip at all")
    with pytest.raises(CaseError, match="not an npz file"):
        read_case(path)


def test_truncated_npz_is_a_case_error(tmp_path):
    path = _save(tmp_path / "2DBox_x.npz", imgs=np.zeros((64, 64, 3), np.uint8), boxes=np.array([[1, 1, 4, 4]]))
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CaseError):
        read_case(path)


def test_npz_refusals_become_case_errors(tmp_path):
    image = np.zeros((17, 256, 256), np.uint8)  # one slice over 1 MiB
    path = _save(tmp_path / "3DBox_x.npz", imgs=image, boxes=np.array([[1, 1, 1, 4, 4, 2]]))
    with pytest.raises(CaseError, match=r"^imgs of shape \(17, 256, 256\) exceeds the 1 MiB limit$") as err:
        read_case(path, max_image_bytes=1 << 20)
    assert isinstance(err.value.__cause__, NpzError) and err.value.__cause__.reason == "too-large"
    assert read_case(path, max_image_bytes=image.nbytes).image.shape == image.shape


def test_list_cases_skips_folders_and_other_files(tmp_path):
    (tmp_path / "sub.npz").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    _save(tmp_path / "2DBox_b.npz", imgs=np.zeros((4, 4, 3), np.uint8), boxes=np.zeros((0, 4)))
    _save(tmp_path / "2DBox_a.npz", imgs=np.zeros((4, 4, 3), np.uint8), boxes=np.zeros((0, 4)))
    assert [p.name for p in list_cases(tmp_path)] == ["2DBox_a.npz", "2DBox_b.npz"]


def test_write_is_atomic_and_named_like_the_input(tmp_path):
    segs = np.arange(12, dtype=np.uint8).reshape(3, 4)
    target = write_segs(tmp_path, "2DBox_x.npz", segs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2DBox_x.npz"]
    with zipfile.ZipFile(target) as z:
        assert z.namelist() == ["segs.npy"]
    np.testing.assert_array_equal(np.load(target)["segs"], segs)


def test_labels_above_255_use_uint16():
    assert label_dtype(255) == np.uint8 and label_dtype(256) == np.uint16
