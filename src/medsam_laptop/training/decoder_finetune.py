"""A mask decoder trained on the feature cache, LiteMedSAM's encoder frozen. config["model"] says which:

- "litemedsam": LiteMedSAM's own decoder, fine-tuned (issue 14, candidate (a)); an "embedding" cache;
- "litemedsam-skip": Swin-LiteMedSAM's skip-feature decoder on TinyViT's stage outputs (candidate (b));
  a "stages" cache. Its parts LiteMedSAM has start from LiteMedSAM, the others (`neck`,
  `output_upscaling1/2`) from a fresh initialisation drawn with config["seed"]. Prompts: the box alone.

The model starts from a LiteMedSAM checkpoint ("official": the bundled weights); config["param_groups"]
says which parts train. Each step decodes a batch of cached features with the prompts inference would
give (`cached_prompts.py`); loss: Dice + BCE + IoU-head regression.

Model selection: the cached cases are split by `validation` (fraction, seed) into training and validation
cases (`cached_prompts.split_cases`, by patient); `group_balance` repeats the items of small modality
groups (`cached_prompts.group_repeats`). Every `keep_every` steps, and at the last step, a checkpoint is
kept; at the end, the starting weights and every kept checkpoint are scored on the validation items (mean
over modality groups of the mean hard Dice at 256 x 256), OUTPUT/validation.csv lists the scores and
OUTPUT/best.pth is the best of them. The evaluation set plays no part in that choice. OUTPUT/run.json
holds the split, the cache's settings and the commit the run started at.
"""

import csv
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import torch

from ..modeling import build_litemedsam, build_litemedsam_skip, init_from_litemedsam, load_state_dict
from ..modeling.sam import LiteMedSAM, SwinLiteMedSAM
from ..paths import checkout
from .cached_prompts import CachedPromptDataset, PropagationSampling, split_cases
from .config import ConfigError, expand_path
from .feature_cache import read_manifest, upgraded
from .loop import Batch, StepLosses, fit, save_checkpoint, trainable_groups, uses_amp
from .losses import bce_loss, dice_loss, iou_regression_loss
from .models import teacher_checkpoint


def git_commit() -> str | None:
    """The checkout's HEAD commit, None outside a git checkout."""
    root = checkout()
    if root is None:
        return None
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True)
    return done.stdout.strip() or None


DecoderModel = LiteMedSAM | SwinLiteMedSAM
MODEL_FEATURES = {"litemedsam": "embedding", "litemedsam-skip": "stages"}  # the cache each one trains on


def model_name(config: dict) -> str:
    """config["model"]; litemedsam in configs written before there was a choice. Raises ConfigError for
    another name."""
    name = config.get("model", "litemedsam")
    if name not in MODEL_FEATURES:
        raise ConfigError(f"model {name!r} is not one of {', '.join(MODEL_FEATURES)}")
    return name


def start_model(config: dict) -> DecoderModel:
    """config["model"] with LiteMedSAM's weights from config["checkpoint"], and the parts LiteMedSAM lacks
    drawn from config["seed"]."""
    torch.manual_seed(config["seed"])
    checkpoint = teacher_checkpoint(config["checkpoint"])
    if model_name(config) == "litemedsam":
        return build_litemedsam(checkpoint)
    model = build_litemedsam_skip()
    model.load_state_dict(init_from_litemedsam("litemedsam-skip", load_state_dict(checkpoint)), strict=True)
    return model


