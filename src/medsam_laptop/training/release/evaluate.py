"""The final check of trained checkpoints: export them, segment evaluation cases with each and with the
bundled LiteMedSAM in one run, score them, and apply the shipping rule to each.

Each candidate is exported by the project's own command line (`python -m medsam_laptop export --checkpoint`
for the LiteMedSAM family, `import-checkpoint` for skip-feature decoders) into OUT/weights/<label>, the
label being the name of the checkpoint's training folder. Then every case is segmented by every model in
turn, in this process, with the pipeline's own engine (OpenVINO, at one precision), `segment_2d` and
`segment_3d`. Models with the same encoder bytes share its outputs: each slice is encoded once per case and
the encoder's seconds are charged to every model that shares them, so each model's efficiency timer row
holds what that model alone would spend on the case (start-up aside). The masks are those `predict` writes.
Scoring is `python -m evaluation compute-metrics`. Segmentations and metrics are under OUT/segs/<label>
and OUT/metrics/<label>; OUT/evaluation.json holds each model's leaderboard average (the mean of the
modality groups' DSC and NSD), its seconds per case and, for each candidate, the shipping rule's verdict
(`rule.py`).
"""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from evaluation.leaderboard import OVERALL

from ...architectures import ARCHITECTURES, OFFICIAL_MODEL
from ...engines.contract import Engine, Features
from ...engines.openvino_engine import OpenVINOEngine
from ...inference.segment import segment_2d, segment_3d
from ...inference.timer import StageTimer, append_rows, case_row
from ...io.case_files import list_cases
from ...io.cases import read_case, write_segs
from ...io.checkpoints import sha256_of
from ...paths import checkout, default_weights_dir
from .rule import decide, read_summary, seconds_per_case


class EvaluateError(Exception):
    """A step of the evaluation that failed (an export, the scoring), or checkpoints it cannot tell apart."""


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


OFFICIAL = OFFICIAL_MODEL  # the label of the bundled model, scored beside the candidates


def architecture(config: dict) -> str:
    """The architecture a training config makes: its model (finetune-decoder), else Swin-LiteMedSAM."""
    return config["model"] if config["stage"] == "finetune-decoder" else "swin-litemedsam"


class SharedEncoder:
    """One case's encoder outputs, computed once by the first engine asked and shared by the others;
    `seconds`: the encoder time of the case."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.outputs, self.seconds = engine, {}, 0.0

    def encode(self, image: np.ndarray) -> Features:
        key = image.tobytes()
        if key not in self.outputs:
            timer = StageTimer()
            with timer.stage("encode"):
                self.outputs[key] = self.engine.encode(image)
            self.seconds += timer.seconds["encode"]
        return self.outputs[key]


class SharingEngine:
    """A model's engine whose encoder calls go to a `SharedEncoder`."""

    def __init__(self, engine: Engine, shared: SharedEncoder) -> None:
        self.engine, self.shared, self.prompt_mode = engine, shared, engine.prompt_mode

    def for_case(self, case: str) -> "SharingEngine":
        return SharingEngine(self.engine.for_case(case), self.shared)

    def encode(self, image: np.ndarray) -> Features:
        return self.shared.encode(image)

    def decode(self, features, boxes, points=None, scribbles=None) -> np.ndarray:
        return self.engine.decode(features, boxes, points, scribbles)


def encoder_digest(model_dir: Path) -> str:
    return sha256_of(model_dir / "encoder.bin")


