"""The frozen-encoder stage: the feature caches, the inference-like prompts drawn on them, the split by
source, the whole-case validation, and `finetune-decoder` of the decoders on three real training cases (two
ultrasound images and a 25-slice MR volume whose box spans 15 slices)."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED, require, require_torch

torch = require_torch()

from medsam_laptop.engines.openvino_engine import OpenVINOEngine  # noqa: E402
from medsam_laptop.inference.segment import z_ranges  # noqa: E402
from medsam_laptop.inference.transforms import box_to_model, model_input, prior_box  # noqa: E402
from medsam_laptop.io.case_files import modality_group, source_name  # noqa: E402
from medsam_laptop.io.cases import read_case  # noqa: E402
from medsam_laptop.paths import default_weights_dir  # noqa: E402
from medsam_laptop.training.cli import main as training_main  # noqa: E402
from medsam_laptop.training.config import CONFIG_DIR, ConfigError, default_config, load_config  # noqa: E402
from medsam_laptop.training.decoder.cached_prompts import (  # noqa: E402
    CachedPromptDataset,
    CacheSource,
    PropagationSampling,
    case_labels,
    group_repeats,
    item_prompt,
    patient,
    perturb_mask,
    split_cases,
)
from medsam_laptop.training.decoder.feature_cache import (  # noqa: E402
    STAGE_SHAPES,
    CacheError,
    build_cache,
    cached_items,
    item_image,
    item_path,
    load_features,
)
from medsam_laptop.training.decoder.finetune import decode_cached, run  # noqa: E402
from medsam_laptop.training.items import Item  # noqa: E402
from medsam_laptop.training.targets import model_mask, tight_box  # noqa: E402

TRAIN = SHARED / "data" / "cvpr24-train"
EXTRA = SHARED / "data" / "cvpr24-train-extra"
CASE_2D = "2DBox_US_stubus_17.npz"
CASE_3D = "3DBox_MR_ibsi-sts_STS025.npz"
OTHER_2D = "2DBox_US_stubus_18.npz"
CASES = (CASE_2D, OTHER_2D, CASE_3D)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A training folder of symlinks to the three cases."""
    require((TRAIN / "imgs" / CASE_3D).is_file(), f"the training cases {TRAIN} (set MEDSAM_SHARED)")
    root = tmp_path_factory.mktemp("data")
    for sub in ("imgs", "gts"):
        (root / sub).mkdir()
        for name in CASES:
            (root / sub / name).symlink_to(TRAIN / sub / name)
    return root