def decode_cached(model: DecoderModel, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask logits (B, 1, 256, 256) and IoU (B, 1) for a batch of cached features, one box per item. The
    skip decoder fuses fs1-fs3 here, as its exported encoder does at inference."""
    if isinstance(model, LiteMedSAM):
        return model.decode(batch["embedding"], batch["box"])
    fused = model.mask_decoder.fuse_skips(batch["fs1"], batch["fs2"], batch["fs3"])
    return model.decode(batch["embedding"], batch["fs0"], fused, batch["box"])


def decoder_losses(model: DecoderModel, loss_config: dict) -> StepLosses:
    def step_losses(batch: Batch) -> dict[str, torch.Tensor]:
        logits, iou = decode_cached(model, batch)
        logits, target = logits[:, 0], batch["mask"]
        losses = {
            "dice": dice_loss(logits, target).mean(),
            "bce": bce_loss(logits, target).mean(),
            "iou": iou_regression_loss(iou[:, 0], logits, target).mean(),
        }
        loss = sum(loss_config[f"{name}_weight"] * value for name, value in losses.items())
        return {"loss": loss, **losses}

    return step_losses


def hard_dice(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Dice of (logits > 0) against a {0, 1} target: (B, H, W) -> (B,); 1 for two empty masks."""
    pred, truth = (logits > 0).flatten(1), target.flatten(1) > 0.5
    total = pred.sum(1) + truth.sum(1)
    return torch.where(total > 0, 2 * (pred & truth).sum(1) / total.clamp(min=1), torch.ones_like(total).float())


@torch.no_grad()
def validation_scores(model: DecoderModel, dataset: CachedPromptDataset, batch_size: int = 16) -> dict[str, float]:
    """Mean hard Dice per modality group over every item of `dataset` (one object each, its prompt drawn with
    the item's index as seed: the same for every checkpoint), and "mean": the mean of the groups."""
    model.eval()
    per_group: dict[str, list[float]] = {}
    for start in range(0, len(dataset), batch_size):
        indices = range(start, min(start + batch_size, len(dataset)))
        items = [dataset[(i, i)] for i in indices]
        batch = {k: torch.from_numpy(np.stack([item[k] for item in items])) for k in items[0]}
        logits, _ = decode_cached(model, batch)
        for i, dice in zip(indices, hard_dice(logits[:, 0], batch["mask"]).tolist()):
            per_group.setdefault(dataset.group(i), []).append(dice)
    scores = {group: float(np.mean(values)) for group, values in sorted(per_group.items())}
    return scores | {"mean": float(np.mean(list(scores.values())))}


def select_checkpoint(model: DecoderModel, out: Path, validation: CachedPromptDataset) -> tuple[Path, list[dict]]:
    """Scores every OUTPUT/step_*.pth (step 0: the starting weights) on `validation` with `model` as the
    vessel; writes OUTPUT/validation.csv and copies the best to OUTPUT/best.pth, which it returns."""
    rows = []
    for path in sorted(out.glob("step_*.pth")):
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(checkpoint["model"], strict=True)
        rows.append({"step": int(checkpoint["step"]), **validation_scores(model, validation)})
    with open(out / "validation.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    best = max(rows, key=lambda row: row["mean"])
    shutil.copyfile(out / f"step_{best['step']:06d}.pth", out / "best.pth")
    return out / "best.pth", rows


def datasets(config: dict) -> tuple[CachedPromptDataset, CachedPromptDataset]:
    """(training items with flipped copies, repeated by group_balance; validation items without) of the
    cached cases. The config's data folder must be the one the cache was built from."""
    cache_dir = expand_path(config["cache_dir"])
    manifest = read_manifest(cache_dir)
    built_from = Path(manifest["data_dir"])
    if expand_path(config["data_dir"]).resolve() != built_from:
        raise ConfigError(f"data_dir {config['data_dir']} is not {built_from}, which {cache_dir} was built from")
    needed = MODEL_FEATURES[model_name(config)]
    if manifest["features"] != needed:
        raise ConfigError(
            f"{cache_dir} holds {manifest['features']} features; {model_name(config)} needs a cache of "
            f"{needed} (cache-features --features {needed})"
        )
    names = sorted({entry["case"] for entry in manifest["items"]})
    split = config["validation"]
    training_cases, validation_cases = split_cases(names, split["fraction"], split["seed"])
    prompts = config["prompts"]
    sampling = PropagationSampling(prompts["imperfect"], prompts["max_radius"])
    return (
        CachedPromptDataset(cache_dir, training_cases, sampling, flips=True, balance=config["group_balance"]),
        CachedPromptDataset(cache_dir, validation_cases, sampling, flips=False),
    )


def start_record(out: Path, config: dict, training: CachedPromptDataset, validation: CachedPromptDataset) -> dict:
    """OUTPUT/run.json: the split, the commit and the cache's settings, written when the run starts; a
    resumed run must find the same split and cache."""
    split = {"training": sorted({i.case for i in training.items})}
    split["validation"] = sorted({i.case for i in validation.items})
    manifest = read_manifest(expand_path(config["cache_dir"]))
    cache = {k: v for k, v in manifest.items() if k != "items"} | {"item_count": len(manifest["items"])}
    path = out / "run.json"
    if path.is_file():
        record = json.loads(path.read_text())
        if record["split"] != split or upgraded(record["cache"]) != cache:
            raise ConfigError(f"{out} holds a run of another split or cache; resume it with its own config")
        return record
    record = {"commit": git_commit(), "split": split, "cache": cache}
    path.write_text(json.dumps(record, indent=1) + "\n")
    return record


def run(config: dict, device: torch.device, resume: Path | None) -> Path:
    """Fine-tunes from a config (see configs/finetune-decoder.json); returns the path of best.pth.

    A new run (no `resume`) needs an output folder without checkpoints, so that the selection scores this
    run's checkpoints only."""
    out = Path(config["output_dir"])
    if resume is None and any(out.glob("step_*.pth")):
        raise ConfigError(f"{out} holds checkpoints of an earlier run: --resume one, or choose another output_dir")
    uses_amp(config, device)  # a bad amp value fails here, before any file is written
    training, validation = datasets(config)
    out.mkdir(parents=True, exist_ok=True)
    start_record(out, config, training, validation)
    model = start_model(config)
    initial = out / "step_000000.pth"
    if not initial.is_file():
        optimizer = torch.optim.AdamW(trainable_groups(model, config["param_groups"]))
        save_checkpoint(initial, model, optimizer, 0, 0, config)
    last = fit("finetune-decoder", model, training, decoder_losses(model, config["loss"]), config, device, resume)
    final = out / f"step_{config['steps']:06d}.pth"
    if not final.is_file():  # steps not a multiple of keep_every: the last weights are a candidate too
        shutil.copyfile(last, final)
    best, rows = select_checkpoint(model.cpu(), out, validation)
    for row in rows:
        print(f"step {row['step']}: validation mean Dice {row['mean']:.4f}")
    return best
