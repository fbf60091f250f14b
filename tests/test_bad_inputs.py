"""A corpus of bad inputs in one folder: each costs its own case only, with one clear stderr line.

Run with `-s` (or see the terminal summary) to read the message a user gets for every kind.
"""
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from conftest import REPO

GOOD = ["2DBox_US_stubus_01.npz", "3DBox_PET_ibsi-sts_STS002.npz"]
IMG2D = np.zeros((32, 32, 3), np.uint8)
IMG3D = np.zeros((4, 32, 32), np.uint8)
BOX2D = np.array([[4, 4, 20, 20]])
BOX3D = np.array([[4, 4, 1, 20, 20, 2]])

# kind -> (file name, arrays or raw bytes, expected stderr fragment)
BAD = {
    "not a zip": ("2DBox_notzip.npz", b"plain text, not a zip", "not an npz file"),
    "truncated npz": ("2DBox_truncated.npz", "truncate", "not a readable npz file"),
    "pickled object array": ("2DBox_pickle.npz", {"imgs": IMG2D, "boxes": np.array([[1, 2, 3, 4]], object)},
                             "boxes is a pickled object array, which is refused"),
    "missing imgs": ("2DBox_noimgs.npz", {"boxes": BOX2D}, "missing key(s) ['imgs']"),
    "missing boxes": ("2DBox_noboxes.npz", {"imgs": IMG2D}, "missing key(s) ['boxes']"),
    "float image": ("2DBox_float.npz", {"imgs": IMG2D.astype(np.float32), "boxes": BOX2D},
                    "imgs must be uint8, got float32"),
    "int16 image with values > 255": ("2DBox_int16.npz", {"imgs": IMG2D.astype(np.int16) + 300, "boxes": BOX2D},
                                      "imgs must be uint8, got int16"),
    "grey 2D image": ("2DBox_grey.npz", {"imgs": IMG2D[:, :, 0], "boxes": BOX2D}, "imgs must be (H, W, 3)"),
    "NaN coordinate": ("2DBox_nan.npz", {"imgs": IMG2D, "boxes": np.array([[1.0, np.nan, 5, 5]])}, "NaN or inf"),
    "inf coordinate": ("2DBox_inf.npz", {"imgs": IMG2D, "boxes": np.array([[1.0, 1, np.inf, 5]])}, "NaN or inf"),
    "inverted box": ("2DBox_inverted.npz", {"imgs": IMG2D, "boxes": np.array([[20, 4, 4, 20]])}, "box 1 is inverted"),
    "box wholly outside": ("2DBox_outside.npz", {"imgs": IMG2D, "boxes": np.array([[40, 40, 50, 50]])},
                           "box 1 lies outside the image"),
    "3D box with inverted z": ("3DBox_zinv.npz", {"imgs": IMG3D, "boxes": np.array([[4, 4, 3, 20, 20, 1]])},
                               "box 1 is inverted"),
    "2D data under a 3D name": ("3DBox_was2d.npz", {"imgs": IMG2D, "boxes": BOX2D}, "boxes must be (N, 6)"),
    "3D data under a 2D name": ("2DBox_was3d.npz", {"imgs": IMG3D, "boxes": BOX3D}, "imgs must be (H, W, 3)"),
    "huge volume": ("3DBox_huge.npz", {"imgs": np.zeros((40, 256, 256), np.uint8), "boxes": BOX3D},
                    "exceeds the 1 MiB limit"),
}
MESSAGES: list[str] = []


