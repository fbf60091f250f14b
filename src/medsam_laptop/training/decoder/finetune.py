"""A mask decoder trained on feature caches, LiteMedSAM's encoder frozen. config["model"] says which:

- "litemedsam": LiteMedSAM's own decoder, fine-tuned; "embedding" caches;
- "litemedsam-modality": the same with a learned modality token per group (`modality.py`), added to the
  prompt tokens; the generic token (all zeros) stands for names of no known group, and replaces the case's
  token with probability config["modality"]["generic_rate"] in training, so that path stays trained;
- "litemedsam-skip": Swin-LiteMedSAM's skip-feature decoder on TinyViT's stage outputs; "stages" caches.
  Its parts LiteMedSAM has start from LiteMedSAM, the others (`neck`, `output_upscaling1/2`) from a fresh
  initialisation drawn with config["seed"]. Prompts: the box alone.

The model starts from a LiteMedSAM checkpoint ("official": the bundled weights); config["param_groups"]
says which parts train. Each step decodes a batch of cached features with the prompts inference would
give (`cached_prompts.py`); loss: Dice + BCE + IoU-head regression, plus, with loss.anchor_weight > 0, an
L2 pull of the trained weights toward the starting ones (a guard against forgetting what the training data
does not show; the modality tokens are not pulled).

config["caches"] lists the feature caches (one per data folder). Model selection: the cached cases are
split by `validation` into training and validation cases (`cached_prompts.split_cases`: whole sources
held out where a group has several, by patient otherwise); `group_balance` repeats the items of small
modality groups (`cached_prompts.group_repeats`; 1 weighs the groups alike, as the leaderboard does). Every
`keep_every` steps, and at the last step, a checkpoint is kept; at the end, the starting weights and every
kept checkpoint are scored on the validation cases, each segmented whole by the pipeline's own 2D
segmentation and 3D propagation (`validation.py`). OUTPUT/validation.csv lists the scores and
OUTPUT/best.pth is the best of them. The evaluation set plays no part in that choice. OUTPUT/run.json
holds the split, the caches' settings and the commit the run started at.
"""

import csv
import json
import shutil
import subprocess
from pathlib import Path

import torch

from ...architectures import ARCHITECTURES
from ...modality import MODALITY_GROUPS
from ...modeling import build_litemedsam, init_from_litemedsam, load_state_dict, model_registry
from ...modeling.sam import LiteMedSAM, ModalityLiteMedSAM, SkipFeatureLiteMedSAM
from ...paths import checkout
from ..config import ConfigError, expand_path
from ..loop import Batch, StepLosses, fit, save_checkpoint, trainable_groups, uses_amp
from ..losses import bce_loss, dice_loss, iou_regression_loss
from ..models import teacher_checkpoint
from .cached_prompts import CachedPromptDataset, CacheSource, PropagationSampling, cached_case_names, split_cases
from .feature_cache import read_manifest
from .validation import volume_scores


def git_commit() -> str | None:
    """The checkout's HEAD commit, None outside a git checkout."""
    root = checkout()
    if root is None:
        return None
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True)
    return done.stdout.strip() or None


DecoderModel = LiteMedSAM | SkipFeatureLiteMedSAM
# the cache each trainable architecture trains on
MODEL_FEATURES = {name: arch.cached_features for name, arch in ARCHITECTURES.items() if arch.cached_features}
UNANCHORED = ("modality_tokens",)  # parameters LiteMedSAM lacks: not pulled toward the start


def model_name(config: dict) -> str:
    """config["model"]; raises ConfigError for a name of no decoder model, or none."""
    name = config.get("model")
    if name not in MODEL_FEATURES:
        raise ConfigError(f"model {name!r} is not one of {', '.join(MODEL_FEATURES)}")
    return name


def start_model(config: dict) -> DecoderModel:
    """config["model"] with LiteMedSAM's weights from config["checkpoint"], and the parts LiteMedSAM lacks
    drawn from config["seed"]."""
    torch.manual_seed(config["seed"])
    checkpoint = teacher_checkpoint(config["checkpoint"])
    name = model_name(config)
    if name == "litemedsam":
        return build_litemedsam(checkpoint)
    model = model_registry[name]()
    model.load_state_dict(init_from_litemedsam(name, load_state_dict(checkpoint)), strict=True)
    return model


