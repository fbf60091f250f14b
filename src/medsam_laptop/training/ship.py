"""Shipping a finetune-decoder candidate as a model of its own: weights/<name>/ with its OpenVINO IR and a
manifest that says how it was made and how it scored.

The IR is the export of the checkpoint's architecture (config["model"]): `export_litemedsam` for
litemedsam, whose encoder files are then byte-identical to weights/litemedsam's; `export_skip_decoder_model`
for litemedsam-skip, whose encoder graph adds the skip fusion to LiteMedSAM's TinyViT. manifest.json gains:
- "name": the folder's model name (its "model" stays the architecture);
- "training": the command, the checkpoint's step and config, the commit it was trained at and the
  validation split (`run.json` beside the checkpoint), the validation scores (`validation.csv`), and the
  feature cache's settings and item count;
- "evaluation": `training evaluate`'s evaluation.json (precision, both models' leaderboard averages and
  seconds per case, the shipping rule's verdict) and both summary tables.
"""

import csv
import json
import re
import shutil
import tempfile
from pathlib import Path

import torch

from ..checkpoints import official_litemedsam_checkpoint, sha256_of
from ..export import export_litemedsam, export_skip_decoder_model
from ..modeling import load_state_dict
from .models import ENCODER_PREFIX

SCORED = ("litemedsam", "candidate")  # the labels of `training evaluate --baseline`
RESERVED = ("litemedsam", "swin-litemedsam", "litemedsam-skip")  # folders the export commands write
NAME = re.compile(r"[a-z0-9][a-z0-9-]*")


class ShipError(ValueError):
    """A candidate that must not ship as asked; the message says why."""


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def training_record(checkpoint: Path) -> dict:
    """What made the checkpoint, read from it and from its output folder."""
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    config, out = saved["config"], checkpoint.parent
    run = json.loads((out / "run.json").read_text())
    return {
        "command": f"python -m medsam_laptop.training {config['stage']}",
        "step": int(saved["step"]),
        "config": config,
        "commit": run["commit"],
        "split": run["split"],
        "validation": [{k: float(v) for k, v in row.items()} for row in _rows(out / "validation.csv")],
        "cache": run["cache"],
    }


def check_shippable(name: str, evaluation: dict, checkpoint: Path, weights_dir: Path) -> None:
    """Raises ShipError unless the name is new or a model `ship` wrote, the evaluation scored this very
    checkpoint against LiteMedSAM, and the shipping rule lets it ship."""
    if not NAME.fullmatch(name) or name in RESERVED:
        raise ShipError(f"{name!r} cannot name a shipped model: lower-case letters, digits and -, not {RESERVED}")
    existing = weights_dir / name / "manifest.json"
    if (weights_dir / name).exists() and not (existing.is_file() and "training" in json.loads(existing.read_text())):
        raise ShipError(f"{weights_dir / name} exists and was not written by ship; choose another name")
    if evaluation.get("checkpoint_sha256") != sha256_of(checkpoint):
        raise ShipError(f"the evaluation scored {evaluation['checkpoint']} as it was then, not {checkpoint} as it is")
    if "ship" not in evaluation:
        raise ShipError("the evaluation has no shipping verdict: run evaluate with --baseline")
    if evaluation["ship"]["decision"] == "no":
        raise ShipError("the shipping rule says no: " + "; ".join(evaluation["ship"]["reasons"]))


def check_official_encoder(checkpoint: Path) -> None:
    """Raises ShipError unless the checkpoint's image encoder is the official LiteMedSAM's, the encoder
    whose stage outputs a "stages" cache holds."""
    official = load_state_dict(official_litemedsam_checkpoint())
    ours = load_state_dict(checkpoint)
    keys = [k for k in official if k.startswith(ENCODER_PREFIX)]
    if any(k not in ours or not torch.equal(ours[k], official[k]) for k in keys):
        raise ShipError(f"{checkpoint}'s encoder is not the official LiteMedSAM's, which the stage cache holds")


def ship(checkpoint: Path, name: str, evaluation_dir: Path, weights_dir: Path) -> dict:
    """Writes weights_dir/name/ (IR and manifest) for a finetune-decoder checkpoint scored by `training
    evaluate --baseline` into evaluation_dir; returns the manifest. Raises ShipError (see
    `check_shippable`, and an encoder other than the one whose outputs the decoder trained on)."""
    evaluation = json.loads((evaluation_dir / "evaluation.json").read_text())
    check_shippable(name, evaluation, checkpoint, weights_dir)
    record = training_record(checkpoint)
    architecture = record["config"].get("model", "litemedsam")  # configs before litemedsam-skip lack the key
    with tempfile.TemporaryDirectory(dir=weights_dir) as scratch:
        if architecture == "litemedsam":
            manifest = export_litemedsam(Path(scratch) / name, checkpoint)
            if manifest["files"]["encoder.bin"] != record["cache"]["encoder"]["sha256"]["encoder.bin"]:
                raise ShipError(f"{checkpoint}'s encoder is not the one the feature cache was made with")
        else:
            check_official_encoder(checkpoint)
            manifest = export_skip_decoder_model(Path(scratch) / name, checkpoint, architecture)
        manifest["name"] = name
        manifest["training"] = record
        summaries = {label: _rows(evaluation_dir / "metrics" / label / "summary.csv") for label in SCORED}
        manifest["evaluation"] = {k: v for k, v in evaluation.items() if k != "cases"}
        manifest["evaluation"] |= {"cases": len(evaluation["cases"]), "summaries": summaries}
        (Path(scratch) / name / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        target = weights_dir / name
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(Path(scratch) / name), target)
    return manifest