@pytest.fixture(scope="module")
def cache(data_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cache") / "litemedsam-f32"
    build_cache(data_dir, out, default_weights_dir(), flips=True, threads=2)
    return out


# --- the cache ----------------------------------------------------------------------------------------


def test_cache_is_complete(cache, data_dir):
    items = cached_items(cache)
    boxes = case_labels(data_dir, CASE_3D)[0]
    slices = list(range(int(boxes[0, 2]), int(boxes[0, 5]) + 1))
    originals = [Item(n, None, False) for n in (CASE_2D, OTHER_2D)] + [Item(CASE_3D, z, False) for z in slices]
    assert items == originals + [Item(i.case, i.slice, True) for i in originals]
    for item in items:
        embedding = np.load(cache / item_path(item))
        assert embedding.dtype == np.float16 and embedding.shape == (256, 64, 64)


@pytest.mark.parametrize("item", [Item(CASE_3D, 12, False), Item(CASE_2D, None, True)], ids=str)
def test_cached_embedding_is_the_encoders_output(cache, data_dir, item):
    engine = OpenVINOEngine(default_weights_dir() / "litemedsam", "f32", threads=2)
    expected = engine.encode(model_input(item_image(data_dir, item)))[0]
    cached = load_features(cache, item, "embedding")["embedding"]
    assert np.abs(cached - expected).max() <= 2e-3 * np.abs(expected).max()  # float16 rounding only
    if item.flip:  # the mirrored image's own encoding, not the original's
        original = load_features(cache, Item(item.case, item.slice, False), "embedding")["embedding"]
        assert np.abs(original - cached).max() > 0.1


def test_cache_resumes_with_only_the_missing_items(cache, data_dir, capsys):
    victim = cache / item_path(Item(CASE_3D, 7, True))
    before = {p: p.stat().st_mtime_ns for p in cache.rglob("*.npy") if p != victim}
    victim.unlink()
    build_cache(data_dir, cache, default_weights_dir(), flips=True, threads=2)
    assert "1 to encode" in capsys.readouterr().err
    assert victim.is_file()
    assert before == {p: p.stat().st_mtime_ns for p in cache.rglob("*.npy") if p != victim}


def test_cache_of_other_settings_is_refused(cache, data_dir):
    with pytest.raises(CacheError, match="other settings"):
        build_cache(data_dir, cache, default_weights_dir(), flips=False)


def test_cache_command_refuses_the_evaluation_set(tmp_path, capsys):
    evaluation = SHARED / "data" / "cvpr24-format"
    require(evaluation.is_dir(), f"the evaluation cases {evaluation}")
    assert training_main(["cache-features", "--data-dir", str(evaluation), "--cache-dir", str(tmp_path)]) == 2
    assert "evaluation" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


# --- prompts --------------------------------------------------------------------------------------------


def test_2d_prompt_is_the_challenge_box_mirrored_with_the_image(data_dir):
    boxes, gts = case_labels(data_dir, CASE_2D)
    for flip in (False, True):
        box, target = item_prompt(
            Item(CASE_2D, None, flip), boxes, gts, PropagationSampling(), np.random.default_rng(0)
        )
        labels = gts[:, ::-1] if flip else gts
        assert np.array_equal(box, box_to_model(tight_box(labels == 1)[None], *gts.shape)[0])
        assert np.array_equal(target, model_mask(labels == 1))


def test_3d_prompts_follow_the_propagation(data_dir):
    boxes, gts = case_labels(data_dir, CASE_3D)
    middle = int(z_ranges(boxes, gts.shape[0])[2][0])
    exact = PropagationSampling(imperfect=0.0)
    own = box_to_model(boxes[:1, [0, 1, 3, 4]], *gts.shape[1:])[0]
    rng = np.random.default_rng(0)
    assert np.array_equal(item_prompt(Item(CASE_3D, middle, False), boxes, gts, exact, rng)[0], own)
    toward_middle = ((middle + 1, middle), (middle + 2, middle + 1), (middle - 1, middle), (middle - 2, middle - 1))
    for z, neighbour in toward_middle:
        box, target = item_prompt(Item(CASE_3D, z, False), boxes, gts, exact, rng)
        assert np.array_equal(box, prior_box(gts[neighbour] == 1, 1))
        assert np.array_equal(target, model_mask(gts[z] == 1))
    exact_box = prior_box(gts[middle + 1] == 1, 1)
    sizes = set()
    for _ in range(20):
        box = item_prompt(Item(CASE_3D, middle + 2, False), boxes, gts, PropagationSampling(1.0, 3), rng)[0]
        sizes.add(np.sign((box[2:] - box[:2]).sum() - (exact_box[2:] - exact_box[:2]).sum()))
    assert sizes == {-1, 1}  # dilated and eroded neighbours: larger and smaller boxes, never the exact one


def test_3d_prompts_of_a_mirrored_slice_are_mirrored(data_dir):
    boxes, gts = case_labels(data_dir, CASE_3D)
    width = gts.shape[2]
    middle = int(z_ranges(boxes, gts.shape[0])[2][0])
    exact = PropagationSampling(imperfect=0.0)
    mirrored = boxes[:1, [0, 1, 3, 4]].copy()
    mirrored[:, [0, 2]] = width - 1 - boxes[:1, [3, 0]]
    box, target = item_prompt(Item(CASE_3D, middle, True), boxes, gts, exact, np.random.default_rng(0))
    assert np.array_equal(box, box_to_model(mirrored, *gts.shape[1:])[0])
    assert np.array_equal(target, model_mask(gts[middle][:, ::-1] == 1))
    box, _ = item_prompt(Item(CASE_3D, middle + 1, True), boxes, gts, exact, np.random.default_rng(0))
    assert np.array_equal(box, prior_box(gts[middle][:, ::-1] == 1, 1))


def test_perturbation_dilates_and_erodes():
    mask = np.zeros((512, 512), bool)
    mask[200:300, 200:300] = True
    assert perturb_mask(mask, 2).sum() > mask.sum() > perturb_mask(mask, -2).sum()
    assert perturb_mask(mask, 2)[196, 250] and not perturb_mask(mask, 2)[190, 250]  # 2 px of 256-space = 4 px


def test_split_is_by_patient_stratified_and_seeded():
    names = [f"2DBox_US_us{i}.npz" for i in range(20)] + [f"3DBox_CT_p{i}.npz" for i in range(10)]
    names += [f"3DBox_MR_p{i}.npz" for i in range(10)] + ["3DBox_PET_p0.npz"]  # p0: three modalities
    training, validation = split_cases(names, 0.2, seed=0)
    assert sorted(training + validation) == sorted(names)
    assert not {patient(n) for n in training} & {patient(n) for n in validation}
    counts = [sum(n.startswith(g) for n in validation) for g in ("2DBox_US", "3DBox_CT", "3DBox_MR")]
    assert counts[0] == 4 and counts[1] >= 2 and counts[2] >= 2  # others follow their patient in
    assert split_cases(names, 0.2, seed=0) == (training, validation)
    assert split_cases(names, 0.2, seed=1) != (training, validation)


def test_split_keeps_whole_sources_out_where_a_group_has_several():
    """On the names of both training folders: in a group of two or more sources no source is on both sides
    and one whole source is in validation; a group of one source is split by patient."""
    require((EXTRA / "imgs").is_dir(), f"the extra training cases {EXTRA} (set MEDSAM_SHARED)")
    names = sorted(p.name for folder in (TRAIN, EXTRA) for p in (folder / "imgs").glob("*.npz"))
    training, validation = split_cases(names, 0.15, seed=0)
    assert sorted(training + validation) == names and not set(training) & set(validation)
    assert not {patient(n) for n in training} & {patient(n) for n in validation}
    groups = sorted({modality_group(n) for n in names})
    several = 0
    for group in groups:
        sources = {source_name(n) for n in names if modality_group(n) == group}
        held = {source_name(n) for n in validation if modality_group(n) == group}
        trained = {source_name(n) for n in training if modality_group(n) == group}
        assert held and trained, group  # every group is on both sides
        if len(sources) >= 2:
            several += 1
            assert not held & trained, group  # a source is on one side only
            assert len(held) == 1, group
        else:
            assert held == trained, group
    assert several == 6  # endoscopy, mammography, microscopy, 2D MR, US, X-ray
    assert split_cases(names, 0.15, seed=0) == (training, validation)


def test_whole_volume_validation_is_segment_3d_on_the_cached_features(cache, data_dir):
    """The validation of a 3D case propagates over the volume as `segment_3d` does: the same masks as
    segment_3d run with the live f32 encoder whose outputs are rounded to float16 as the cache stores them."""
    from medsam_laptop.inference.segment import segment_3d
    from medsam_laptop.inference.timer import StageTimer
    from medsam_laptop.io.checkpoints import official_litemedsam_checkpoint
    from medsam_laptop.modeling import build_litemedsam
    from medsam_laptop.training.decoder.finetune import validation_decoder
    from medsam_laptop.training.decoder.validation import case_dice, segment_cached_case

    model = build_litemedsam(official_litemedsam_checkpoint())
    decode = validation_decoder(model)
    validated = segment_cached_case(CacheSource.open(cache), CASE_3D, decode)

    live = OpenVINOEngine(default_weights_dir() / "litemedsam", "f32", threads=2)

    class RoundedEncoder:
        prompt_mode = "box"

        def for_case(self, case):
            return self

        def encode(self, image):
            return live.encode(image).astype(np.float16).astype(np.float32)

        def decode(self, features, boxes, points=None, scribbles=None):
            with torch.no_grad():
                return decode({"embedding": torch.from_numpy(features), "box": torch.from_numpy(boxes)})[0][
                    :, 0
                ].numpy()

    case = read_case(data_dir / "imgs" / CASE_3D)
    expected = segment_3d(RoundedEncoder(), case.image, case.boxes, StageTimer(), case=CASE_3D)
    assert np.array_equal(validated, expected)
    _, gts = case_labels(data_dir, CASE_3D)
    assert case_dice(gts, validated) > 0.5 and len(np.unique(np.flatnonzero(validated.any(axis=(1, 2))))) >= 10


def test_group_repeats_even_out_groups_in_part():
    groups = ["PET"] * 400 + ["US"] * 25 + ["MR"] * 100
    assert group_repeats(groups, 0.0) == {"PET": 1, "US": 1, "MR": 1}
    assert group_repeats(groups, 0.5) == {"PET": 1, "US": 4, "MR": 2}
    assert group_repeats(groups, 1.0) == {"PET": 1, "US": 16, "MR": 4}


def test_dataset_refuses_an_incomplete_cache(cache, data_dir, tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "cache.json").write_text((cache / "cache.json").read_text())
    with pytest.raises(CacheError, match="lacks"):
        CachedPromptDataset([CacheSource.open(partial)], [CASE_2D], PropagationSampling())


# --- fine-tuning ------------------------------------------------------------------------------------------


def _config(cache: Path, data_dir: Path, out: Path, stage: str = "finetune-decoder", **keys) -> dict:
    overrides = {"caches": [str(cache)], "output_dir": str(out), "device": "cpu"}
    overrides |= {"num_workers": 0, "batch_size": 2, "save_every": 1, "keep_every": 2, "validation.fraction": 0.5}
    return load_config(default_config(stage), overrides | keys)


@pytest.fixture(scope="module")
def finetuned(cache, data_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("finetuned")
    torch.set_num_threads(2)
    run(_config(cache, data_dir, out, steps=4), torch.device("cpu"), None)
    return out


def test_finetune_trains_the_decoder_only_and_selects_on_validation(finetuned):
    start = torch.load(finetuned / "step_000000.pth", weights_only=True)["model"]
    last = torch.load(finetuned / "last.pth", weights_only=True)["model"]
    changed = {k for k in start if not torch.equal(start[k], last[k])}
    assert changed and all(k.startswith("mask_decoder.") for k in changed)
    split = json.loads((finetuned / "run.json").read_text())["split"]  # one of the two US cases; MR alone
    assert len(split["validation"]) == 1 and split["validation"][0] in (CASE_2D, OTHER_2D)
    assert sorted(split["training"] + split["validation"]) == sorted(CASES)
    with open(finetuned / "validation.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [0, 2, 4]
    best = max(rows, key=lambda r: float(r["mean"]))
    chosen = torch.load(finetuned / "best.pth", weights_only=True)
    assert chosen["step"] == int(best["step"])


def test_modality_decoder_trains_its_tokens_and_is_pulled_toward_litemedsam(cache, data_dir, tmp_path):
    """litemedsam-modality, anchored: the tokens of the trained groups move, the others stay zero (the
    generic one is a constant), and the anchor term is logged (zero at the first step, at the start)."""
    from medsam_laptop.modality import MODALITY_GROUPS

    torch.set_num_threads(2)
    config = _config(cache, data_dir, tmp_path, "finetune-decoder-modality", steps=2, keep_every=2)
    run(config, torch.device("cpu"), None)
    tokens = torch.load(tmp_path / "last.pth", weights_only=True)["model"]["modality_tokens"]
    assert tokens.shape == (len(MODALITY_GROUPS), 256)
    moved = {MODALITY_GROUPS[i] for i in range(len(tokens)) if tokens[i].abs().sum() > 0}
    assert moved and moved <= {"2DBox_US", "3DBox_MR"}
    with open(tmp_path / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert float(rows[0]["anchor"]) == 0.0 and float(rows[1]["anchor"]) > 0.0


def test_an_anchored_run_resumed_keeps_its_anchor(cache, data_dir, tmp_path):
    """The anchor is LiteMedSAM's weights, not those of the step a run resumes from: resumed at step 2,
    an anchored run ends with the weights of the uninterrupted one."""
    torch.set_num_threads(2)
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    config = _config(cache, data_dir, whole, "finetune-decoder-anchored", steps=4, keep_every=2)
    config["loss"]["anchor_weight"] = 100.0  # large enough that a wrong anchor changes the weights
    run(config, torch.device("cpu"), None)
    run({**config, "output_dir": str(resumed)}, torch.device("cpu"), whole / "step_000002.pth")
    expected = torch.load(whole / "last.pth", weights_only=True)["model"]
    got = torch.load(resumed / "last.pth", weights_only=True)["model"]
    assert all(torch.equal(got[k], expected[k]) for k in expected)


def test_a_new_run_refuses_a_folder_of_another_run(finetuned, cache, data_dir):
    with pytest.raises(ConfigError, match="earlier run"):
        run(_config(cache, data_dir, finetuned, steps=4), torch.device("cpu"), None)


def test_resumed_finetune_sees_the_batches_of_an_uninterrupted_one(finetuned, cache, data_dir, tmp_path):
    torch.set_num_threads(2)
    run(_config(cache, data_dir, tmp_path, steps=4), torch.device("cpu"), finetuned / "step_000002.pth")
    with open(tmp_path / "log.csv", newline="") as f:
        assert [int(row["step"]) for row in csv.DictReader(f)] == [3, 4]
    resumed = torch.load(tmp_path / "last.pth", weights_only=True)["model"]
    uninterrupted = torch.load(finetuned / "last.pth", weights_only=True)["model"]
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in uninterrupted)


# --- evaluation and shipping -------------------------------------------------------------------------------


def test_evaluated_candidate_ships_as_a_model_predict_runs(finetuned, data_dir, tmp_path, capsys):
    """`evaluate` on the three cases, then `ship`: the shipped folder's masks through `predict` are the masks
    evaluate scored (its shared encoder changes nothing), and its manifest records how it was made."""
    scored = tmp_path / "evaluate"
    args = ["evaluate", str(finetuned / "best.pth"), "-o", str(scored), "--cases-dir", str(data_dir)]
    assert training_main([*args, "--threads", "2"]) == 0
    result = json.loads((scored / "evaluation.json").read_text())
    label = finetuned.name
    assert result["precision"] == "f32" and list(result["candidates"]) == [label]
    verdict = result["candidates"][label]["ship"]
    assert verdict["decision"] in ("default", "selectable", "no")
    weights = tmp_path / "weights"
    weights.mkdir()
    ship = ["ship", str(finetuned / "best.pth"), "--evaluation", str(scored), "--weights-dir", str(weights)]
    assert training_main([*ship, "--name", "litemedsam"]) == 2  # never over a bundled model
    if verdict["decision"] == "no":  # four steps on three cases: the rule may well refuse it
        assert training_main([*ship, "--name", "tuned"]) == 2
        assert "shipping rule says no" in capsys.readouterr().err
        result["candidates"][label]["ship"] = {"decision": "selectable", "reasons": []}  # as if it had passed
        (scored / "evaluation.json").write_text(json.dumps(result))
    assert training_main([*ship, "--name", "tuned"]) == 0
    manifest = json.loads((weights / "tuned" / "manifest.json").read_text())
    best = torch.load(finetuned / "best.pth", weights_only=True)
    assert manifest["name"] == "tuned" and manifest["training"]["step"] == best["step"]
    assert manifest["training"]["caches"][0]["item_count"] == 2 * 17
    assert manifest["evaluation"]["ship"] == result["candidates"][label]["ship"]
    official = json.loads((default_weights_dir() / "litemedsam" / "manifest.json").read_text())["files"]
    assert manifest["files"]["encoder.bin"] == official["encoder.bin"]  # the encoder is LiteMedSAM's

    from medsam_laptop.cli import main as medsam_main

    out = tmp_path / "segs"
    predict = ["predict", "-i", str(scored / "inputs"), "-o", str(out), "--weights-dir", str(weights)]
    assert medsam_main([*predict, "--model", "tuned", "--precision", "f32", "--threads", "2"]) == 0
    for name in CASES:
        with np.load(out / name) as ours, np.load(scored / "segs" / label / name) as evaluated:
            assert np.array_equal(ours["segs"], evaluated["segs"])


# --- candidate (b): the skip-feature decoder on TinyViT's stage outputs --------------------------------------


@pytest.fixture(scope="module")
def stage_cache(data_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cache") / "litemedsam-stages-f32"
    build_cache(data_dir, out, default_weights_dir(), flips=False, threads=2, features="stages")
    return out


def test_stage_cache_holds_tinyvits_stage_outputs(stage_cache, data_dir):
    from medsam_laptop.io.checkpoints import official_litemedsam_checkpoint
    from medsam_laptop.modeling import build_litemedsam

    items = cached_items(stage_cache)
    assert len(items) == 17 and not any(i.flip for i in items)
    item = Item(CASE_3D, 12, False)
    cached = load_features(stage_cache, item, "stages")
    encoder = build_litemedsam(official_litemedsam_checkpoint()).image_encoder
    with torch.no_grad():
        embedding, stages = encoder.forward_with_stages(torch.from_numpy(model_input(item_image(data_dir, item))))
    expected = dict(zip(("embedding", "fs0", "fs1", "fs2", "fs3"), (embedding, *stages)))
    assert list(cached) == list(expected)
    for name, tensor in expected.items():
        reference = tensor[0].numpy()
        assert cached[name].shape == reference.shape == STAGE_SHAPES[name]
        assert np.abs(cached[name] - reference).max() <= 2e-3 * np.abs(reference).max(), name


def test_each_decoder_needs_its_own_kind_of_cache(cache, stage_cache, data_dir, tmp_path):
    with pytest.raises(ConfigError, match="needs a cache of stages"):
        run(_config(cache, data_dir, tmp_path, steps=2, model="litemedsam-skip"), torch.device("cpu"), None)
    with pytest.raises(ConfigError, match="needs a cache of embedding"):
        run(_config(stage_cache, data_dir, tmp_path, steps=2), torch.device("cpu"), None)
    with pytest.raises(ConfigError, match="amp must list"):
        run(_config(cache, data_dir, tmp_path, steps=2, amp=True), torch.device("cpu"), None)
    assert not any(tmp_path.glob("step_*.pth"))


def test_a_stage_cache_is_not_mixed_into_an_embedding_cache(cache, data_dir):
    with pytest.raises(CacheError, match="other settings"):
        build_cache(data_dir, cache, default_weights_dir(), flips=True, features="stages")
    assert not (cache / "encoder").exists()


@pytest.fixture(scope="module")
def skip_finetuned(stage_cache, data_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("skip-finetuned")
    torch.set_num_threads(2)
    config = load_config(
        CONFIG_DIR / "finetune-skip-decoder.json",
        {
            "caches": [str(stage_cache)],
            "output_dir": str(out),
            "device": "cpu",
            "num_workers": 0,
            "batch_size": 2,
            "save_every": 1,
            "keep_every": 2,
            "validation.fraction": 0.5,
            "steps": 2,
        },
    )
    run(config, torch.device("cpu"), None)
    return out


def test_skip_decoder_starts_from_litemedsam_and_trains_the_decoder_only(skip_finetuned):
    from medsam_laptop.io.checkpoints import official_litemedsam_checkpoint
    from medsam_laptop.modeling import load_state_dict

    lite = load_state_dict(official_litemedsam_checkpoint())
    start = torch.load(skip_finetuned / "step_000000.pth", weights_only=True)["model"]
    last = torch.load(skip_finetuned / "last.pth", weights_only=True)["model"]
    fresh = {k for k in start if not (k in lite and torch.equal(start[k], lite[k]))}
    assert {k.split(".")[1] for k in fresh} == {"neck", "output_upscaling1", "output_upscaling2"}
    assert all(k.startswith("mask_decoder.") for k in fresh)
    changed = {k for k in start if not torch.equal(start[k], last[k])}
    assert fresh <= changed and all(k.startswith("mask_decoder.") for k in changed)
    assert changed - fresh  # the shared decoder parts train too


def test_exported_skip_decoder_computes_what_training_did(skip_finetuned, stage_cache, data_dir, tmp_path):
    """The IR of `import-checkpoint --model litemedsam-skip` (TinyViT and the skip fusion in the encoder
    graph) gives the logits the trained model gives on the cached features of the same image."""
    from medsam_laptop.cli import main as medsam_main
    from medsam_laptop.modeling import build_litemedsam_skip

    best = skip_finetuned / "best.pth"
    args = ["import-checkpoint", "--model", "litemedsam-skip", str(best), "--weights-dir", str(tmp_path)]
    assert medsam_main(args) == 0
    engine = OpenVINOEngine(tmp_path / "litemedsam-skip", "f32", threads=2)
    assert engine.prompt_mode == "box"
    item = Item(CASE_2D, None, False)
    box = item_prompt(item, *case_labels(data_dir, CASE_2D), PropagationSampling(), np.random.default_rng(0))[0]
    exported = engine.decode(engine.encode(model_input(item_image(data_dir, item))), box[None])
    model = build_litemedsam_skip(best)
    batch = {k: torch.from_numpy(v[None]) for k, v in load_features(stage_cache, item, "stages").items()}
    with torch.no_grad():
        trained = decode_cached(model, batch | {"box": torch.from_numpy(box[None])})[0][:, 0].numpy()
    assert exported.shape == trained.shape == (1, 256, 256)
    assert np.mean((exported > 0) == (trained > 0)) > 0.999  # float16 cache against f32 features
    assert np.abs(exported - trained).max() < 0.05 * np.abs(trained).max()


def _scored(evaluation: Path, checkpoint: Path) -> Path:
    """An evaluation folder as `evaluate` leaves it, for `ship`: the verdict "selectable" and two summaries
    (ship copies them; what they say is evaluate's business, tested above)."""
    from medsam_laptop.io.checkpoints import sha256_of

    for label in ("litemedsam", "candidate"):
        (evaluation / "metrics" / label).mkdir(parents=True)
        (evaluation / "metrics" / label / "summary.csv").write_text("group,dsc,nsd\nmean of group means,0.7,0.7\n")
    scores = {"dsc": 0.7, "nsd": 0.7, "seconds": 1.0}
    record = {"checkpoint": str(checkpoint), "checkpoint_sha256": sha256_of(checkpoint), "model": "litemedsam-skip"}
    record |= scores | {"ship": {"decision": "selectable", "reasons": []}}
    result = {"precision": "f32", "cases": [CASE_2D], "litemedsam": scores, "candidates": {"candidate": record}}
    (evaluation / "evaluation.json").write_text(json.dumps(result))
    return evaluation


def test_skip_decoder_ships_with_the_official_encoder_only(skip_finetuned, tmp_path, capsys):
    weights = tmp_path / "weights"
    weights.mkdir()
    best = skip_finetuned / "best.pth"
    ship = ["ship", str(best), "--evaluation", str(_scored(tmp_path / "scored", best)), "--weights-dir", str(weights)]
    assert training_main([*ship, "--name", "litemedsam-skip"]) == 2  # the folder import-checkpoint writes
    assert "cannot name a shipped model" in capsys.readouterr().err
    assert training_main([*ship, "--name", "skip-tuned"]) == 0
    manifest = json.loads((weights / "skip-tuned" / "manifest.json").read_text())
    assert manifest["model"] == "litemedsam-skip" and list(manifest["export"]["decoders"]) == ["box"]
    assert manifest["training"]["config"]["model"] == "litemedsam-skip"
    assert OpenVINOEngine(weights / "skip-tuned", "f32", threads=2).prompt_mode == "box"

    changed = torch.load(best, weights_only=True)
    changed["model"]["image_encoder.neck.0.weight"] += 0.01
    other = tmp_path / "other" / "best.pth"
    other.parent.mkdir()
    torch.save(changed, other)
    for name in ("run.json", "validation.csv"):
        (other.parent / name).write_text((skip_finetuned / name).read_text())
    refused = ["ship", str(other), "--evaluation", str(_scored(tmp_path / "scored-other", other))]
    assert training_main([*refused, "--weights-dir", str(weights), "--name", "skip-other"]) == 2
    assert "not the official LiteMedSAM's" in capsys.readouterr().err
    assert not (weights / "skip-other").exists()
