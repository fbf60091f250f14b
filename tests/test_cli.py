"""Both command lines end to end on real cases.

`python -m medsam_laptop predict`: good cases segmented as the PyTorch reference does, a bad one reported,
the timer written, and the README's options (--timing-csv, an unwritable --cache-dir, missing weights).
`python -m evaluation compute-metrics`: each correction flag changes what the evaluation README says it
changes, and nothing else.
"""

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from evaluation.cli import main as evaluation_main
from helpers import assert_like_reference, copy_cases, object_dscs, predict
from medsam_laptop.architectures import DEFAULT_MODEL
from medsam_laptop.inference.timer import CASE_STAGES, COLUMNS, STARTUP_STAGES

US, US2, PET = "2DBox_US_stubus_01.npz", "2DBox_US_stubus_04.npz", "3DBox_PET_ibsi-sts_STS002.npz"


def _timer_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def test_predict_folder_with_a_bad_case(tmp_path, cases_dir, reference_dir):
    inputs = copy_cases(cases_dir, tmp_path / "in", [US, PET])
    outputs = tmp_path / "out"
    np.savez(inputs / "2DBox_bad.npz", imgs=np.zeros((8, 8, 3), np.float64), boxes=np.array([[1, 1, 4, 4]]))
    (inputs / "readme.txt").write_text("not a case")

    result = predict("-i", inputs, "-o", outputs, "--model", "litemedsam", "--precision", "f32")

    assert result.returncode == 1, result.stderr
    assert "error: 2DBox_bad.npz: imgs must be uint8, got float64" in result.stderr
    assert "failed: 2DBox_bad.npz" in result.stderr
    assert sorted(p.name for p in outputs.glob("*.npz")) == [US, PET]
    assert_like_reference(outputs, reference_dir, cases_dir, [US, PET])
    _, rows = _timer_rows(outputs / "efficiency_timer.csv")
    assert [r["case"] for r in rows] == [US, "2DBox_bad.npz", PET]
    assert [r["status"] for r in rows] == ["ok", "error", "ok"]
    assert {r["configuration"] for r in rows} == {"litemedsam f32-f32"}
    assert float(rows[0]["compile"]) > 0 and float(rows[2]["compile"]) == 0  # start-up charged to the first case
    assert int(rows[2]["slices_encoded"]) == 16
    assert (outputs / ".openvino_cache").is_dir() and any((outputs / ".openvino_cache").iterdir())


def test_missing_input_folder_is_a_usage_error(tmp_path):
    result = predict("-i", tmp_path / "nope", "-o", tmp_path / "out")
    assert result.returncode == 2
    assert "input folder" in result.stderr and "does not exist" in result.stderr


def test_missing_weights_is_a_usage_error(tmp_path):
    inputs, weights = tmp_path / "in", tmp_path / "weights"
    inputs.mkdir()
    weights.mkdir()
    np.savez(inputs / "2DBox_x.npz", imgs=np.full((16, 16, 3), 80, np.uint8), boxes=np.array([[2, 2, 9, 9]]))
    for precision in ("auto", "f32"):
        outputs = tmp_path / f"out-{precision}"
        result = predict("-i", inputs, "-o", outputs, "--weights-dir", weights, "--precision", precision)
        assert result.returncode == 2, result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "encoder.xml" in errors[0] and str(weights / DEFAULT_MODEL) in errors[0]
        assert "Traceback" not in result.stderr
        assert not list(outputs.glob("*.npz"))


@pytest.fixture(scope="module")
def options_run(tmp_path_factory, cases_dir):
    """One predict run with --timing-csv outside the output folder and a --cache-dir that is a file."""
    root = tmp_path_factory.mktemp("options")
    inputs = copy_cases(cases_dir, root / "in", [US, US2])
    outputs, timing, blocker = root / "out", root / "timing" / "times.csv", root / "not-a-folder"
    timing.parent.mkdir()
    blocker.write_text("a file where the cache folder should be")
    result = predict(
        "-i",
        inputs,
        "-o",
        outputs,
        "--model",
        "litemedsam",
        "--precision",
        "f32",
        "--timing-csv",
        timing,
        "--cache-dir",
        blocker,
    )
    return result, outputs, timing, blocker


