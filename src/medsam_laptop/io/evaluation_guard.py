"""The evaluation set is for scoring only: training, calibration and model selection refuse it."""

import os
from pathlib import Path

from ..paths import EVALUATION_SET


class EvaluationSetError(Exception):
    """A folder meant for training or calibration is (or lies inside, or links to) the evaluation set."""


def check_not_evaluation_set(path: Path, use: str = "train") -> Path:
    """Returns `path` unless it is, lies inside, or resolves into the evaluation set."""
    for candidate in (Path(os.path.abspath(path)), Path(path).resolve()):
        if EVALUATION_SET in candidate.parts:
            raise EvaluationSetError(f"refusing to {use} on {path}: {EVALUATION_SET} is the evaluation set")
    return path
