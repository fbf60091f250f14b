"""Shipping a finetune-decoder candidate as a model of its own: weights/<name>/ with its OpenVINO IR and a
manifest that says how it was made and how it scored.

The IR is the export of the checkpoint's architecture (config["model"]): `export_litemedsam` for the
LiteMedSAM family (litemedsam, litemedsam-modality), whose encoder files are then byte-identical to
weights/litemedsam's; `export_skip_decoder_model` for litemedsam-skip, whose encoder graph adds the skip
fusion to LiteMedSAM's TinyViT. manifest.json gains:
- "name": the folder's model name (its "model" stays the architecture);
- "training": the command, the checkpoint's step and config, the commit it was trained at and the
  validation split (`run.json` beside the checkpoint), the validation scores (`validation.csv`), and the
  feature caches' settings and item counts;
- "evaluation": what `training evaluate` recorded of this checkpoint and of LiteMedSAM in the same run
  (precision, leaderboard averages, seconds per case, the shipping rule's verdict) and both summary tables.
"""

import csv
import json
import re
import shutil
import tempfile
from pathlib import Path

import torch

from ...architectures import ARCHITECTURES, LITEMEDSAM_GRAPHS
from ...export.ir import export_litemedsam, export_skip_decoder_model
from ...io.checkpoints import official_litemedsam_checkpoint, sha256_of
from ...modeling import load_state_dict
from ..models import ENCODER_PREFIX
from .evaluate import OFFICIAL, architecture

RESERVED = tuple(ARCHITECTURES)  # the folders the export commands write
NAME = re.compile(r"[a-z0-9][a-z0-9-]*")


class ShipError(Exception):
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
        "caches": run["caches"],
    }


def scored_candidate(evaluation: dict, checkpoint: Path) -> str:
    """The label under which the evaluation scored this very checkpoint; ShipError when it scored none."""
    digest = sha256_of(checkpoint)
    for label, record in evaluation["candidates"].items():
        if record["checkpoint_sha256"] == digest:
            return label
    raise ShipError(f"the evaluation scored no checkpoint with the bytes of {checkpoint} as it is now")


def check_shippable(name: str, evaluation: dict, checkpoint: Path, weights_dir: Path) -> str:
    """The checkpoint's label in the evaluation. Raises ShipError unless the name is new or a model `ship`
    wrote, the evaluation scored this very checkpoint against LiteMedSAM, and the shipping rule lets it ship."""
    if not NAME.fullmatch(name) or name in RESERVED:
        raise ShipError(f"{name!r} cannot name a shipped model: lower-case letters, digits and -, not {RESERVED}")
    existing = weights_dir / name / "manifest.json"
    if (weights_dir / name).exists() and not (existing.is_file() and "training" in json.loads(existing.read_text())):
        raise ShipError(f"{weights_dir / name} exists and was not written by ship; choose another name")
    label = scored_candidate(evaluation, checkpoint)
    verdict = evaluation["candidates"][label]["ship"]
    if verdict["decision"] == "no":
        raise ShipError("the shipping rule says no: " + "; ".join(verdict["reasons"]))
    return label


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
    evaluate` into evaluation_dir; returns the manifest. Raises ShipError (see `check_shippable`; an
    encoder other than the one whose outputs the decoder trained on; an evaluation or a training run that
    lacks what `training evaluate` and `finetune-decoder` write)."""
    try:
        return _ship(checkpoint, name, evaluation_dir, weights_dir)
    except (KeyError, json.JSONDecodeError) as err:
        raise ShipError(
            f"{evaluation_dir} or {checkpoint.parent} is not as evaluate and finetune-decoder write it: {err!r}"
        ) from None


def _ship(checkpoint: Path, name: str, evaluation_dir: Path, weights_dir: Path) -> dict:
    evaluation = json.loads((evaluation_dir / "evaluation.json").read_text())
    label = check_shippable(name, evaluation, checkpoint, weights_dir)
    record = training_record(checkpoint)
    model = architecture(record["config"])
    with tempfile.TemporaryDirectory(dir=weights_dir) as scratch:
        if ARCHITECTURES[model].graphs == LITEMEDSAM_GRAPHS:
            manifest = export_litemedsam(Path(scratch) / name, checkpoint, model)
            encoders = {cache["encoder"]["sha256"]["encoder.bin"] for cache in record["caches"]}
            if encoders != {manifest["files"]["encoder.bin"]}:
                raise ShipError(f"{checkpoint}'s encoder is not the one the feature caches were made with")
        else:
            check_official_encoder(checkpoint)
            manifest = export_skip_decoder_model(Path(scratch) / name, checkpoint, model)
        manifest["name"] = name
        manifest["training"] = record
        summaries = {scored: _rows(evaluation_dir / "metrics" / scored / "summary.csv") for scored in (OFFICIAL, label)}
        manifest["evaluation"] = {"precision": evaluation["precision"], "cases": len(evaluation["cases"])}
        manifest["evaluation"] |= {OFFICIAL: evaluation[OFFICIAL], "candidate": evaluation["candidates"][label]}
        manifest["evaluation"] |= {"ship": evaluation["candidates"][label]["ship"], "summaries": summaries}
        (Path(scratch) / name / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        target = weights_dir / name
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(Path(scratch) / name), target)
    return manifest
