"""The final check of a trained checkpoint: export it, segment evaluation cases, score them.

Each step is the project's own command line, run as a subprocess: the export to OpenVINO IR under
OUT/weights (`python -m medsam_laptop import-checkpoint` for a Swin-LiteMedSAM or litemedsam-skip
checkpoint, `export --checkpoint` for a LiteMedSAM one), `python -m medsam_laptop predict` at one precision,
`python -m evaluation compute-metrics`; with `baseline`, LiteMedSAM's bundled IR is scored on the same
cases at the same precision. OUT/evaluation.json holds each model's leaderboard average (the mean of the
modality groups' mean DSC and NSD) and seconds per case and, with a baseline, the shipping rule's verdict
(`shipping.py`: default, selectable or no, with the reasons). Segmentations and metrics are under
OUT/segs/<label> and OUT/metrics/<label>, label "candidate" or "litemedsam".
"""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from evaluation.leaderboard import OVERALL

from ..checkpoints import sha256_of
from ..paths import checkout, default_weights_dir
from .shipping import decide, read_summary, seconds_per_case


def select_cases(cases_dir: Path, limit: int | None) -> list[str]:
    """File names of imgs/*.npz; with `limit`, that many spread evenly over the sorted list."""
    names = sorted(p.name for p in (cases_dir / "imgs").glob("*.npz"))
    if limit is not None and limit < len(names):
        names = [names[i] for i in sorted(set(np.linspace(0, len(names) - 1, limit).round().astype(int)))]
    return names


def link_cases(cases_dir: Path, names: list[str], out: Path) -> tuple[Path, Path]:
    """OUT/inputs and OUT/gts holding symlinks to the chosen cases and their ground truth."""
    folders = out / "inputs", out / "gts"
    for folder, source in zip(folders, ("imgs", "gts")):
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            link = folder / name
            if not link.exists():
                link.symlink_to((cases_dir / source / name).resolve())
    return folders


def run_step(args: list[str]) -> int:
    """Runs `python -m ARGS...` in the checkout (installed: in the working directory); returns its exit status."""
    print("+ python -m " + " ".join(args), file=sys.stderr, flush=True)
    return subprocess.run([sys.executable, "-m", *args], cwd=checkout()).returncode


def leaderboard_average(summary_csv: Path) -> dict[str, float]:
    """{"dsc", "nsd"}: the mean of group means from compute-metrics' summary.csv."""
    with open(summary_csv, newline="") as f:
        row = next(row for row in csv.DictReader(f) if row["group"] == OVERALL)
    return {"dsc": float(row["dsc"]), "nsd": float(row["nsd"])}


def score(
    label: str, model: str, weights_dir: Path, inputs: Path, gts: Path, out: Path, precision: str, threads: int
) -> dict[str, float]:
    """Segments `inputs` with `model` into OUT/segs/LABEL, scores into OUT/metrics/LABEL; returns
    the leaderboard average and the mean time per case {"dsc", "nsd", "seconds"}."""
    segs, metrics = out / "segs" / label, out / "metrics" / label
    predict = ["medsam_laptop", "predict", "-i", str(inputs), "-o", str(segs), "--model", model]
    predict += ["--weights-dir", str(weights_dir), "--precision", precision]
    predict += ["--threads", str(threads)] if threads else []
    if run_step(predict) not in (0, 1):  # 1: some case failed, which scores 0 below
        raise RuntimeError(f"predict with {model} could not run")
    scoring = ["evaluation", "compute-metrics", "-s", str(segs), "-g", str(gts), "-o", str(metrics), "-q"]
    if run_step(scoring) not in (0, 1):  # 1: a seg missing, scored 0 in the tables
        raise RuntimeError(f"compute-metrics for {model} failed")
    return leaderboard_average(metrics / "summary.csv") | {"seconds": seconds_per_case(segs / "efficiency_timer.csv")}


EXPORT_COMMANDS = {  # architecture of the checkpoint -> the command that writes its IR into a weights folder
    "swin-litemedsam": lambda checkpoint: ["import-checkpoint", str(checkpoint)],
    "litemedsam-skip": lambda checkpoint: ["import-checkpoint", "--model", "litemedsam-skip", str(checkpoint)],
    "litemedsam": lambda checkpoint: ["export", "--model", "litemedsam", "--checkpoint", str(checkpoint)],
}


def evaluate(
    checkpoint: Path,
    out: Path,
    cases_dir: Path,
    limit: int | None,
    threads: int,
    baseline: bool,
    model: str = "swin-litemedsam",
    precision: str = "f32",
) -> dict:
    """Exports a `model` checkpoint, segments and scores at `precision`; writes and returns
    OUT/evaluation.json's content."""
    checkpoint, out = checkpoint.resolve(), out.resolve()  # the steps run in another working directory
    for earlier in ("weights", "inputs", "gts", "segs", "metrics"):  # a reused OUT scores this run only
        shutil.rmtree(out / earlier, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / "weights"
    if run_step(["medsam_laptop", *EXPORT_COMMANDS[model](checkpoint), "--weights-dir", str(weights)]):
        raise RuntimeError(f"could not export {checkpoint} as {model}")
    names = select_cases(cases_dir, limit)
    inputs, gts = link_cases(cases_dir, names, out)
    result: dict = {"checkpoint": str(checkpoint), "checkpoint_sha256": sha256_of(checkpoint), "model": model}
    result |= {"precision": precision, "cases": names}
    result["candidate"] = score("candidate", model, weights, inputs, gts, out, precision, threads)
    if baseline:
        official = default_weights_dir()
        result["litemedsam"] = score("litemedsam", "litemedsam", official, inputs, gts, out, precision, threads)
        summaries = [read_summary(out / "metrics" / m / "summary.csv") for m in ("litemedsam", "candidate")]
        verdict = decide(*summaries, result["litemedsam"]["seconds"], result["candidate"]["seconds"])
        result["ship"] = {"decision": verdict.decision, "reasons": list(verdict.reasons)}
    (out / "evaluation.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
