"""Training pipeline (medsam_laptop.training): data, losses, schedule, guard, and CPU smoke runs of both
stages on two real training cases (a 128 x 128 ultrasound image and a 61-slice PET volume)."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED, require, require_torch

torch = require_torch()

from medsam_laptop.inference.transforms import box_to_model, model_input, resized_shape  # noqa: E402
from medsam_laptop.io.cases import read_case  # noqa: E402
from medsam_laptop.io.evaluation_guard import EvaluationSetError, check_not_evaluation_set  # noqa: E402
from medsam_laptop.modeling import build_swin_litemedsam  # noqa: E402
from medsam_laptop.training.augment import Augmentation, augment  # noqa: E402
from medsam_laptop.training.cli import main as training_main  # noqa: E402
from medsam_laptop.training.config import ConfigError, default_config, load_config  # noqa: E402
from medsam_laptop.training.data import DistillDataset, PromptDataset, PromptSampling  # noqa: E402
from medsam_laptop.training.loop import StepBatches, load_checkpoint, lr_factor, trainable_groups  # noqa: E402
from medsam_laptop.training.losses import bce_loss, dice_loss, iou_regression_loss, mask_iou  # noqa: E402
from medsam_laptop.training.models import build_student  # noqa: E402
from medsam_laptop.training.release.evaluate import leaderboard_average, select_cases  # noqa: E402
from medsam_laptop.training.swin import distill, finetune  # noqa: E402
from medsam_laptop.training.targets import model_mask, tight_box  # noqa: E402

TRAIN = SHARED / "data" / "cvpr24-train"
CASE_2D = "2DBox_US_stubus_17.npz"
CASE_3D = "3DBox_PET_ibsi-sts_STS035.npz"
OFF = {"hflip": 0.0, "vflip": 0.0, "intensity": 0.0}


def _data_dir(root: Path, names: list[str]) -> Path:
    """A training folder of symlinks to real training cases."""
    require((TRAIN / "imgs" / CASE_3D).is_file(), f"the training cases {TRAIN} (set MEDSAM_SHARED)")
    for sub in ("imgs", "gts"):
        (root / sub).mkdir(parents=True)
        for name in names:
            (root / sub / name).symlink_to(TRAIN / sub / name)
    return root


@pytest.fixture(scope="module")
def two_cases(tmp_path_factory) -> Path:
    return _data_dir(tmp_path_factory.mktemp("two"), [CASE_2D, CASE_3D])


def _config(stage: str, data_dir: Path, out: Path, **keys) -> dict:
    overrides = {"data_dir": str(data_dir), "output_dir": str(out), "device": "cpu", "num_workers": 0, "amp": []}
    overrides |= {"save_every": 1, "augmentation.hflip": 0.0, "augmentation.vflip": 0.0, "augmentation.intensity": 0.0}
    return load_config(default_config(stage), overrides | keys)


def _log(out: Path) -> list[dict]:
    with open(out / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


# --- data -------------------------------------------------------------------------------------------


def test_index_enumerates_every_slice(two_cases):
    items = DistillDataset(two_cases, Augmentation.off()).items
    depth = read_case(TRAIN / "imgs" / CASE_3D).image.shape[0]
    assert [(i.case, i.slice) for i in items] == [(CASE_2D, None)] + [(CASE_3D, z) for z in range(depth)]


def test_images_preprocessed_as_at_inference(two_cases):
    dataset = DistillDataset(two_cases, Augmentation.off())
    image_2d = read_case(TRAIN / "imgs" / CASE_2D).image
    volume = read_case(TRAIN / "imgs" / CASE_3D).image
    np.testing.assert_array_equal(dataset[(0, 5)]["image"], model_input(image_2d)[0])
    np.testing.assert_array_equal(dataset[(31, 5)]["image"], model_input(volume[30])[0])
    np.testing.assert_array_equal(dataset[(31, 5)]["image"], model_input(np.repeat(volume[30][..., None], 3, 2))[0])


def test_prompt_items_labelled_and_pseudo(two_cases):
    dataset = PromptDataset(two_cases, Augmentation.off(), PromptSampling(with_prompts=1.0, prior_box=0.0))
    gts = np.load(TRAIN / "gts" / CASE_3D)["gts"]
    labelled = [z for z in range(len(gts)) if gts[z].any()]
    empty = [z for z in range(len(gts)) if not gts[z].any()]
    z = labelled[len(labelled) // 2]
    sample = dataset[(1 + z, 3)]
    mask = gts[z] == 1
    assert sample["labelled"] and sample["with_prompts"]
    np.testing.assert_array_equal(sample["mask"], model_mask(mask))
    np.testing.assert_array_equal(sample["box"], box_to_model(tight_box(mask)[None], *mask.shape)[0])
    assert sample["points"].shape == (4, 2) and sample["scribble"].shape == (1, 256, 256)
    pseudo = dataset[(1 + empty[0], 3)]
    h, w = resized_shape(*gts.shape[1:])
    x0, y0, x1, y1 = pseudo["box"]
    assert not pseudo["labelled"] and not pseudo["mask"].any()
    assert 0 <= x0 < x1 <= w - 1 and 0 <= y0 < y1 <= h - 1


def test_same_seed_same_item(two_cases):
    dataset = PromptDataset(two_cases, Augmentation(), PromptSampling())
    a, b = dataset[(20, 11)], dataset[(20, 11)]
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_augment_flips_image_and_labels_together_and_keeps_zeros():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(20, 30), dtype=np.uint8)
    image[:5] = 0
    labels = (image > 128).astype(np.uint8)
    flipped, flipped_labels = augment(image, labels, Augmentation(hflip=1.0, vflip=1.0, intensity=0.0), rng)
    np.testing.assert_array_equal(flipped, image[::-1, ::-1])
    np.testing.assert_array_equal(flipped_labels, labels[::-1, ::-1])
    changed, _ = augment(image, None, Augmentation(hflip=0.0, vflip=0.0, intensity=1.0), rng)
    assert changed.dtype == np.uint8 and (changed[:5] == 0).all() and not np.array_equal(changed, image)


# --- losses, schedule, batches ------------------------------------------------------------------------


def test_losses_on_analytic_masks():
    mask = torch.zeros(2, 8, 8)
    mask[0, 2:6, 2:6] = 1
    logits = (mask * 2 - 1) * 100  # confident and right
    assert torch.allclose(dice_loss(logits, mask), torch.zeros(2), atol=1e-6)  # item 1: both empty
    assert torch.allclose(bce_loss(logits, mask), torch.zeros(2), atol=1e-6)
    disjoint = torch.zeros(1, 8, 8)
    disjoint[0, 0:2, 0:2] = 1
    assert torch.allclose(dice_loss(logits[:1], disjoint), torch.ones(1), atol=1e-6)
    assert torch.allclose(bce_loss(torch.zeros(1, 8, 8), disjoint), torch.tensor([np.log(2)], dtype=torch.float32))
    half = torch.zeros(1, 8, 8)
    half[0, 2:6, 4:8] = 1  # overlaps the 4x4 square in 8 of 24 pixels
    assert torch.allclose(mask_iou(logits[:1], half), torch.tensor([1 / 3]))
    assert torch.allclose(
        iou_regression_loss(torch.tensor([1 / 3, 1.0]), logits, torch.cat([half, mask[1:]])), torch.zeros(2)
    )


def test_lr_schedule():
    assert lr_factor(5, 10, 100) == 0.5 and lr_factor(10, 10, 100) == 1.0
    assert lr_factor(100, 10, 100) == pytest.approx(0.0) and lr_factor(55, 10, 100) == pytest.approx(0.5)


def test_batches_cover_each_epoch_and_resume_identically():
    full = list(StepBatches(n=7, batch_size=3, seed=4, start=0, total=7))
    indices = [i for batch in full for i, _ in batch]
    for epoch in range(3):
        assert sorted(indices[7 * epoch : 7 * epoch + 7]) == list(range(7))
    assert list(StepBatches(n=7, batch_size=3, seed=4, start=4, total=7)) == full[4:]


def test_parameter_groups_freeze_the_rest():
    model = build_swin_litemedsam()
    groups = trainable_groups(model, [{"prefixes": ["mask_decoder.neck"], "lr": 1e-3}])
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained and all(n.startswith("mask_decoder.neck") for n in trained)
    assert len(groups[0]["params"]) == len(trained)
    with pytest.raises(ConfigError):
        trainable_groups(model, [{"prefixes": ["no_such_module"], "lr": 1e-3}])


# --- the evaluation-set guard ---------------------------------------------------------------------------


def test_guard_refuses_the_evaluation_set(tmp_path):
    evaluation = tmp_path / "data" / "cvpr24-format"
    (evaluation / "imgs").mkdir(parents=True)
    (tmp_path / "innocent").symlink_to(evaluation)
    for path in (evaluation, evaluation / "imgs", tmp_path / "innocent"):
        with pytest.raises(EvaluationSetError, match="refusing to train"):
            load_config(default_config("distill"), {"data_dir": str(path)})
        with pytest.raises(EvaluationSetError, match="refusing to train"):
            DistillDataset(path, Augmentation.off())
    assert training_main(["distill", "--data-dir", str(evaluation), "--steps", "1"]) == 2
    assert training_main(["finetune", "--set", f"data_dir={tmp_path / 'innocent'}"]) == 2
    train = tmp_path / "data" / "cvpr24-train"
    assert check_not_evaluation_set(train, "train") == train
    assert load_config(default_config("distill"), {"data_dir": str(train)})["data_dir"] == str(train)


# --- evaluate's helpers (the command itself exports and segments: too slow for the suite) ----------------


def test_evaluate_picks_cases_across_the_set_and_reads_the_leaderboard_average(tmp_path):
    (tmp_path / "imgs").mkdir()
    for i in range(10):
        (tmp_path / "imgs" / f"case{i}.npz").touch()
    assert select_cases(tmp_path, 3) == ["case0.npz", "case4.npz", "case9.npz"]
    assert len(select_cases(tmp_path, None)) == 10 == len(select_cases(tmp_path, 50))
    summary = tmp_path / "summary.csv"
    summary.write_text("group,cases,dsc,nsd\n2DBox_CT,1,0.8,0.9\nmean of group means,2,0.7405,0.6582\n")
    assert leaderboard_average(summary) == {"dsc": 0.7405, "nsd": 0.6582}


# --- smoke runs --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def distilled(tmp_path_factory) -> Path:
    """3 distillation steps on one fixed image (batch 1, no augmentation), every step kept."""
    root = tmp_path_factory.mktemp("distill")
    data = _data_dir(root / "data", [CASE_2D])
    config = _config(
        "distill", data, root / "run", steps=3, batch_size=1, keep_every=1,
        **{"optimizer.warmup_steps": 0, "param_groups": [{"prefixes": ["image_encoder."], "lr": 3e-4}]},
    )  # fmt: skip
    torch.set_num_threads(1)
    distill.run(config, torch.device("cpu"), None)
    return root / "run"


def test_distill_loss_decreases_on_a_fixed_batch(distilled):
    losses = [float(row["loss"]) for row in _log(distilled)]
    assert len(losses) == 3 and all(np.isfinite(losses))
    assert losses[2] < losses[1] < losses[0], losses


def test_checkpoint_loads_strictly_in_the_authors_format(distilled):
    checkpoint = torch.load(distilled / "last.pth", map_location="cpu", weights_only=True)
    assert {"model", "step", "epoch", "optimizer"} <= set(checkpoint) and checkpoint["step"] == 3
    saved = checkpoint["model"]
    loaded = build_swin_litemedsam(distilled / "last.pth").state_dict()
    assert loaded.keys() == saved.keys()
    for key, value in saved.items():
        assert torch.equal(loaded[key], value), key


def test_resume_restores_step_optimizer_and_trajectory(distilled, tmp_path):
    config = json.loads(json.dumps(torch.load(distilled / "last.pth", weights_only=True)["config"]))
    saved = torch.load(distilled / "step_000002.pth", map_location="cpu", weights_only=True)
    model = build_swin_litemedsam()
    optimizer = torch.optim.AdamW(trainable_groups(model, config["param_groups"]), weight_decay=0.01)
    assert load_checkpoint(distilled / "step_000002.pth", model, optimizer) == 2
    state = optimizer.state_dict()
    assert state["param_groups"] == saved["optimizer"]["param_groups"]
    for key, value in saved["optimizer"]["state"].items():
        assert int(state["state"][key]["step"]) == 2
        assert torch.equal(state["state"][key]["exp_avg"], value["exp_avg"])
    config["output_dir"] = str(tmp_path)
    torch.set_num_threads(1)
    distill.run(config, torch.device("cpu"), distilled / "step_000002.pth")
    assert [int(row["step"]) for row in _log(tmp_path)] == [3]
    resumed = torch.load(tmp_path / "last.pth", weights_only=True)["model"]
    uninterrupted = torch.load(distilled / "step_000003.pth", weights_only=True)["model"]
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in uninterrupted)


def test_finetune_trains_only_the_new_decoder_parts(distilled, two_cases, tmp_path):
    config = _config(
        "finetune", two_cases, tmp_path, steps=2, batch_size=2, seed=3,
        encoder_checkpoint=str(distilled / "last.pth"), **{"prompts.with_prompts": 0.5},
    )  # fmt: skip
    torch.set_num_threads(1)
    finetune.run(config, torch.device("cpu"), None)
    rows = _log(tmp_path)
    assert len(rows) == 2 and all(np.isfinite(float(row[k])) for row in rows for k in ("loss", "dice", "bce", "iou"))
    after = build_swin_litemedsam(tmp_path / "last.pth").state_dict()
    encoder = torch.load(distilled / "last.pth", weights_only=True)["model"]
    trained = ("mask_decoder.neck.", "mask_decoder.output_upscaling1.", "mask_decoder.output_upscaling2.")
    start = build_student(config["teacher"], config["seed"], distilled / "last.pth").state_dict()
    for key, value in after.items():
        if key.startswith("image_encoder."):
            assert torch.equal(value, encoder[key]), key
        elif not key.startswith(trained):
            assert torch.equal(value, start[key]), key
    assert any(not torch.equal(after[k], start[k]) for k in after if k.startswith(trained))
