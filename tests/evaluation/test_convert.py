"""NIfTI <-> npz conversion: axis order, spacing order, intensities, boxes and the round trip."""

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from evaluation.cli import main
from evaluation.convert import boxes_3d, clean_labels, preprocess_intensities

# A non-diagonal, anisotropic affine with an origin, so that any axis mix-up shows.
AFFINE = np.array([[0.0, -0.8, 0.0, 12.0], [0.9, 0.0, 0.0, -30.0], [0.0, 0.0, 3.0, 7.5], [0, 0, 0, 1]])
SHAPE_XYZ = (20, 16, 10)


def make_nifti(tmp_path):
    rng = np.random.default_rng(1)
    ct = rng.uniform(-1000, 1000, SHAPE_XYZ).astype(np.int16)
    labels = np.zeros(SHAPE_XYZ, np.int16)
    labels[2:9, 3:7, 1:6] = 5  # x 2..8, y 3..6, z 1..5: 140 voxels
    labels[12:18, 10:15, 4:9] = 2  # 150 voxels
    labels[15:18, 1:4, 7] = 9  # one slice only: dropped
    labels[1:3, 12:14, 2:4] = 7  # 8 voxels: dropped
    image = nib.Nifti1Image(ct, AFFINE)
    image.header.set_slope_inter(1.0, -1024.0)  # CT files often store HU with an intercept
    nib.save(image, tmp_path / "ct.nii.gz")
    nib.save(nib.Nifti1Image(labels, AFFINE), tmp_path / "labels.nii.gz")
    return ct.astype(float) - 1024.0, labels


def _segs_to_nifti(segs: Path, out: Path, *geometry: str | Path) -> int:
    return main(["convert", "segs-to-nifti", "--segs", str(segs), "-o", str(out), *map(str, geometry)])


def test_nifti_to_npz_and_back(tmp_path):
    hu, labels = make_nifti(tmp_path)
    out = tmp_path / "cases"
    assert (
        main(
            [
                "convert",
                "nifti-to-npz",
                "--image",
                str(tmp_path / "ct.nii.gz"),
                "--labels",
                str(tmp_path / "labels.nii.gz"),
                "--modality",
                "CT",
                "--case",
                "demo",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    imgs = np.load(out / "imgs" / "3DBox_CT_demo.npz")
    gts = np.load(out / "gts" / "3DBox_CT_demo.npz")
    assert set(imgs) == {"imgs", "boxes", "spacing"} and set(gts) == {"gts", "spacing"}

    assert imgs["imgs"].shape == gts["gts"].shape == SHAPE_XYZ[::-1]  # (z, y, x)
    np.testing.assert_allclose(imgs["spacing"], [0.9, 0.8, 3.0])  # (x, y, z): the column norms of the affine
    np.testing.assert_array_equal(imgs["spacing"], gts["spacing"])
    # Labels 2 and 5 survive, renumbered 1 and 2; box = [x_min, y_min, z_min, x_max, y_max, z_max] inclusive.
    assert gts["gts"].dtype == np.uint8 and np.unique(gts["gts"]).tolist() == [0, 1, 2]
    np.testing.assert_array_equal(imgs["boxes"], [[12, 10, 4, 17, 14, 8], [2, 3, 1, 8, 6, 5]])
    np.testing.assert_array_equal(gts["gts"][5, 3, 2], 2)  # voxel (x=2, y=3, z=5) at [z, y, x]
    np.testing.assert_array_equal(imgs["imgs"], preprocess_intensities(hu.transpose(2, 1, 0), "CT"))

    np.savez_compressed(tmp_path / "segs.npz", segs=gts["gts"])
    assert _segs_to_nifti(tmp_path / "segs.npz", tmp_path / "segs.nii.gz", "--reference", tmp_path / "ct.nii.gz") == 0
    back = nib.load(tmp_path / "segs.nii.gz")
    np.testing.assert_allclose(back.affine, AFFINE)
    expected = np.select([labels == 2, labels == 5], [1, 2], 0)
    np.testing.assert_array_equal(np.asanyarray(back.dataobj), expected)  # no intercept carried over
    assert back.get_data_dtype() == np.uint8

    spacing_from = out / "gts" / "3DBox_CT_demo.npz"
    assert _segs_to_nifti(tmp_path / "segs.npz", tmp_path / "plain.nii.gz", "--spacing-from", spacing_from) == 0
    plain = nib.load(tmp_path / "plain.nii.gz")
    np.testing.assert_allclose(plain.header.get_zooms(), [0.9, 0.8, 3.0])
    np.testing.assert_array_equal(np.asanyarray(plain.dataobj), expected)


def test_ct_window_by_hand():
    hu = np.array([-1000.0, -160.0, 40.0, 240.0, 1000.0, 100.0])
    # clip to 40 -/+ 200 = [-160, 240], then (v + 160) / 400 * 255, truncated
    np.testing.assert_array_equal(preprocess_intensities(hu, "CT"), [0, 0, 127, 255, 255, 165])


def test_mr_percentiles_keep_zeros():
    image = np.concatenate([np.zeros(10), np.arange(1.0, 1001.0)])
    out = preprocess_intensities(image, "MR")
    low, high = np.percentile(np.arange(1.0, 1001.0), [0.5, 99.5])  # 5.995, 995.005
    assert (out[:10] == 0).all()
    assert out[10] == 0 and out[-1] == 255
    assert out[10 + 499] == int((500 - low) / (high - low) * 255)  # the value 500
    assert preprocess_intensities(np.full(5, 7.0), "PET").tolist() == [0] * 5


def test_clean_labels_and_boxes():
    labels = np.zeros((6, 8, 8), np.int32)
    labels[1:4, 1:5, 2:5] = 300  # 36 voxels
    labels[2, 5:8, 0:8] = 4  # 24 voxels on one slice: dropped
    gts, kept = clean_labels(labels)
    assert kept == [300] and gts.max() == 1
    np.testing.assert_array_equal(boxes_3d(gts), [[2, 1, 1, 4, 4, 3]])
    many = np.broadcast_to(np.arange(1, 301)[None, :, None], (2, 300, 16))  # 300 labels, 2 slices x 16 voxels
    gts, kept = clean_labels(many)
    assert gts.dtype == np.uint16 and kept == list(range(1, 301))


def test_segs_to_nifti_needs_a_geometry(tmp_path):
    np.savez_compressed(tmp_path / "segs.npz", segs=np.zeros((2, 3, 4), np.uint8))
    with pytest.raises(SystemExit):
        _segs_to_nifti(tmp_path / "segs.npz", tmp_path / "x.nii.gz")