def decode_cached(model: DecoderModel, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask logits (B, 1, 256, 256) and IoU (B, 1) for a batch of cached features, one box per item. The
    skip decoder fuses fs1-fs3 here, as its exported encoder does at inference. A modality-aware model takes
    batch["modality"], (B or 1, G + 1) one-hot."""
    if isinstance(model, ModalityLiteMedSAM):
        return model.decode(batch["embedding"], batch["box"], batch["modality"])
    if isinstance(model, LiteMedSAM):
        return model.decode(batch["embedding"], batch["box"])
    fused = model.mask_decoder.fuse_skips(batch["fs1"], batch["fs2"], batch["fs3"])
    return model.decode(batch["embedding"], batch["fs0"], fused, batch["box"])


def decoder_losses(model: DecoderModel, loss_config: dict) -> StepLosses:
    """Dice + BCE + IoU regression, weighted by loss_config; with "anchor_weight" > 0, plus that weight times
    the squared distance of the trained parameters (but `UNANCHORED`) to the model's weights now, the start
    of the run (taken here, before `fit` loads a checkpoint to resume, so a resumed run keeps the anchor)."""
    anchor = {}
    if loss_config["anchor_weight"]:
        anchor = {n: p.detach().clone() for n, p in model.named_parameters() if not n.startswith(UNANCHORED)}

    def step_losses(batch: Batch) -> dict[str, torch.Tensor]:
        logits, iou = decode_cached(model, batch)
        logits, target = logits[:, 0], batch["mask"]
        losses = {
            "dice": dice_loss(logits, target).mean(),
            "bce": bce_loss(logits, target).mean(),
            "iou": iou_regression_loss(iou[:, 0], logits, target).mean(),
        }
        loss = sum(loss_config[f"{name}_weight"] * value for name, value in losses.items())
        if loss_config["anchor_weight"]:
            trained = {n: p for n, p in model.named_parameters() if p.requires_grad and n in anchor}
            for n, p in trained.items():
                anchor[n] = anchor[n].to(p.device)  # once: `fit` moves the model after this was built
            distances = (((p - anchor[n]) ** 2).sum() for n, p in trained.items())
            losses["anchor"] = sum(distances, torch.zeros((), device=loss.device))
            loss = loss + loss_config["anchor_weight"] * losses["anchor"]
        return {"loss": loss, **losses}

    return step_losses


def validation_decoder(model: DecoderModel):
    """The model as `validation.volume_scores` calls it: a batch of features and boxes -> (logits, iou)."""
    return lambda batch: decode_cached(model, batch)


def select_checkpoint(
    model: DecoderModel, out: Path, sources: list[CacheSource], validation_cases: list[str]
) -> tuple[Path, list[dict]]:
    """Scores every OUTPUT/step_*.pth (step 0: the starting weights) on the whole validation cases with
    `model` as the vessel; writes OUTPUT/validation.csv and copies the best to OUTPUT/best.pth, which it
    returns."""
    rows = []
    modality = isinstance(model, ModalityLiteMedSAM)
    for path in sorted(out.glob("step_*.pth")):
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(checkpoint["model"], strict=True)
        model.eval()
        scores = volume_scores(sources, validation_cases, validation_decoder(model), modality)
        rows.append({"step": int(checkpoint["step"]), **scores})
    with open(out / "validation.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    best = max(rows, key=lambda row: row["mean"])
    shutil.copyfile(out / f"step_{best['step']:06d}.pth", out / "best.pth")
    return out / "best.pth", rows


def cache_sources(config: dict) -> list[CacheSource]:
    """The feature caches of config["caches"]; raises ConfigError unless each holds the model's kind."""
    sources = [CacheSource.open(expand_path(path)) for path in config["caches"]]
    needed = MODEL_FEATURES[model_name(config)]
    for source in sources:
        if source.features != needed:
            raise ConfigError(
                f"{source.cache_dir} holds {source.features} features; {model_name(config)} needs a cache of "
                f"{needed} (cache-features --features {needed})"
            )
    return sources


def datasets(config: dict) -> tuple[list[CacheSource], CachedPromptDataset, list[str]]:
    """(the caches, the training items with flipped copies repeated by group_balance, the validation cases)."""
    sources = cache_sources(config)
    split = config["validation"]
    training_cases, validation_cases = split_cases(cached_case_names(sources), split["fraction"], split["seed"])
    prompts = config["prompts"]
    sampling = PropagationSampling(prompts["imperfect"], prompts["max_radius"])
    modality = model_name(config) == "litemedsam-modality"
    training = CachedPromptDataset(
        sources,
        training_cases,
        sampling,
        flips=True,
        balance=config["group_balance"],
        modality_groups=MODALITY_GROUPS if modality else None,
        generic_rate=config["modality"]["generic_rate"] if modality else 0.0,
    )
    return sources, training, validation_cases


def start_record(out: Path, sources: list[CacheSource], training: CachedPromptDataset, validation: list[str]) -> dict:
    """OUTPUT/run.json: the split, the commit and the caches' settings, written when the run starts; a
    resumed run must find the same split and caches."""
    split = {"training": sorted({i.case for _, i in training.items}), "validation": sorted(validation)}
    caches = []
    for source in sources:
        manifest = read_manifest(source.cache_dir)
        caches.append({k: v for k, v in manifest.items() if k != "items"} | {"item_count": len(manifest["items"])})
    path = out / "run.json"
    if path.is_file():
        record = json.loads(path.read_text())
        if record["split"] != split or record["caches"] != caches:
            raise ConfigError(f"{out} holds a run of another split or caches; resume it with its own config")
        return record
    record = {"commit": git_commit(), "split": split, "caches": caches}
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
    sources, training, validation = datasets(config)
    out.mkdir(parents=True, exist_ok=True)
    start_record(out, sources, training, validation)
    model = start_model(config)
    initial = out / "step_000000.pth"
    if not initial.is_file():
        optimizer = torch.optim.AdamW(trainable_groups(model, config["param_groups"]))
        save_checkpoint(initial, model, optimizer, 0, 0, config)
    last = fit("finetune-decoder", model, training, decoder_losses(model, config["loss"]), config, device, resume)
    final = out / f"step_{config['steps']:06d}.pth"
    if not final.is_file():  # steps not a multiple of keep_every: the last weights are a candidate too
        shutil.copyfile(last, final)
    best, rows = select_checkpoint(model.cpu(), out, sources, validation)
    for row in rows:
        print(f"step {row['step']}: validation mean DSC {row['mean']:.4f}")
    return best
