"""Swin-LiteMedSAM: the authors' function on their random reference checkpoint, the exported graphs,
import-checkpoint -> predict on real cases, the initialiser from LiteMedSAM, and the box-derived prompts.

Reference: ../shared/reference/swin_litemedsam_random_ref.npz (state dict in float16, inputs, prompts
and the outputs of the authors' code; see the .md beside it).
"""

import numpy as np
import pytest

from conftest import REFERENCE, REPO, require, require_torch

torch = require_torch()

from medsam_laptop.cli import main  # noqa: E402
from medsam_laptop.engines.openvino_engine import OpenVINOEngine  # noqa: E402
from medsam_laptop.engines.torch_engine import TorchEngine  # noqa: E402
from medsam_laptop.inference import segment  # noqa: E402
from medsam_laptop.inference.prompts import box_prompts, foreground  # noqa: E402
from medsam_laptop.inference.timer import StageTimer  # noqa: E402
from medsam_laptop.io.cases import read_case  # noqa: E402
from medsam_laptop.modeling import build_litemedsam, build_swin_litemedsam, init_from_litemedsam  # noqa: E402

REF_FILE = REFERENCE / "swin_litemedsam_random_ref.npz"
KEY_LIST = REFERENCE / "swin_litemedsam_state_dict.txt"
PREFIXES = ("image_encoder.", "prompt_encoder.", "mask_decoder.")


@pytest.fixture(scope="module")
def ref():
    require(REF_FILE.is_file(), f"{REF_FILE} (set MEDSAM_SHARED)")
    return np.load(REF_FILE)


@pytest.fixture(scope="module")
def ref_state(ref) -> dict:
    return {
        k: torch.from_numpy(ref[k].astype(np.float32) if ref[k].dtype == np.float16 else ref[k])
        for k in ref.files
        if k.startswith(PREFIXES)
    }


@pytest.fixture(scope="module")
def model(ref_state):
    torch.set_num_threads(1)
    m = build_swin_litemedsam()
    m.load_state_dict(ref_state, strict=True)
    return m.eval()


@pytest.fixture(scope="module")
def checkpoint(ref_state, tmp_path_factory):
    """The reference weights as the authors' training saves them, with the unused prompt1/prompt2 keys."""
    state = dict(ref_state)
    for line in KEY_LIST.read_text().splitlines():
        if line.startswith(("mask_decoder.prompt1.", "mask_decoder.prompt2.")):
            key, shape = line.split("\t")[:2]
            state[key] = torch.randn(tuple(int(s) for s in shape.strip("()").split(",") if s.strip()))
    path = tmp_path_factory.mktemp("ckpt") / "Swin_LiteMedSAM.pth"
    torch.save({"model": state, "epoch": 1}, path)
    return path


