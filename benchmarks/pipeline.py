"""Side-by-side running time, as the organizers measure it: one cold process (or container) per case.

    python benchmarks/pipeline.py [--per-group 2] [--image TEAM:latest] [--skip-baseline] [--precision P]
        [-o benchmarks/pipeline-CLASS.md]

Variants, each on the same cases in one run:
  a  the PyTorch reference in the organizers' manner (`predict --backend torch --baseline`:
     every slice re-encoded for every box, one decoder call per box, no cache);
  b  this pipeline (`predict`, OpenVINO), the compiled-model cache kept between cases as in the harness;
  c  with --image, the container through `evaluation time-eval` (the organizers' harness).
Prints per-modality medians, the ratios b/a and c/a, the efficiency timer's stage medians, peak memory
and the DSC/NSD of every variant against the ground truth, and writes them to a markdown file.
"""

import argparse
import csv
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO)]

from evaluation.compute_metrics import score_folder  # noqa: E402
from evaluation.leaderboard import modality_of, summarize  # noqa: E402
from medsam_laptop.paths import evaluation_cases  # noqa: E402
from medsam_laptop.precision import cpu_class, cpu_flags, describe_cpu, openvino_capabilities, resolve  # noqa: E402

STAGES = ("interpreter", "imports", "compile", "read", "preprocess", "encode", "decode", "postprocess", "write")


def pick_cases(imgs: Path, per_group: int, extra: list[str]) -> list[str]:
    by_group: dict[str, list[str]] = {}
    for path in sorted(imgs.glob("*.npz")):
        by_group.setdefault(modality_of(path.name), []).append(path.name)
    chosen = [name for names in by_group.values() for name in names[:per_group]]
    return sorted(set(chosen) | set(extra))