def test_unwritable_cache_folder_is_a_warning(options_run, cases_dir, reference_dir):
    result, outputs, _, blocker = options_run
    assert result.returncode == 0, result.stderr
    assert f"warning: model cache {blocker} is not writable" in result.stderr
    assert "Traceback" not in result.stderr
    assert blocker.read_text() == "a file where the cache folder should be"
    assert not (outputs / ".openvino_cache").exists()
    assert_like_reference(outputs, reference_dir, cases_dir, [US, US2])


def test_a_timer_csv_of_other_columns_is_left_as_it_is(tmp_path, cases_dir, reference_dir):
    """Rows are never mixed into a CSV with another header: the case is segmented, the row is a warning."""
    inputs, outputs = copy_cases(cases_dir, tmp_path / "in", [US]), tmp_path / "out"
    outputs.mkdir()
    foreign = "case,seconds\nsomething,1.0\n"
    (outputs / "efficiency_timer.csv").write_text(foreign)
    result = predict("-i", inputs, "-o", outputs, "--model", "litemedsam", "--precision", "f32")
    assert result.returncode == 0, result.stderr
    assert f"warning: {US}: timer row not written" in result.stderr and "other than this timer's" in result.stderr
    assert (outputs / "efficiency_timer.csv").read_text() == foreign
    assert_like_reference(outputs, reference_dir, cases_dir, [US])


def test_timing_csv_lands_at_the_given_path(options_run):
    result, outputs, timing, _ = options_run
    assert result.returncode == 0, result.stderr
    assert not (outputs / "efficiency_timer.csv").exists()
    fields, rows = _timer_rows(timing)
    assert fields == list(COLUMNS) and "configuration" in fields
    assert [(r["case"], r["status"], r["configuration"]) for r in rows] == [
        (US, "ok", "litemedsam f32-f32"),
        (US2, "ok", "litemedsam f32-f32"),
    ]
    assert [int(r["slices_encoded"]) for r in rows] == [1, 1]
    for row in rows:
        stages = [float(row[s]) for s in (*STARTUP_STAGES, *CASE_STAGES)]
        assert float(row["encode"]) > 0 and math.isclose(float(row["total"]), sum(stages), abs_tol=1e-3)


# compute-metrics on the PyTorch reference's segmentations of real cases. Each case shows one quirk:
LOW_DSC = "3DBox_PET_ibsi-sts_STS006.npz"  # DSC 0.16 <= 0.2: NSD not computed by default
VOLUME = "3DBox_PET_ibsi-sts_STS002.npz"  # anisotropic spacing (5.47, 5.47, 3.27)
IMAGE = "2DBox_US_stubus_01.npz"  # 2D: NSD on a one-voxel-thick volume
ABSENT = "2DBox_CT_sammed2d_s0619-32.npz"  # six objects; label 1 removed from gts and segs: absent class
FLAG_CASES = (LOW_DSC, VOLUME, IMAGE, ABSENT)


