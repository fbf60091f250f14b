"""Where the project's files are: the model weights and the shared challenge data.

- `MEDSAM_WEIGHTS`: the weights folder (one sub-folder per model). Default: `weights/` beside the `src/`
  folder this package runs from (a checkout, or the container's /workspace), else `./weights`.
- `MEDSAM_SHARED`: the shared folder with `data/` and `reference/`. Default: `shared/` beside the
  checkout, else `./shared`.

An installed package (not a checkout) has no folder beside it, so it reads these from the environment or
the working directory.
"""

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
EVALUATION_SET = "cvpr24-format"
TRAINING_SET = "cvpr24-train"


def checkout() -> Path | None:
    """The folder holding `src/medsam_laptop` when the package runs from source, else None."""
    root = PACKAGE.parents[1]
    return root if PACKAGE.parent.name == "src" else None


def default_weights_dir() -> Path:
    if "MEDSAM_WEIGHTS" in os.environ:
        return Path(os.environ["MEDSAM_WEIGHTS"])
    root = checkout()
    return root / "weights" if root is not None else Path("weights")


def shared_dir() -> Path:
    if "MEDSAM_SHARED" in os.environ:
        return Path(os.environ["MEDSAM_SHARED"])
    root = checkout()
    return root.parent / "shared" if root is not None else Path("shared")


def evaluation_cases() -> Path:
    """The evaluation set: imgs/ and gts/ of the 127 challenge cases."""
    return shared_dir() / "data" / EVALUATION_SET


def training_cases() -> Path:
    return shared_dir() / "data" / TRAINING_SET


def reference_dir() -> Path:
    return shared_dir() / "reference"