def _write(path, content):
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "truncate":
        np.savez_compressed(path, imgs=np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8), boxes=BOX2D)
        path.write_bytes(path.read_bytes()[:2000])
    else:
        np.savez(path, **content)


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory, cases_dir):
    root = tmp_path_factory.mktemp("bad")
    inputs, outputs = root / "inputs", root / "outputs"
    inputs.mkdir()
    for name in GOOD:
        shutil.copy(cases_dir / "imgs" / name, inputs / name)
    for name, content, _ in BAD.values():
        _write(inputs / name, content)
    # Accepted oddities: fractional coordinates, a zero-width box, a box partly outside, z_min == z_max,
    # no boxes at all, and more than 255 boxes (labels need uint16).
    np.savez(inputs / "2DBox_odd.npz", imgs=IMG2D + 90, boxes=np.array([[3.7, 4.2, 20.9, 20.5], [5, 5, 5, 9], [20, 20, 40, 40]]))
    np.savez(inputs / "3DBox_oneslice.npz", imgs=IMG3D + 50, boxes=np.array([[4, 4, 2, 20, 20, 2]]))
    np.savez(inputs / "2DBox_empty.npz", imgs=IMG2D, boxes=np.zeros((0, 4), np.int64))
    many = np.zeros((64, 64, 3), np.uint8)
    many[20:44, 20:44] = 230
    boxes = np.array([[x, y, x + 6, y + 6] for x in range(0, 64, 4) for y in range(0, 64, 4)] + [[20, 20, 43, 43]])
    np.savez(inputs / "2DBox_many.npz", imgs=many, boxes=boxes)
    (inputs / "notes.txt").write_text("not a case")
    (inputs / "subfolder").mkdir()
    before = sorted(p.name for p in inputs.iterdir())
    os.chmod(inputs, 0o555)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "medsam_laptop", "predict", "-i", str(inputs), "-o", str(outputs)],
            cwd=REPO, capture_output=True, text=True, timeout=900, env={**os.environ, "MEDSAM_MAX_IMAGE_MB": "1"},
        )
    finally:
        os.chmod(inputs, 0o755)
    assert sorted(p.name for p in inputs.iterdir()) == before  # nothing written into the inputs
    return result, outputs


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_case_gets_one_clear_line(kind, bad_run):
    result, outputs = bad_run
    name, _, fragment = BAD[kind]
    lines = [line for line in result.stderr.splitlines() if line.startswith(f"error: {name}:")]
    assert len(lines) == 1 and fragment in lines[0], result.stderr
    assert not (outputs / name).exists()
    MESSAGES.append(f"{kind:32s} {lines[0]}")


def test_run_reports_failure_and_keeps_the_rest(bad_run):
    result, outputs = bad_run
    assert result.returncode == 1
    written = sorted(p.name for p in outputs.iterdir() if p.suffix == ".npz")
    accepted = ["2DBox_empty.npz", "2DBox_many.npz", "2DBox_odd.npz", "3DBox_oneslice.npz"]
    assert written == sorted(GOOD + accepted)
    assert not [p for p in outputs.iterdir() if p.name.endswith(".tmp")]
    for name in written:
        with zipfile.ZipFile(outputs / name) as z:
            assert z.namelist() == ["segs.npy"]
    assert f"done: {len(written)} of {len(written) + len(BAD)} cases" in result.stderr
    assert "note: ignoring 2 entries" in result.stderr
    assert "warning: 2DBox_empty.npz: no boxes; writing an empty segmentation" in result.stderr


def test_accepted_oddities_give_sound_outputs(bad_run):
    _, outputs = bad_run
    empty = np.load(outputs / "2DBox_empty.npz")["segs"]
    assert empty.shape == (32, 32) and empty.dtype == np.uint8 and not empty.any()
    one = np.load(outputs / "3DBox_oneslice.npz")["segs"]
    assert one.shape == (4, 32, 32) and not one[[0, 1, 3]].any()
    many = np.load(outputs / "2DBox_many.npz")["segs"]
    assert many.dtype == np.uint16 and many.max() == 257
    assert np.load(outputs / "2DBox_odd.npz")["segs"].shape == (32, 32)


def test_unwritable_output_folder_is_a_usage_error(tmp_path, cases_dir):
    blocker = tmp_path / "out"
    blocker.write_text("a file where the output folder should be")
    result = subprocess.run(
        [sys.executable, "-m", "medsam_laptop", "predict", "-i", str(cases_dir / "imgs"), "-o", str(blocker)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2 and "is not writable" in result.stderr
    MESSAGES.append(f"{'unwritable output folder':32s} {result.stderr.strip()}")
