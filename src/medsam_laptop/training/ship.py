"""Shipping a finetune-decoder candidate as a model of its own: weights/<name>/ with its OpenVINO IR and a
manifest that says how it was made and how it scored.

The IR is `export_litemedsam` of the checkpoint (the encoder is LiteMedSAM's, unchanged, so its files are
byte-identical to weights/litemedsam's). manifest.json gains:
- "name": the folder's model name (its "model" stays the architecture, litemedsam);
- "training": the command, the checkpoint's step and config, the commit it was trained at and the
  validation split (`run.json` beside the checkpoint), the validation scores (`validation.csv`), and the
  feature cache's settings and item count;
- "evaluation": `training evaluate`'s evaluation.json (precision, both models' leaderboard averages and
  seconds per case, the shipping rule's verdict) and both summary tables.
"""

import csv
import json
import shutil
import tempfile
from pathlib import Path

import torch

from ..export import export_litemedsam
from .config import expand_path
from .feature_cache import read_manifest

SCORED = ("litemedsam", "candidate")  # the labels of `training evaluate --baseline`


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def training_record(checkpoint: Path) -> dict:
    """What made the checkpoint, read from it and from its output folder."""
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    config, out = saved["config"], checkpoint.parent
    cache = read_manifest(expand_path(config["cache_dir"]))
    run = json.loads((out / "run.json").read_text())
    return {
        "command": f"python -m medsam_laptop.training {config['stage']}",
        "step": int(saved["step"]),
        "config": config,
        "commit": run["commit"],
        "split": run["split"],
        "validation": [{k: float(v) for k, v in row.items()} for row in _rows(out / "validation.csv")],
        "cache": {k: v for k, v in cache.items() if k != "items"} | {"item_count": len(cache["items"])},
    }


def ship(checkpoint: Path, name: str, evaluation_dir: Path, weights_dir: Path) -> dict:
    """Writes weights_dir/name/ (IR and manifest) for a finetune-decoder checkpoint scored by `training
    evaluate` into evaluation_dir; returns the manifest."""
    evaluation = json.loads((evaluation_dir / "evaluation.json").read_text())
    if Path(evaluation["checkpoint"]).resolve() != checkpoint.resolve():
        raise ValueError(f"{evaluation_dir} scored {evaluation['checkpoint']}, not {checkpoint}")
    with tempfile.TemporaryDirectory(dir=weights_dir) as scratch:
        manifest = export_litemedsam(Path(scratch) / name, checkpoint)
        manifest["name"] = name
        manifest["training"] = training_record(checkpoint)
        summaries = {label: _rows(evaluation_dir / "metrics" / label / "summary.csv") for label in SCORED}
        manifest["evaluation"] = {k: v for k, v in evaluation.items() if k != "cases"}
        manifest["evaluation"] |= {"cases": len(evaluation["cases"]), "summaries": summaries}
        (Path(scratch) / name / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        target = weights_dir / name
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(Path(scratch) / name), target)
    return manifest
