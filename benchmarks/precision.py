"""Precision choice: encoder and decoder speed of every precision this CPU runs, side by side in one
process, and the accuracy gate for each against f32 on the evaluation cases.

    python benchmarks/precision.py [--rounds 10] [--accuracy] [--f32-metrics CSV] [-o benchmarks/precision.md]

Speed: every engine is compiled first, then the rounds alternate between them (one encoder call and one
8-box decoder call each), so a slower stretch of the machine hits all precisions alike.
Accuracy (--accuracy): `predict` on every case of --cases-dir for each precision but f32, scored with
`evaluation`; the gate is a drop in mean DSC (mean of group means) of at most 0.003 against f32 and of
at most 0.01 in every modality group. f32's scores come from its own run, or from --f32-metrics (a
compute-metrics CSV of f32 masks, e.g. the PyTorch reference's, which f32 OpenVINO reproduces).
"""
import argparse
import csv
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO)]

import numpy as np  # noqa: E402
import openvino as ov  # noqa: E402

from evaluation.compute_metrics import score_folder  # noqa: E402
from evaluation.leaderboard import OVERALL, summarize  # noqa: E402
from medsam_laptop.engine import OpenVINOEngine, encoder_file_for  # noqa: E402
from medsam_laptop.predict import PredictOptions, run  # noqa: E402

SHARED = Path(os.environ.get("MEDSAM_SHARED", REPO.parent / "shared"))
GATE_OVERALL, GATE_GROUP = 0.003, 0.01


def available_precisions(model_dir: Path, capabilities: list[str]) -> list[str]:
    """f32, then whatever else this CPU (its OpenVINO capabilities) and model folder can run."""
    found = ["f32"]
    found += [p for p, cap in (("bf16", "BF16"), ("f16", "FP16")) if cap in capabilities]
    if (model_dir / encoder_file_for("int8")).is_file():
        found.append("int8")
    return found


def time_engines(model_dir: Path, precisions: list[str], rounds: int) -> dict[str, dict[str, float]]:
    """Median encoder seconds and decoder seconds per box (8 boxes a call) per precision."""
    rng = np.random.default_rng(0)
    image = rng.random((1, 3, 256, 256), dtype=np.float32)
    corners = rng.uniform(0, 180, size=(8, 2))
    boxes = np.concatenate([corners, corners + 60], axis=1).astype(np.float32)
    engines, features, times = {}, {}, {}
    for p in precisions:
        start = time.perf_counter()
        engines[p] = OpenVINOEngine(model_dir, p, cache_dir=None)
        times[p] = {"compile": time.perf_counter() - start, "encode": [], "decode": []}
        features[p] = engines[p].encode(image)  # warm-up, and the decoder's input
        engines[p].decode(features[p], boxes)
    for _ in range(rounds):
        for p, engine in engines.items():
            start = time.perf_counter()
            engine.encode(image)
            middle = time.perf_counter()
            engine.decode(features[p], boxes)
            times[p]["encode"].append(middle - start)
            times[p]["decode"].append((time.perf_counter() - middle) / len(boxes))
    return {
        p: {"compile": t["compile"], "encode": statistics.median(t["encode"]), "decode": statistics.median(t["decode"])}
        for p, t in times.items()
    }


def read_metrics(path: Path) -> list[tuple[str, float, float]]:
    with open(path, newline="") as f:
        return [(r["case"], float(r["dsc"] or "nan"), float(r["nsd"] or "nan")) for r in csv.DictReader(f)]