def run_process(args: list[str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (GiB) and exit code of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    return time.perf_counter() - start, usage.ru_maxrss / 2**20, os.waitstatus_to_exitcode(status)


def run_per_case(cases: list[str], imgs: Path, work: Path, extra_args: list[str]) -> dict[str, tuple[float, float]]:
    """One process per case, input folder holding that case only, output folder kept (as the harness)."""
    inputs, outputs = work / "inputs", work / "outputs"
    inputs.mkdir(parents=True)
    outputs.mkdir()
    results = {}
    for name in cases:
        shutil.copy(imgs / name, inputs / name)
        seconds, peak, code = run_process(
            [sys.executable, "-m", "medsam_laptop", "predict", "-i", str(inputs), "-o", str(outputs), *extra_args]
        )
        (inputs / name).unlink()
        results[name] = (seconds, peak)
        print(f"  {name}: {seconds:.2f} s, peak {peak:.2f} GiB, exit {code}", flush=True)
    return results


def run_container(cases: list[str], imgs: Path, work: Path, image: str) -> dict[str, tuple[float, float]]:
    cases_dir = work / "cases"
    cases_dir.mkdir(parents=True)
    for name in cases:
        shutil.copy(imgs / name, cases_dir / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "evaluation",
            "time-eval",
            "-i",
            str(cases_dir),
            "-o",
            str(work / "out"),
            "--image",
            image,
            "--team",
            "bench",
        ],
        cwd=REPO,
        check=False,
    )
    with open(work / "out" / "bench" / "bench_running_time.csv", newline="") as f:
        times = {row["CaseName"]: float(row["RunningTime"]) for row in csv.DictReader(f)}
    shutil.copytree(work / "out" / "bench", work / "outputs")
    return {name: (times.get(name, float("nan")), float("nan")) for name in cases}


def stage_medians(timer_csv: Path) -> dict[str, float]:
    with open(timer_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    return {s: statistics.median(float(r[s]) for r in rows) for s in STAGES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases-dir", type=Path, default=evaluation_cases())
    parser.add_argument("--per-group", type=int, default=2)
    parser.add_argument(
        "--extra",
        nargs="*",
        default=["3DBox_CT_totalseg-modelgt_example-ct-sm.npz"],
        help="cases added to the selection (default: the 40-box 3D CT case)",
    )
    parser.add_argument("--image", help="also time this container image with the organizers' harness")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--precision", default="auto", help="variant b's --precision (default: auto, as shipped)")
    parser.add_argument("-o", "--out", type=Path, help="default: benchmarks/pipeline-<CPU class>.md")
    args = parser.parse_args()

    imgs, gts = args.cases_dir / "imgs", args.cases_dir / "gts"
    cases = pick_cases(imgs, args.per_group, args.extra)
    configuration, how = resolve(args.precision, REPO / "weights" / "litemedsam")
    variants = {
        "b": (
            f"this pipeline (OpenVINO, --precision {args.precision}: {configuration.name}, {how})",
            ["--precision", args.precision],
        )
    }
    if not args.skip_baseline:
        variants = {"a": ("PyTorch reference, organizers' manner", ["--backend", "torch", "--baseline"]), **variants}
    results, scores, stages = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for key, (label, extra) in variants.items():
            print(f"{key}: {label}", flush=True)
            results[key] = run_per_case(cases, imgs, Path(tmp, key), extra)
            stages[key] = stage_medians(Path(tmp, key, "outputs", "efficiency_timer.csv"))
        if args.image:
            print(f"c: container {args.image} (time-eval)", flush=True)
            variants["c"] = (f"container {args.image}, organizers' harness", [])
            results["c"] = run_container(cases, imgs, Path(tmp, "c"), args.image)
        for key in variants:
            scored = score_folder(Path(tmp, key, "outputs"), gts, cases=cases)
            scores[key] = {r.case: r for r in scored}
    report = render(cases, variants, results, scores, stages)
    out = args.out or REPO / "benchmarks" / f"pipeline-{cpu_class(openvino_capabilities(), cpu_flags())}.md"
    out.write_text(report)
    print(report)


def _table_head(title: str, columns: list[str]) -> list[str]:
    """A section heading, then the header and separator rows of its markdown table."""
    return ["", f"## {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]


def render(cases, variants, results, scores, stages) -> str:
    ratio_keys = [k for k in variants if k != "a" and "a" in variants]
    lines = [
        "# Benchmarks",
        "",
        f"CPU: {describe_cpu(openvino_capabilities(), cpu_flags())}; Python {platform.python_version()}. "
        f"Produced by `python {' '.join(sys.argv)}` on {time.strftime('%Y-%m-%d')}; every variant ran on the "
        f"same {len(cases)} cases, one cold process (or container) per case, in one run.",
        "",
        "Variants: " + "; ".join(f"**{k}** {v[0]}" for k, v in variants.items()) + ".",
    ]
    lines += _table_head(
        "Running time per case (median seconds per modality group)",
        ["group", "cases", *variants, *(f"{k}/a" for k in ratio_keys)],
    )
    groups = sorted({modality_of(c) for c in cases})
    for group in groups + ["all 2D", "all 3D"]:
        members = [c for c in cases if modality_of(c) == group or group == f"all {c[:2]}"]
        if not members:  # e.g. "all 2D" when only 3D cases were chosen
            continue
        med = {k: statistics.median(results[k][c][0] for c in members) for k in variants}
        ratios = [f"{med[k] / med['a']:.3f}" for k in ratio_keys]
        lines.append(
            f"| {group} | {len(members)} | "
            + " | ".join(f"{med[k]:.2f}" for k in variants)
            + " | "
            + " | ".join(ratios)
            + " |"
        )
    lines += _table_head(
        "Per case (seconds; peak resident memory of the process in GiB)",
        ["case", *(f"{k} {unit}" for k in variants for unit in ("s", "GiB"))],
    )
    for c in cases:
        cells = [
            f"{results[k][c][0]:.2f} | " + ("—" if results[k][c][1] != results[k][c][1] else f"{results[k][c][1]:.2f}")
            for k in variants
        ]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    lines += _table_head("Efficiency timer: median seconds per stage", ["variant", *STAGES])
    for k, med in stages.items():
        lines.append(f"| {k} | " + " | ".join(f"{med[s]:.3f}" for s in STAGES) + " |")
    lines += _table_head("Accuracy against the ground truth (DSC / NSD, mean of group means)", ["group", *variants])
    summaries = {k: {r.group: r for r in summarize((c, s.dsc, s.nsd) for c, s in scores[k].items())} for k in variants}
    for group in next(iter(summaries.values())):
        lines.append(
            f"| {group} | "
            + " | ".join(f"{summaries[k][group].dsc:.4f} / {summaries[k][group].nsd:.4f}" for k in variants)
            + " |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