class Scoring:
    """Runs `python -m evaluation compute-metrics` (in process) on fixed folders; returns
    {case: (dsc, nsd)} as floats parsed from metrics.csv (an empty field is NaN)."""

    def __init__(self, root: Path, seg_dir: Path, gt_dir: Path):
        self.root, self.seg_dir, self.gt_dir, self.runs = root, seg_dir, gt_dir, 0

    def __call__(self, *flags: str, gt_dir: Path | None = None) -> dict[str, tuple[float, float]]:
        self.runs += 1
        out = self.root / f"run{self.runs}"
        argv = ["compute-metrics", "-s", str(self.seg_dir), "-g", str(gt_dir or self.gt_dir), "-o", str(out), "-q"]
        assert evaluation_main([*argv, *flags]) == 0
        with open(out / "metrics.csv", newline="") as f:
            return {r["case"]: (float(r["dsc"] or "nan"), float(r["nsd"])) for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def scoring(tmp_path_factory, cases_dir, reference_dir):
    root = tmp_path_factory.mktemp("flags")
    seg_dir, gt_dir = root / "segs", root / "gts"
    seg_dir.mkdir()
    gt_dir.mkdir()
    for name in FLAG_CASES:
        gt = dict(np.load(cases_dir / "gts" / name))
        segs = np.load(reference_dir / "litemedsam-torch-segs" / name)["segs"]
        if name == ABSENT:
            gt["gts"] = np.where(gt["gts"] == 1, 0, gt["gts"])
            segs = np.where(segs == 1, 0, segs)
        np.savez_compressed(gt_dir / name, **gt)
        np.savez_compressed(seg_dir / name, segs=segs)
    return Scoring(root, seg_dir, gt_dir)


@pytest.fixture(scope="module")
def default_scores(scoring):
    scores = scoring()
    assert set(scores) == set(FLAG_CASES)
    return scores


def _same(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return all(x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b))


def _changed(default: dict, flagged: dict) -> set[str]:
    """The cases whose (dsc, nsd) differ between two runs."""
    return {case for case in default if not _same(default[case], flagged[case])}


def test_always_nsd_computes_nsd_below_the_dsc_threshold(scoring, default_scores):
    flagged = scoring("--always-nsd")
    assert 0 < default_scores[LOW_DSC][0] <= 0.2 and default_scores[LOW_DSC][1] == 0.0
    assert flagged[LOW_DSC][0] == default_scores[LOW_DSC][0] and flagged[LOW_DSC][1] > 0
    # A NaN case DSC also gets its NSD computed (the classes present are scored).
    assert math.isnan(flagged[ABSENT][0]) and default_scores[ABSENT][1] == 0.0 and flagged[ABSENT][1] > 0
    assert _changed(default_scores, flagged) == {LOW_DSC, ABSENT}


def test_spacing_zyx_reverses_the_stored_spacing(scoring, default_scores, tmp_path):
    flagged = scoring("--spacing-zyx")
    assert _changed(default_scores, flagged) == {VOLUME}  # 2D cases have no spacing; STS006 has no NSD
    assert flagged[VOLUME][0] == default_scores[VOLUME][0] and flagged[VOLUME][1] != default_scores[VOLUME][1]
    # The same as the default scoring of a gts file whose spacing is stored reversed.
    reversed_gts = tmp_path / "gts"
    reversed_gts.mkdir()
    gt = dict(np.load(scoring.gt_dir / VOLUME))
    gt["spacing"] = gt["spacing"][::-1].copy()
    np.savez_compressed(reversed_gts / VOLUME, **gt)
    assert scoring(gt_dir=reversed_gts)[VOLUME] == flagged[VOLUME]


def test_nsd_2d_contour_scores_2d_contours(scoring, default_scores):
    flagged = scoring("--nsd-2d", "contour")
    assert _changed(default_scores, flagged) == {IMAGE}  # ABSENT has NSD 0 (NaN DSC); 3D unchanged
    # A one-voxel-thick volume is all surface, so the default is lenient; contours are stricter.
    assert flagged[IMAGE][0] == default_scores[IMAGE][0] and flagged[IMAGE][1] < default_scores[IMAGE][1] - 0.1


def test_skip_absent_classes_leaves_them_out(scoring, default_scores, cases_dir):
    flagged = scoring("--skip-absent-classes")
    assert math.isnan(default_scores[ABSENT][0]) and default_scores[ABSENT][1] == 0.0
    gts = np.load(scoring.gt_dir / ABSENT)["gts"]
    segs = np.load(scoring.seg_dir / ABSENT)["segs"]
    present = object_dscs(segs, gts, 6)[1:]  # classes 2..6
    assert flagged[ABSENT][0] == round(float(np.mean(present)), 4) and flagged[ABSENT][1] > 0
    assert _changed(default_scores, flagged) == {ABSENT}


def test_tolerance_widens_or_narrows_the_nsd_band(scoring, default_scores):
    strict, loose = scoring("--tolerance", "0"), scoring("--tolerance", "1000")
    assert strict[IMAGE][1] < default_scores[IMAGE][1] < 1.0 and loose[IMAGE][1] == 1.0
    for case in FLAG_CASES:  # DSC never changes; NSD only moves with the tolerance
        dsc = default_scores[case][0]
        assert _same((strict[case][0], loose[case][0]), (dsc, dsc))
        assert strict[case][1] <= default_scores[case][1] <= loose[case][1]


def test_no_round_keeps_full_precision(scoring, default_scores):
    flagged = scoring("--no-round")
    for case in FLAG_CASES:
        for exact, rounded in zip(flagged[case], default_scores[case]):
            assert _same((round(exact, 4),), (rounded,)), case
    assert any(exact != round(exact, 4) for case in FLAG_CASES for exact in flagged[case] if not math.isnan(exact))