def scores_of(precision: str, cases_dir: Path, model: str, work: Path) -> tuple[list[tuple[str, float, float]], float]:
    """(case, DSC, NSD) of `predict --precision` on every case, and the run's wall seconds."""
    out = work / precision
    options = PredictOptions(
        cases_dir / "imgs", out, model=model, precision=precision, cache_dir=None,
        weights_dir=REPO / "weights", timing_csv=out / "efficiency_timer.csv",
    )
    start = time.perf_counter()
    if run(options, start):
        raise SystemExit(f"predict --precision {precision} failed on some case")
    seconds = time.perf_counter() - start
    return [(r.case, r.dsc, r.nsd) for r in score_folder(out, cases_dir / "gts")], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="litemedsam")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--accuracy", action="store_true", help="also run the accuracy gate (slow: every case)")
    parser.add_argument("--cases-dir", type=Path, default=SHARED / "data" / "cvpr24-format")
    parser.add_argument("--f32-metrics", type=Path, help="f32 scores from this CSV instead of an f32 run")
    parser.add_argument("-o", "--out", type=Path, default=REPO / "benchmarks" / "precision.md")
    args = parser.parse_args()

    model_dir = REPO / "weights" / args.model
    capabilities = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    precisions = available_precisions(model_dir, capabilities)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    lines = [
        "# Precision", "",
        f"Machine: {cpu}, {os.cpu_count()} cores; OpenVINO {ov.__version__}, CPU capabilities "
        f"{', '.join(capabilities)}. Produced by `python {' '.join(sys.argv)}` on {time.strftime('%Y-%m-%d')}.", "",
        f"## Speed ({args.model}, one process, {args.rounds} alternating rounds, medians)", "",
        "| precision | compile s (no cache) | encoder s | decoder s per box | encoder vs f32 |", "|---|---|---|---|---|",
    ]
    speed = time_engines(model_dir, precisions, args.rounds)
    for p, t in speed.items():
        lines.append(f"| {p} | {t['compile']:.3f} | {t['encode']:.3f} | {t['decode']:.4f} | "
                     f"{t['encode'] / speed['f32']['encode']:.3f} |")
    print("\n".join(lines), flush=True)

    if args.accuracy:
        with tempfile.TemporaryDirectory() as tmp:
            results, seconds = {}, {}
            if args.f32_metrics:
                results["f32"] = read_metrics(args.f32_metrics)
            for p in precisions:
                if p not in results:
                    print(f"accuracy: predict --precision {p} on {args.cases_dir}", flush=True)
                    results[p], seconds[p] = scores_of(p, args.cases_dir, args.model, Path(tmp))
        groups = {p: {row.group: row for row in summarize(scores)} for p, scores in results.items()}
        source = f"`{args.f32_metrics}`" if args.f32_metrics else "its own run"
        lines += [
            "", f"## Accuracy gate on {args.cases_dir.name} (DSC / NSD, mean of group means; f32 from {source})", "",
            "| group | " + " | ".join(groups) + " | " + " | ".join(f"{p} DSC drop" for p in groups if p != "f32") + " |",
            "|---|" + "---|" * (2 * len(groups) - 1),
        ]
        for group, base in groups["f32"].items():
            cells = [f"{groups[p][group].dsc:.4f} / {groups[p][group].nsd:.4f}" for p in groups]
            drops = [f"{base.dsc - groups[p][group].dsc:+.4f}" for p in groups if p != "f32"]
            lines.append(f"| {group} | " + " | ".join(cells) + " | " + " | ".join(drops) + " |")
        lines.append("")
        for p in groups:
            if p == "f32":
                continue
            drops = {g: groups["f32"][g].dsc - groups[p][g].dsc for g in groups["f32"]}
            worst = max((g for g in drops if g != OVERALL), key=drops.get)
            passed = drops[OVERALL] <= GATE_OVERALL and drops[worst] <= GATE_GROUP
            run_time = f", whole run {seconds[p]:.0f} s" if p in seconds else ""
            lines.append(f"- {p}: overall drop {drops[OVERALL]:+.4f} (gate {GATE_OVERALL}), worst group {worst} "
                         f"{drops[worst]:+.4f} (gate {GATE_GROUP}): **{'passes' if passed else 'fails'}**{run_time}.")
    report = "\n".join(lines) + "\n"
    args.out.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
