"""The cases of an input folder, found by name alone (no array is read, and numpy is not imported, so that
a process can decide how to start before its heavy imports).

A case is a .npz file directly in the folder; it is 3D when its name starts with "3D", as the challenge
names them.
"""

from pathlib import Path

from .precision import FAST_START_MAX_CASES


def is_3d_name(name: str) -> bool:
    return name.startswith("3D")


def list_cases(input_dir: Path) -> list[Path]:
    """The .npz files directly in `input_dir`, sorted by name (sub-folders and other files are ignored)."""
    return sorted(p for p in input_dir.iterdir() if p.suffix == ".npz" and p.is_file())


def few_encoder_calls(paths: list[Path]) -> bool:
    """Whether segmenting these cases calls the encoder a few times only: a 2D case calls it once, a 3D case
    once per slice of its boxes."""
    return len(paths) <= FAST_START_MAX_CASES and not any(is_3d_name(p.name) for p in paths)
