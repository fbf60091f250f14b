"""`python -m medsam_laptop predict` end to end: good cases segmented, a bad one reported, timer written."""
import csv
import shutil
import subprocess
import sys

import numpy as np

from conftest import REPO


def _predict(*args):
    return subprocess.run(
        [sys.executable, "-m", "medsam_laptop", "predict", *map(str, args)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )


def test_predict_folder_with_a_bad_case(tmp_path, cases_dir, reference_dir):
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    good = ["2DBox_US_stubus_01.npz", "3DBox_PET_ibsi-sts_STS002.npz"]
    for name in good:
        shutil.copy(cases_dir / "imgs" / name, inputs / name)
    np.savez(inputs / "2DBox_bad.npz", imgs=np.zeros((8, 8, 3), np.float64), boxes=np.array([[1, 1, 4, 4]]))
    (inputs / "readme.txt").write_text("not a case")

    result = _predict("-i", inputs, "-o", outputs)

    assert result.returncode == 1, result.stderr
    assert "error: 2DBox_bad.npz: imgs must be uint8, got float64" in result.stderr
    assert sorted(p.name for p in outputs.glob("*.npz")) == good
    for name in good:
        segs = np.load(outputs / name)["segs"]
        ref = np.load(reference_dir / "litemedsam-torch-segs" / name)["segs"]
        assert segs.shape == ref.shape and (segs == ref).mean() > 0.999
    with open(outputs / "efficiency_timer.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["case"] for r in rows] == ["2DBox_US_stubus_01.npz", "2DBox_bad.npz", "3DBox_PET_ibsi-sts_STS002.npz"]
    assert [r["status"] for r in rows] == ["ok", "error", "ok"]
    assert float(rows[0]["compile"]) > 0 and float(rows[2]["compile"]) == 0  # start-up charged to the first case
    assert int(rows[2]["slices_encoded"]) == 16
    assert (outputs / ".openvino_cache").is_dir() and any((outputs / ".openvino_cache").iterdir())


def test_missing_input_folder_is_a_usage_error(tmp_path):
    result = _predict("-i", tmp_path / "nope", "-o", tmp_path / "out")
    assert result.returncode == 2
    assert "input folder" in result.stderr and "does not exist" in result.stderr