@pytest.fixture(scope="module")
def weights_dir(checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("weights")
    assert main(["import-checkpoint", "--model", "swin-litemedsam", str(checkpoint), "--weights-dir", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def encoded(model, ref):
    with torch.no_grad():
        embedding, skips = model.image_encoder(torch.from_numpy(ref["input_image"]))
        features = model.encode(torch.from_numpy(ref["input_image"]))
    return embedding, skips, features


def test_encoder_matches_authors(encoded, ref):
    embedding, skips, _ = encoded
    for name, tensor in [("embedding", embedding)] + [(f"fs{i}", f) for i, f in enumerate(skips)]:
        assert list(tensor.shape) == ref[f"{name}_shape"].tolist()
        sampled = tensor.reshape(-1).numpy()[ref[f"{name}_idx"]]
        assert np.abs(sampled - ref[f"{name}_val"]).max() <= 1e-4, name
        assert abs(tensor.double().mean().item() - ref[f"{name}_mean"]) <= 1e-6, name
        assert abs(tensor.double().std().item() - ref[f"{name}_std"]) <= 1e-5, name


@pytest.mark.parametrize("suffix", ["", "_3"])
def test_decoder_matches_authors(suffix, model, encoded, ref):
    boxes = ref["box"] if suffix == "" else ref["boxes_3"]
    with torch.no_grad():
        logits, iou = model.decode(
            *encoded[2],
            torch.from_numpy(boxes),
            torch.from_numpy(ref[f"points{suffix}"]),
            torch.from_numpy(ref["scribble" if suffix == "" else "scribbles_3"]),
        )
    want_logits = ref["low_res_logits"] if suffix == "" else ref["logits_3boxes"]
    want_iou = ref["iou"] if suffix == "" else ref["iou_3boxes"]
    assert np.abs(logits.numpy() - want_logits).max() <= 1e-4
    assert np.abs(iou.numpy() - want_iou).max() <= 1e-4


def test_checkpoint_with_unused_keys_loads_strictly(checkpoint, ref_state):
    loaded = build_swin_litemedsam(checkpoint).state_dict()
    assert set(loaded) == set(ref_state)
    for key, value in ref_state.items():
        assert torch.equal(loaded[key], value), key


def test_init_from_litemedsam_copies_every_shared_key():
    lite = {
        k: torch.randn_like(v) if v.is_floating_point() else v + 7 for k, v in build_litemedsam().state_dict().items()
    }
    swin = init_from_litemedsam("swin-litemedsam", lite)
    copied = [k for k in swin if k in lite and torch.equal(swin[k], lite[k])]
    assert len(copied) == 149
    assert len([k for k in copied if k.startswith("prompt_encoder.")]) == 17
    assert len([k for k in copied if k.startswith("mask_decoder.")]) == 114
    assert len([k for k in copied if k.startswith(("image_encoder.patch_embed.", "image_encoder.neck."))]) == 18
    build_swin_litemedsam().load_state_dict(swin, strict=True)


@pytest.mark.parametrize("n_boxes", [1, 7])
def test_exported_graphs_match_torch(n_boxes, weights_dir, model, encoded, ref):
    rng = np.random.default_rng(n_boxes)
    corners = rng.uniform(0, 180, size=(n_boxes, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(8, 70, size=(n_boxes, 2))], axis=1).astype(np.float32)
    boxes = np.trunc(boxes)
    fg = foreground(ref["input_image"])
    points, scribbles = box_prompts(fg, boxes, [f"t:{i}" for i in range(n_boxes)])
    features = tuple(f.numpy() for f in encoded[2])
    for mode, prompts in (("box-points-scribble", (points, scribbles)), ("box", ())):
        engine = OpenVINOEngine(weights_dir / "swin-litemedsam", precision="f32", threads=1, prompts=mode)
        ov_features = engine.encode(ref["input_image"])
        for ov_f, f in zip(ov_features, features):
            assert np.abs(ov_f - f).max() <= 1e-3
        logits = engine.decode(features, boxes, *prompts)
        with torch.no_grad():
            want, _ = model.decode(*encoded[2], *(torch.from_numpy(a) for a in (boxes, *prompts)))
        assert logits.shape == (n_boxes, 256, 256)
        assert np.abs(logits - want[:, 0].numpy()).max() <= 1e-3, mode
        assert np.abs(engine.decode(features, boxes[-1:], *(p[-1:] for p in prompts))[0] - logits[-1]).max() <= 1e-4
    single = OpenVINOEngine(weights_dir / "swin-litemedsam", precision="f32", threads=1)
    got = single.decode(features, ref["box"], ref["points"], ref["scribble"])
    assert np.abs(got - ref["low_res_logits"][:, 0]).max() <= 1e-3


def test_manifest_records_checkpoint(weights_dir, checkpoint):
    import json

    from medsam_laptop.io.checkpoints import sha256_of

    manifest = json.loads((weights_dir / "swin-litemedsam" / "manifest.json").read_text())
    assert manifest["checkpoint"]["sha256"] == sha256_of(checkpoint)
    for name, digest in manifest["files"].items():
        assert sha256_of(weights_dir / "swin-litemedsam" / name) == digest


@pytest.mark.parametrize("prompts", ["box-points-scribble", "box"])
def test_predict_after_import(prompts, weights_dir, checkpoint, cases_dir, tmp_path):
    """predict with the imported IR segments as the PyTorch model does, through the same 2D and 3D code.

    With random weights the masks need not lie inside the boxes, so the reference is the PyTorch model
    itself; OpenVINO's logits differ from it by up to 1e-3, so a pixel at the threshold may flip."""
    names = ["2DBox_US_stubus_01.npz", "3DBox_PET_ibsi-sts_STS002.npz"]
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in names:
        (inputs / name).symlink_to(cases_dir / "imgs" / name)
    args = ["predict", "-i", str(inputs), "-o", str(tmp_path / "out"), "--model", "swin-litemedsam"]
    args += ["--weights-dir", str(weights_dir), "--threads", "1", "--prompts", prompts, "--cache-dir", "none"]
    assert main(args) == 0
    reference = TorchEngine("swin-litemedsam", checkpoint, threads=1, prompts=prompts)
    for name in names:
        case = read_case(inputs / name)
        segs = np.load(tmp_path / "out" / name)["segs"]
        assert segs.shape == (case.image.shape[:2] if not case.is_3d else case.image.shape)
        assert segs.dtype == np.uint8
        assert set(np.unique(segs)) == {0, 1}, name  # one box: some background, some mask
        segment_case = segment.segment_3d if case.is_3d else segment.segment_2d
        want = segment_case(reference, case.image, case.boxes, StageTimer(), case=name)
        differing = np.count_nonzero(segs != want)
        assert differing <= 0.01 * np.count_nonzero((segs > 0) | (want > 0)), (name, differing)


def test_litemedsam_rejects_point_prompts(cases_dir, tmp_path, capsys):
    from medsam_laptop.cli import EXIT_USAGE

    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "2DBox_US_stubus_01.npz").symlink_to(cases_dir / "imgs" / "2DBox_US_stubus_01.npz")
    args = ["predict", "-i", str(inputs), "-o", str(tmp_path / "out"), "--weights-dir", str(REPO / "weights")]
    assert main(args + ["--model", "litemedsam", "--prompts", "box-points-scribble"]) == EXIT_USAGE
    assert "litemedsam takes prompts box" in capsys.readouterr().err
    assert not (tmp_path / "out" / "2DBox_US_stubus_01.npz").exists()


def test_prompts_are_deterministic_per_case_and_box(ref):
    fg = foreground(ref["input_image"])
    boxes = ref["boxes_3"]
    keys = [f"case.npz:{i}" for i in range(3)]
    points, scribbles = box_prompts(fg, boxes, keys)
    for i in range(3):
        alone_p, alone_s = box_prompts(fg, boxes[i : i + 1], keys[i : i + 1])
        np.testing.assert_array_equal(alone_p[0], points[i])
        np.testing.assert_array_equal(alone_s[0], scribbles[i])
    other_p, _ = box_prompts(fg, boxes, [f"other.npz:{i}" for i in range(3)])
    assert not np.array_equal(other_p, points)


def test_prompts_lie_in_box_and_on_foreground(ref):
    fg = foreground(ref["input_image"])
    boxes = ref["boxes_3"]
    points, scribbles = box_prompts(fg, boxes, [f"c:{i}" for i in range(3)])
    for box, pts, scribble in zip(boxes, points, scribbles):
        x0, y0, x1, y1 = box.astype(int)
        assert np.all((pts[:, 0] >= x0) & (pts[:, 0] < x1) & (pts[:, 1] >= y0) & (pts[:, 1] < y1))
        xs, ys = pts[:, 0].astype(int), pts[:, 1].astype(int)
        # x and y are drawn from the columns and rows of foreground pixels (the authors' rule)
        assert all(fg[:, x].any() and fg[y, :].any() for x, y in zip(xs, ys))
        assert scribble.shape == (1, 256, 256) and set(np.unique(scribble)) <= {0.0, 1.0}
        ys_s, xs_s = np.nonzero(scribble[0])
        assert len(ys_s) > 5 and fg[ys_s, xs_s].all()
        assert xs_s.min() >= x0 and xs_s.max() < x1 and ys_s.min() >= y0 and ys_s.max() < y1


def test_prompts_fall_back_to_box_centre_without_foreground():
    fg = np.zeros((256, 256), dtype=bool)
    points, scribbles = box_prompts(fg, np.array([[10, 20, 50, 80]], dtype=np.float32), ["empty:0"])
    np.testing.assert_array_equal(points[0], [[30, 50]] * 4)
    assert not scribbles.any()
