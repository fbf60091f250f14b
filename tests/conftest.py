"""Shared fixtures: where the challenge data and the reference outputs live.

The data sets are never copied into the project (several licences forbid it); they are read from
``../shared`` beside the clone, or from the folder named by ``MEDSAM_SHARED``.
"""
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MEDSAM_SHARED", REPO.parent / "shared"))
CASES = SHARED / "data" / "cvpr24-format"
REFERENCE = SHARED / "reference"


@pytest.fixture(scope="session")
def cases_dir() -> Path:
    if not (CASES / "imgs").is_dir():
        pytest.skip(f"challenge cases not found under {CASES} (set MEDSAM_SHARED)")
    return CASES


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not REFERENCE.is_dir():
        pytest.skip(f"reference outputs not found under {REFERENCE} (set MEDSAM_SHARED)")
    return REFERENCE


@pytest.fixture(scope="session")
def ov_engine():
    from medsam_laptop.engine import OpenVINOEngine

    return OpenVINOEngine(REPO / "weights" / "litemedsam", precision="f32")


@pytest.fixture(scope="session")
def torch_engine():
    pytest.importorskip("torch")
    from medsam_laptop.torch_backend import TorchEngine

    return TorchEngine("litemedsam")


def pytest_terminal_summary(terminalreporter):
    """Shows the message a user gets for each kind of bad input (collected by test_bad_inputs)."""
    messages = getattr(sys.modules.get("test_bad_inputs"), "MESSAGES", [])
    if messages:
        terminalreporter.section("what a user sees for each bad input")
        for line in messages:
            terminalreporter.write_line(line)