def segment_all(models: dict[str, Path], inputs: Path, out: Path, precision: str, threads: int) -> None:
    """Segments every case of `inputs` with every model ({label: model folder}) into OUT/segs/<label>, with
    an efficiency timer CSV each (see the module docstring for the shared encoder)."""
    engines = {label: OpenVINOEngine(folder, precision, threads) for label, folder in models.items()}
    digests = {label: encoder_digest(folder) for label, folder in models.items()}
    for label in models:
        (out / "segs" / label).mkdir(parents=True, exist_ok=True)
    for path in list_cases(inputs):
        read_timer = StageTimer()
        with read_timer.stage("read"):
            case = read_case(path)
        segment_case = segment_3d if case.is_3d else segment_2d
        shared: dict[str, SharedEncoder] = {}
        for label, engine in engines.items():
            encoder = shared.setdefault(digests[label], SharedEncoder(engine))
            timer = StageTimer()
            timer.seconds["read"] = read_timer.seconds["read"]
            engine_for_case = SharingEngine(engine, encoder).for_case(path.name)
            segs = segment_case(engine_for_case, case.image, case.boxes, timer, case=path.name)
            timer.seconds["encode"] = encoder.seconds  # the case's whole encoder time, whoever computed it
            with timer.stage("write"):
                write_segs(out / "segs" / label, path.name, segs)
            row = case_row(path.name, "ok", f"{models[label].name} {precision}", timer, {})
            append_rows(out / "segs" / label / "efficiency_timer.csv", [row])
        print(f"{path.name}: segmented by {len(engines)} models", file=sys.stderr, flush=True)


def score(label: str, gts: Path, out: Path) -> dict[str, float]:
    """compute-metrics over OUT/segs/LABEL into OUT/metrics/LABEL; returns the leaderboard average and the
    mean time per case {"dsc", "nsd", "seconds"}."""
    segs, metrics = out / "segs" / label, out / "metrics" / label
    scoring = ["evaluation", "compute-metrics", "-s", str(segs), "-g", str(gts), "-o", str(metrics), "-q"]
    if run_step(scoring) not in (0, 1):  # 1: a seg missing, scored 0 in the tables
        raise EvaluateError(f"compute-metrics for {label} failed")
    return leaderboard_average(metrics / "summary.csv") | {"seconds": seconds_per_case(segs / "efficiency_timer.csv")}


def evaluate(
    checkpoints: list[Path], out: Path, cases_dir: Path, limit: int | None, threads: int, precision: str = "f32"
) -> dict:
    """Exports the checkpoints, segments and scores them and the bundled LiteMedSAM at `precision` in one
    run; writes and returns OUT/evaluation.json's content."""
    checkpoints, out = [c.resolve() for c in checkpoints], out.resolve()  # the steps run in another directory
    labels = [c.parent.name for c in checkpoints]
    if len(set(labels)) != len(labels) or OFFICIAL in labels:
        raise EvaluateError(f"the checkpoints' folders name them, and must differ (and not be {OFFICIAL}): {labels}")
    for earlier in ("weights", "inputs", "gts", "segs", "metrics"):  # a reused OUT scores this run only
        shutil.rmtree(out / earlier, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    models = {OFFICIAL: default_weights_dir() / OFFICIAL}
    result: dict = {"precision": precision, "candidates": {}}
    for label, checkpoint in zip(labels, checkpoints):
        model = architecture(torch.load(checkpoint, map_location="cpu", weights_only=True)["config"])
        weights = out / "weights" / label
        if run_step(
            ["medsam_laptop", *ARCHITECTURES[model].export_command(model, checkpoint), "--weights-dir", str(weights)]
        ):
            raise EvaluateError(f"could not export {checkpoint} as {model}")
        models[label] = weights / model
        result["candidates"][label] = {"checkpoint": str(checkpoint), "checkpoint_sha256": sha256_of(checkpoint)}
        result["candidates"][label]["model"] = model
    names = select_cases(cases_dir, limit)
    inputs, gts = link_cases(cases_dir, names, out)
    result["cases"] = names
    segment_all(models, inputs, out, precision, threads)
    result[OFFICIAL] = score(OFFICIAL, gts, out)
    official = read_summary(out / "metrics" / OFFICIAL / "summary.csv")
    for label, record in result["candidates"].items():
        record |= score(label, gts, out)
        summary = read_summary(out / "metrics" / label / "summary.csv")
        verdict = decide(official, summary, result[OFFICIAL]["seconds"], record["seconds"])
        record["ship"] = {"decision": verdict.decision, "reasons": list(verdict.reasons)}
    (out / "evaluation.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
