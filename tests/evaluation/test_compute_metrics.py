"""Folder scoring with untrusted seg files, the CLI and its outputs."""

import csv
import math
import pickle
from pathlib import Path

import numpy as np
import pytest

from evaluation.cli import main
from evaluation.compute_metrics import OK, score_folder
from evaluation.leaderboard import OVERALL, summarize
from evaluation.metrics import MetricOptions
from medsam_laptop.io.case_files import modality_group


def square_case(size: int = 32) -> np.ndarray:
    gts = np.zeros((size, size), np.uint8)
    gts[4:20, 6:22] = 1
    gts[22:30, 20:30] = 2
    return gts


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """gts/ and segs/ with one good 2D and 3D case and one broken seg of every kind."""
    gt_dir, seg_dir = tmp_path / "gts", tmp_path / "segs"
    gt_dir.mkdir()
    seg_dir.mkdir()
    gts2d = square_case()
    gts3d = np.zeros((8, 16, 16), np.uint8)
    gts3d[2:6, 4:12, 4:12] = 1
    for name in (
        "2DBox_US_ok.npz",
        "2DBox_US_missing.npz",
        "2DBox_US_garbage.npz",
        "2DBox_US_pickle.npz",
        "2DBox_US_wrongkey.npz",
        "2DBox_US_shape.npz",
        "2DBox_US_npy.npz",
        "2DBox_XRay_float.npz",
    ):
        np.savez_compressed(gt_dir / name, gts=gts2d)
    np.savez_compressed(gt_dir / "3DBox_CT_ok.npz", gts=gts3d, spacing=np.array([0.8, 0.8, 2.5]))

    shifted = np.roll(gts2d, 1, axis=1)
    np.savez_compressed(seg_dir / "2DBox_US_ok.npz", segs=shifted)
    (seg_dir / "2DBox_US_garbage.npz").write_bytes(b"not a zip file at all")
    np.savez(seg_dir / "2DBox_US_pickle.npz", segs=np.array([{"a": 1}], dtype=object))
    np.savez_compressed(seg_dir / "2DBox_US_wrongkey.npz", seg=shifted)
    np.savez_compressed(seg_dir / "2DBox_US_shape.npz", segs=shifted[:-1])
    with open(seg_dir / "2DBox_US_npy.npz", "wb") as f:
        np.save(f, shifted)
    np.savez_compressed(seg_dir / "2DBox_XRay_float.npz", segs=shifted.astype(np.float32))
    np.savez_compressed(seg_dir / "3DBox_CT_ok.npz", segs=np.roll(gts3d, 1, axis=2))
    (seg_dir / "unrelated.txt").write_text("ignored")
    return gt_dir, seg_dir


def test_broken_segs_score_zero_with_a_reason(folders):
    gt_dir, seg_dir = folders
    results = {r.case: r for r in score_folder(seg_dir, gt_dir)}
    assert len(results) == 9
    assert {case: r.status for case, r in results.items() if r.status != OK} == {
        "2DBox_US_missing.npz": "missing",
        "2DBox_US_garbage.npz": "unreadable",
        "2DBox_US_pickle.npz": "wrong-dtype",
        "2DBox_US_wrongkey.npz": "unreadable",
        "2DBox_US_shape.npz": "wrong-shape",
        "2DBox_US_npy.npz": "unreadable",
    }
    for r in results.values():
        if r.status != OK:
            assert (r.dsc, r.nsd) == (0.0, 0.0) and r.detail
    ok = results["2DBox_US_ok.npz"]
    # Each square loses one column to the shift: (2 * 16*15 / 512 + 2 * 8*9 / 160) / 2.
    assert ok.dsc == float(np.round((2 * 240 / 512 + 2 * 72 / 160) / 2, 4))
    assert ok.nsd == 1.0  # a one-pixel translation is within the 2 px tolerance
    assert (results["2DBox_XRay_float.npz"].dsc, results["2DBox_XRay_float.npz"].nsd) == (ok.dsc, ok.nsd)
    # 3D: shifted one voxel along axis 2 (x, 0.8 mm). The stored (x, y, z) spacing gives axis 2
    # the 2.5 mm of z, beyond tolerance; with the spacing reversed the shift is 0.8 mm.
    assert results["3DBox_CT_ok.npz"].dsc == 0.875 and results["3DBox_CT_ok.npz"].nsd < 1.0
    corrected = score_folder(seg_dir, gt_dir, MetricOptions(spacing="zyx"), cases=["3DBox_CT_ok.npz"])[0]
    assert (corrected.dsc, corrected.nsd) == (0.875, 1.0)


def test_size_limit(folders):
    gt_dir, seg_dir = folders
    result = score_folder(seg_dir, gt_dir, cases=["2DBox_US_ok.npz"], max_seg_bytes=100)[0]
    assert (result.status, result.dsc, result.nsd) == ("too-large", 0.0, 0.0)
    assert result.detail == "segs of shape (32, 32) exceeds the 100 bytes limit"  # read from the header


def test_cli_writes_all_outputs_and_workers_agree(folders, tmp_path, capsys):
    gt_dir, seg_dir = folders
    assert (
        main(["compute-metrics", "-s", str(seg_dir), "-g", str(gt_dir), "-o", str(tmp_path / "out"), "-j", "2", "-q"])
        == 1
    )  # six segs scored 0
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} == {"metrics.csv", "summary.csv", "summary.md", "summary.png"}
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["case", "dsc", "nsd", "modality", "status", "detail"]
    serial = score_folder(seg_dir, gt_dir)
    assert [(r["case"], r["dsc"], r["nsd"], r["status"]) for r in rows] == [
        (r.case, repr(r.dsc), repr(r.nsd), r.status) for r in serial
    ]
    assert "Scored 0 (6 cases)" in (out / "summary.md").read_text()
    assert "mean of group means" in capsys.readouterr().out


