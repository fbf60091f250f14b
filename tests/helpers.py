"""Small helpers shared by the tests."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from medsam_laptop.inference.segment import segment_2d, segment_3d
from medsam_laptop.inference.timer import StageTimer
from medsam_laptop.io.cases import read_case

REPO = Path(__file__).resolve().parents[1]
MIN_OBJECT_DSC = 0.999  # where two f32 runs differ at all: float rounding at the zero crossing only


def object_dscs(pred: np.ndarray, ref: np.ndarray, n_objects: int) -> list[float]:
    """DSC of label k in `pred` against label k in `ref`, k = 1..n_objects (1.0 when both are empty)."""
    scores = []
    for k in range(1, n_objects + 1):
        a, b = pred == k, ref == k
        total = int(a.sum()) + int(b.sum())
        scores.append(1.0 if total == 0 else 2.0 * int((a & b).sum()) / total)
    return scores


def assert_same_objects(segs: np.ndarray, ref: np.ndarray, n_objects: int, min_dsc: float = MIN_OBJECT_DSC) -> None:
    """segs equals ref, or every object k = 1..n_objects has a DSC of at least `min_dsc` (so a small object
    cannot be half wrong while the image as a whole agrees), and no label outside 0..n_objects appears."""
    assert segs.shape == ref.shape and segs.dtype == ref.dtype, (segs.shape, segs.dtype, ref.shape, ref.dtype)
    if np.array_equal(segs, ref):
        return
    assert set(np.unique(segs).tolist()) <= set(range(n_objects + 1))
    scores = object_dscs(segs, ref, n_objects)
    assert min(scores) >= min_dsc, scores


def assert_like_reference(outputs: Path, reference_dir: Path, cases_dir: Path, names: list[str]) -> None:
    """Each case `name` in `outputs` is a whole npz whose segs, not empty, are the PyTorch reference's
    (`assert_same_objects`)."""
    for name in names:
        segs = np.load(outputs / name)["segs"]
        ref = np.load(reference_dir / "litemedsam-torch-segs" / name)["segs"]
        assert_same_objects(segs, ref, len(np.load(cases_dir / "imgs" / name)["boxes"]))
        assert segs.any(), name


def copy_cases(cases_dir: Path, folder: Path, names: list[str], kind: str = "imgs") -> Path:
    """A new folder holding copies of the challenge cases `names`: their inputs, or with kind "gts" their
    ground truth."""
    folder.mkdir(parents=True)
    for name in names:
        shutil.copy(cases_dir / kind / name, folder / name)
    return folder


def segment_file(engine, path: Path) -> tuple[np.ndarray, int]:
    """Segments one case file with `engine`; returns segs and the number of boxes."""
    case = read_case(path)
    segment = segment_3d if case.is_3d else segment_2d
    return segment(engine, case.image, case.boxes, StageTimer()), len(case.boxes)


def predict_command(*args) -> list[str]:
    """The command line of `python -m medsam_laptop predict ARGS`."""
    return [sys.executable, "-m", "medsam_laptop", "predict", *map(str, args)]


def predict(*args, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Runs `python -m medsam_laptop predict ARGS` in the repository; stdout and stderr as text."""
    return subprocess.run(predict_command(*args), cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)
