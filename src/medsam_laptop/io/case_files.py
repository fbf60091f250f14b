"""The cases of an input folder, found by name alone (no array is read, and numpy is not imported, so that
a process can decide how to start before its heavy imports).

A case is a .npz file directly in the folder; it is 3D when its name starts with "3D", as the challenge
names them. Names follow `<2DBox|3DBox>_<Modality>_<source>_<id>.npz`: the first two fields are the
leaderboard's modality group, the third the data source (a hospital or a public data set).
"""

import re
from pathlib import Path

from ..engines.precision import FAST_START_MAX_CASES

GROUP = re.compile(r"^([23]DBox_[^_]+)_")
OTHER_GROUP = "other"


def is_3d_name(name: str) -> bool:
    return name.startswith("3D")


def modality_group(name: str) -> str:
    """The leaderboard's group of a case: 3DBox_CT_ibsi-sts_STS018.npz -> 3DBox_CT; "other" for a name that
    does not start with 2DBox_<modality>_ or 3DBox_<modality>_."""
    match = GROUP.match(name)
    return match.group(1) if match else OTHER_GROUP


def source_name(name: str) -> str:
    """The data source of a case: 2DBox_US_hc18_012.npz -> hc18 ("" for a name without one)."""
    parts = name.split("_")
    return parts[2] if len(parts) > 3 else ""


def list_cases(input_dir: Path) -> list[Path]:
    """The .npz files directly in `input_dir`, sorted by name (sub-folders and other files are ignored)."""
    return sorted(p for p in input_dir.iterdir() if p.suffix == ".npz" and p.is_file())


def few_encoder_calls(paths: list[Path]) -> bool:
    """Whether segmenting these cases calls the encoder a few times only: a 2D case calls it once, a 3D case
    once per slice of its boxes."""
    return len(paths) <= FAST_START_MAX_CASES and not any(is_3d_name(p.name) for p in paths)
