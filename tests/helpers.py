"""Small helpers shared by the tests."""
from pathlib import Path

import numpy as np

from medsam_laptop.cases import read_case
from medsam_laptop.segment import segment_2d, segment_3d
from medsam_laptop.timer import StageTimer


def object_dscs(pred: np.ndarray, ref: np.ndarray, n_objects: int) -> list[float]:
    """DSC of label k in `pred` against label k in `ref`, k = 1..n_objects (1.0 when both are empty)."""
    scores = []
    for k in range(1, n_objects + 1):
        a, b = pred == k, ref == k
        total = int(a.sum()) + int(b.sum())
        scores.append(1.0 if total == 0 else 2.0 * int((a & b).sum()) / total)
    return scores


def segment_file(engine, path: Path) -> tuple[np.ndarray, int]:
    """Segments one case file with `engine`; returns segs and the number of boxes."""
    case = read_case(path)
    segment = segment_3d if case.is_3d else segment_2d
    return segment(engine, case.image, case.boxes, StageTimer()), len(case.boxes)
