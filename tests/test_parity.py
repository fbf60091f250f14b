"""The PyTorch path reproduces the organizers' LiteMedSAM predictions; OpenVINO f32 matches PyTorch.

Cases: the first two of every 2D modality group and the smallest 3D case of each of CT, MR and PET
(real data from ../shared/data/cvpr24-format; references from ../shared/reference).
"""

import numpy as np
import pytest

from conftest import CASES
from helpers import object_dscs, segment_file

GROUPS_2D = ("CT", "Endoscopy", "Mammography", "Microscopy", "OCT", "US", "XRay")
PARITY_CASES = [
    name for group in GROUPS_2D for name in sorted(p.name for p in (CASES / "imgs").glob(f"2DBox_{group}_*.npz"))[:2]
] + [f"3DBox_{m}_ibsi-sts_STS002.npz" for m in ("CT", "MR", "PET")]

_torch_segs: dict[str, tuple[np.ndarray, int]] = {}


def _torch_prediction(engine, cases_dir, name):
    if name not in _torch_segs:
        _torch_segs[name] = segment_file(engine, cases_dir / "imgs" / name)
    return _torch_segs[name]


def test_parity_cases_cover_every_group(cases_dir):
    groups = {name.split("_")[0] + "_" + name.split("_")[1] for name in PARITY_CASES}
    assert len(groups) == 10


@pytest.mark.parametrize("name", PARITY_CASES)
def test_torch_reproduces_reference(name, cases_dir, reference_dir, torch_engine):
    segs, n = _torch_prediction(torch_engine, cases_dir, name)
    ref = np.load(reference_dir / "litemedsam-torch-segs" / name)["segs"]
    assert segs.shape == ref.shape and segs.dtype == ref.dtype
    if not np.array_equal(segs, ref):
        assert min(object_dscs(segs, ref, n)) >= 0.999


@pytest.mark.parametrize("name", PARITY_CASES)
def test_openvino_f32_matches_torch(name, cases_dir, torch_engine, ov_engine):
    torch_segs, n = _torch_prediction(torch_engine, cases_dir, name)
    ov_segs, _ = segment_file(ov_engine, cases_dir / "imgs" / name)
    assert min(object_dscs(ov_segs, torch_segs, n)) >= 0.995
