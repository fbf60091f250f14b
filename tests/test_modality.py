"""The data-aware decoder (litemedsam-modality): a learned token per modality group, and the general
decoder for any name of no known group, in PyTorch and through the exported OpenVINO graphs."""

import numpy as np
import pytest

from conftest import require_torch

torch = require_torch()

from medsam_laptop.engines.openvino_engine import OpenVINOEngine  # noqa: E402
from medsam_laptop.io.checkpoints import official_litemedsam_checkpoint  # noqa: E402
from medsam_laptop.modality import MODALITY_GROUPS, modality_index, modality_one_hot  # noqa: E402
from medsam_laptop.modeling import build_litemedsam, init_from_litemedsam, load_state_dict  # noqa: E402
from medsam_laptop.modeling.build import build_litemedsam_modality  # noqa: E402
from medsam_laptop.paths import default_weights_dir  # noqa: E402

UNKNOWN = ("2DBox_Fundus_drive_01.npz", "case.npz", "3DBox_SPECT_x_1.npz", "")


def test_known_groups_get_their_token_and_other_names_the_generic_one():
    assert modality_index("2DBox_US_hc18_001.npz") == MODALITY_GROUPS.index("2DBox_US") + 1
    assert modality_index("3DBox_PET_ibsi-sts_STS001.npz") == MODALITY_GROUPS.index("3DBox_PET") + 1
    for name in UNKNOWN:
        assert modality_index(name) == 0
        assert modality_one_hot(name).tolist() == [[1.0] + [0.0] * len(MODALITY_GROUPS)]


@pytest.fixture(scope="module")
def tokened(tmp_path_factory):
    """litemedsam-modality with LiteMedSAM's weights and random tokens, as a checkpoint file."""
    torch.manual_seed(0)
    model = build_litemedsam_modality()
    model.load_state_dict(
        init_from_litemedsam("litemedsam-modality", load_state_dict(official_litemedsam_checkpoint()))
    )
    with torch.no_grad():
        model.modality_tokens[:] = torch.randn(len(MODALITY_GROUPS), 256) * 0.5
    path = tmp_path_factory.mktemp("modality") / "tokened.pth"
    torch.save({"model": model.state_dict()}, path)
    return model, path


def test_the_generic_token_is_litemedsams_decoder(tokened):
    model, _ = tokened
    official = build_litemedsam(official_litemedsam_checkpoint())
    embedding, boxes = torch.randn(1, 256, 64, 64), torch.tensor([[30.0, 40.0, 120.0, 150.0]])
    with torch.no_grad():
        reference = official.decode(embedding, boxes)[0]
        generic = model.decode(embedding, boxes, torch.from_numpy(modality_one_hot("case.npz")))[0]
        us = model.decode(embedding, boxes, torch.from_numpy(modality_one_hot("2DBox_US_a_1.npz")))[0]
    assert torch.equal(generic, reference)
    assert not torch.allclose(us, reference, atol=1e-3)


def test_exported_engine_falls_back_to_the_general_decoder_on_an_unknown_name(tokened, tmp_path):
    from medsam_laptop.cli import main as medsam_main

    _, checkpoint = tokened
    args = ["export", "--model", "litemedsam-modality", "--checkpoint", str(checkpoint), "--weights-dir", str(tmp_path)]
    assert medsam_main(args) == 0
    engine = OpenVINOEngine(tmp_path / "litemedsam-modality", "f32", threads=2)
    official = OpenVINOEngine(default_weights_dir() / "litemedsam", "f32", threads=2)
    image = np.random.default_rng(0).random((1, 3, 256, 256), dtype=np.float32)
    boxes = np.array([[30.0, 40.0, 120.0, 150.0], [10.0, 10.0, 60.0, 90.0]], dtype=np.float32)
    embedding = official.encode(image)
    assert np.array_equal(engine.encode(image), embedding)  # the encoder is LiteMedSAM's
    reference = official.decode(embedding, boxes)
    for name in UNKNOWN:
        np.testing.assert_allclose(engine.for_case(name).decode(embedding, boxes), reference, atol=1e-4)
    np.testing.assert_allclose(engine.decode(embedding, boxes), reference, atol=1e-4)  # no case: generic
    us = engine.for_case("2DBox_US_a_1.npz").decode(embedding, boxes)
    assert np.abs(us - reference).max() > 1e-2
    with torch.no_grad():
        model = build_litemedsam_modality(checkpoint)
        expected = model.decode(
            torch.from_numpy(embedding), torch.from_numpy(boxes), torch.from_numpy(modality_one_hot("2DBox_US_a_1.npz"))
        )[0][:, 0].numpy()
    np.testing.assert_allclose(us, expected, atol=1e-3)