def test_exit_status_says_whether_every_case_was_scored(folders, tmp_path, capsys):
    gt_dir, seg_dir = folders
    ok_only = ["2DBox_US_ok.npz", "2DBox_XRay_float.npz", "3DBox_CT_ok.npz"]
    for name in {p.name for p in gt_dir.iterdir()} - set(ok_only):
        (gt_dir / name).unlink()
    assert main(["compute-metrics", "-s", str(seg_dir), "-g", str(gt_dir), "-o", str(tmp_path / "all"), "-q"]) == 0

    (seg_dir / "3DBox_CT_ok.npz").unlink()
    out = tmp_path / "one-missing"
    assert main(["compute-metrics", "-s", str(seg_dir), "-g", str(gt_dir), "-o", str(out), "-q"]) == 1
    with open(out / "metrics.csv", newline="") as f:
        statuses = {row["case"]: row["status"] for row in csv.DictReader(f)}
    assert statuses == {"2DBox_US_ok.npz": OK, "2DBox_XRay_float.npz": OK, "3DBox_CT_ok.npz": "missing"}
    assert {p.name for p in out.iterdir()} == {"metrics.csv", "summary.csv", "summary.md", "summary.png"}
    assert "1 of 3 cases scored 0" in capsys.readouterr().err


@pytest.mark.parametrize("problem", ["no gt folder", "no seg folder", "no cases", "bad option"])
def test_usage_errors_exit_2_and_write_nothing(folders, tmp_path, problem):
    gt_dir, seg_dir = folders
    empty = tmp_path / "empty"
    empty.mkdir()
    gt, seg, extra = {
        "no gt folder": (tmp_path / "nowhere", seg_dir, []),
        "no seg folder": (gt_dir, tmp_path / "nowhere", []),
        "no cases": (empty, seg_dir, []),
        "bad option": (gt_dir, seg_dir, ["--tolerance", "two"]),
    }[problem]
    out = tmp_path / "out"
    args = ["compute-metrics", "-s", str(seg), "-g", str(gt), "-o", str(out), "-q", *extra]
    if problem == "bad option":
        with pytest.raises(SystemExit) as exit_:
            main(args)
        assert exit_.value.code == 2
    else:
        assert main(args) == 2
    assert not out.exists()


def test_nan_case_is_an_empty_csv_field(tmp_path):
    gt_dir, seg_dir = tmp_path / "g", tmp_path / "s"
    gt_dir.mkdir()
    seg_dir.mkdir()
    gts = square_case()
    gts[gts == 1] = 3  # label 1 absent from gts and segs: NaN
    np.savez_compressed(gt_dir / "2DBox_OCT_a.npz", gts=gts)
    np.savez_compressed(seg_dir / "2DBox_OCT_a.npz", segs=gts)
    assert main(["compute-metrics", "-s", str(seg_dir), "-g", str(gt_dir), "-o", str(tmp_path / "o"), "-q"]) == 0
    assert (tmp_path / "o" / "metrics.csv").read_text().splitlines()[1].startswith("2DBox_OCT_a.npz,,0.0,")
    assert (
        main(
            [
                "compute-metrics",
                "-s",
                str(seg_dir),
                "-g",
                str(gt_dir),
                "-o",
                str(tmp_path / "p"),
                "-q",
                "--skip-absent-classes",
            ]
        )
        == 0
    )
    assert (tmp_path / "p" / "metrics.csv").read_text().splitlines()[1].startswith("2DBox_OCT_a.npz,1.0,1.0,")


def test_leaderboard_is_the_unweighted_mean_of_modality_means():
    assert modality_group("3DBox_PET_ibsi-sts_STS001.npz") == "3DBox_PET"
    assert modality_group("2DBox_XRay_covidcxrseg_kjr-21.npz") == "2DBox_XRay"
    assert modality_group("scan.npz") == "other"
    rows = summarize(
        [
            ("2DBox_US_a.npz", 1.0, 0.5),
            ("2DBox_US_b.npz", 0.5, 0.5),
            ("2DBox_US_c.npz", 0.0, 0.2),
            ("3DBox_MR_a.npz", float("nan"), 0.0),
            ("3DBox_MR_b.npz", 0.2, 0.1),
        ]
    )
    assert [(r.group, r.cases) for r in rows] == [("2DBox_US", 3), ("3DBox_MR", 2), (OVERALL, 5)]
    assert rows[0].dsc == pytest.approx(0.5) and rows[1].dsc == pytest.approx(0.2)  # NaN left out
    assert rows[2].dsc == pytest.approx((0.5 + 0.2) / 2) and rows[2].nsd == pytest.approx((0.4 + 0.05) / 2)
    assert math.isnan(summarize([("2DBox_US_a.npz", float("nan"), 0.0)])[0].dsc)


def test_pickled_payload_is_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    gt_dir, seg_dir = tmp_path / "g", tmp_path / "s"
    gt_dir.mkdir()
    seg_dir.mkdir()
    np.savez_compressed(gt_dir / "2DBox_US_x.npz", gts=square_case())
    with open(seg_dir / "2DBox_US_x.npz", "wb") as f:
        pickle.dump(Payload(), f)
    assert score_folder(seg_dir, gt_dir)[0].status == "unreadable"
    assert not marker.exists()
