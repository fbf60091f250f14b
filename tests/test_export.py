"""The committed IR is what `export` produces, and its graphs compute what PyTorch computes."""

import json

import numpy as np
import pytest

from conftest import REPO, require, require_module, require_torch

torch = require_torch()
ov = require_module("openvino", "openvino (requirements.txt)")

from medsam_laptop.export.ir import IR_FILES, export_litemedsam  # noqa: E402
from medsam_laptop.io.checkpoints import sha256_of  # noqa: E402

WEIGHTS = REPO / "weights" / "litemedsam"
MANIFEST = json.loads((WEIGHTS / "manifest.json").read_text())


def test_manifest_matches_committed_files():
    for name in IR_FILES:
        assert sha256_of(WEIGHTS / name) == MANIFEST["files"][name], name


def _torch_release(manifest: dict) -> dict:
    """The manifest with torch's version cut to its release: "2.13.0+cpu" and "2.13.0" are one torch
    (the local label names the build, CPU or CUDA; export traces on the CPU either way)."""
    return {**manifest, "export": {**manifest["export"], "torch": manifest["export"]["torch"].partition("+")[0]}}


def test_export_regenerates_committed_ir_bit_for_bit(tmp_path, official_checkpoint):
    recorded = _torch_release(MANIFEST)["export"]
    require(
        (str(torch.__version__).partition("+")[0], ov.__version__) == (recorded["torch"], recorded["openvino"]),
        f"torch {recorded['torch']} and OpenVINO {recorded['openvino']} as recorded in the manifest",
    )
    manifest = export_litemedsam(tmp_path)
    assert manifest["files"] == MANIFEST["files"]
    assert _torch_release(manifest) == _torch_release(MANIFEST)


@pytest.mark.parametrize("n_boxes", [1, 7])
def test_decoder_graph_runs_any_number_of_boxes(n_boxes, torch_engine, ov_engine):
    rng = np.random.default_rng(n_boxes)
    image = rng.random((1, 3, 256, 256), dtype=np.float32)
    corners = rng.uniform(0, 200, size=(n_boxes, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(5, 56, size=(n_boxes, 2))], axis=1).astype(np.float32)

    embedding_torch = torch_engine.encode(image)
    embedding_ov = ov_engine.encode(image)
    np.testing.assert_allclose(embedding_ov, embedding_torch, atol=2e-4)

    logits_torch = torch_engine.decode(embedding_torch, boxes)
    logits_ov = ov_engine.decode(embedding_torch, boxes)
    assert logits_ov.shape == (n_boxes, 256, 256)
    np.testing.assert_allclose(logits_ov, logits_torch, atol=2e-3)
    # A box decoded among others gives what it gives alone.
    np.testing.assert_allclose(ov_engine.decode(embedding_torch, boxes[-1:])[0], logits_ov[-1], atol=1e-4)


def test_every_architecture_has_a_builder_and_every_committed_model_a_known_architecture():
    """The torch builders and the torch-free table name the same architectures, and every committed model
    folder's manifest names one of them; its prompt modes are the table's."""
    from medsam_laptop.architectures import ARCHITECTURES, DEFAULT_MODEL, OFFICIAL_MODEL
    from medsam_laptop.engines.manifest import decoder_specs
    from medsam_laptop.modeling import model_registry

    assert set(model_registry) == set(ARCHITECTURES)
    folders = sorted(p.parent for p in (REPO / "weights").glob("*/manifest.json"))
    assert {DEFAULT_MODEL, OFFICIAL_MODEL} <= {f.name for f in folders}
    for folder in folders:
        model = json.loads((folder / "manifest.json").read_text())["model"]
        assert model in ARCHITECTURES, folder
        assert tuple(decoder_specs(folder)) == ARCHITECTURES[model].prompts, folder
