"""Precision choice: encoder and decoder speed of precision configurations side by side in one process,
and the accuracy gate of each against f32 on the evaluation cases; optionally records the result for
`--precision auto`.

    python benchmarks/precision.py [--configurations f32 bf16-f32 int8-bf16 ...] [--rounds 10]
        [--accuracy] [--results DIR] [--f32-metrics CSV] [--record] [-o benchmarks/precision-CLASS.md]

Speed: every engine is compiled first, then the rounds alternate between them (one encoder call and one
8-box decoder call each), so a slower stretch of the machine hits all configurations alike.
Accuracy (--accuracy): `predict` on every case of --cases-dir for each configuration, scored with
`evaluation`; per-case scores go to --results/<configuration>-<digest of its graph files>.csv, and a
configuration whose CSV is there already is not run again (a stopped run resumes; new graphs run anew).
The gate: a drop in mean DSC (mean of group means) of at most 0.003 against f32 and of at most 0.01 in
every modality group. f32's scores come from
its own run, or from --f32-metrics (a compute-metrics CSV of f32 masks on the same cases).
--record (with --accuracy) writes this CPU class's entries into weights/<model>/precision.json.
"""

import argparse
import csv
import hashlib
import io
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO)]

import numpy as np  # noqa: E402
import openvino as ov  # noqa: E402

from evaluation.compute_metrics import score_folder  # noqa: E402
from evaluation.leaderboard import OVERALL, summarize  # noqa: E402
from medsam_laptop.engines.cpu import (  # noqa: E402
    REPORTED_FLAGS,
    cpu_class,
    cpu_flags,
    cpu_model,
    describe_cpu,
    openvino_capabilities,
)
from medsam_laptop.engines.manifest import MISSING_GRAPH_HINTS, decoder_specs  # noqa: E402
from medsam_laptop.engines.openvino_engine import OpenVINOEngine  # noqa: E402
from medsam_laptop.engines.precision import INT8_FILES, RECORD_FILE, SHORTHANDS, Configuration  # noqa: E402
from medsam_laptop.inference.predict import PredictOptions, run  # noqa: E402
from medsam_laptop.io.atomic import write_atomically  # noqa: E402
from medsam_laptop.io.checkpoints import sha256_of  # noqa: E402
from medsam_laptop.paths import evaluation_cases  # noqa: E402

GATE_OVERALL, GATE_GROUP = 0.003, 0.01


def default_configurations(model_dir: Path, capabilities: set[str]) -> list[str]:
    """f32, then what this CPU (its OpenVINO capabilities) and model folder can run: the bf16 and f16
    shorthands, int8, and int8+bf16-f32."""
    found = ["f32-f32"]
    found += [SHORTHANDS[p] for p, cap in (("bf16", "BF16"), ("f16", "FP16")) if cap in capabilities]
    if (model_dir / Configuration.parse("int8").encoder_file).is_file():
        found.append(SHORTHANDS["int8"])
        if "BF16" in capabilities:
            found.append("int8+bf16-f32")
    return found


def time_engines(model_dir: Path, configurations: list[str], rounds: int) -> dict[str, dict[str, float]]:
    """Median encoder seconds and decoder seconds per box (8 boxes a call) per configuration."""
    rng = np.random.default_rng(0)
    image = rng.random((1, 3, 256, 256), dtype=np.float32)
    corners = rng.uniform(0, 180, size=(8, 2))
    boxes = np.concatenate([corners, corners + 60], axis=1).astype(np.float32)
    engines, features, times = {}, {}, {}
    for name in configurations:
        start = time.perf_counter()
        engines[name] = OpenVINOEngine(model_dir, Configuration.parse(name), cache_dir=None)
        times[name] = {"compile": time.perf_counter() - start, "encode": [], "decode": []}
        features[name] = engines[name].encode(image)  # warm-up, and the decoder's input
        engines[name].decode(features[name], boxes)
    for _ in range(rounds):
        for name, engine in engines.items():
            start = time.perf_counter()
            engine.encode(image)
            middle = time.perf_counter()
            engine.decode(features[name], boxes)
            times[name]["encode"].append(middle - start)
            times[name]["decode"].append((time.perf_counter() - middle) / len(boxes))
    return {
        n: {"compile": t["compile"], "encode": statistics.median(t["encode"]), "decode": statistics.median(t["decode"])}
        for n, t in times.items()
    }


def result_name(name: str, model_dir: Path) -> str:
    """The file name of a configuration's per-case scores: the configuration and the start of a digest of
    the graph files it runs (its encoder and the model's default decoder, .xml and .bin). Scores of other
    graphs, from before an export or a quantization, are never reused."""
    decoder = next(iter(decoder_specs(model_dir).values()))["file"]
    digest = hashlib.sha256()
    for graph in (Configuration.parse(name).encoder_file, decoder):
        for path in (model_dir / graph, (model_dir / graph).with_suffix(".bin")):
            if not path.is_file():
                raise SystemExit(f"{name}: {path} is missing{MISSING_GRAPH_HINTS.get(graph, '')}")
            digest.update(sha256_of(path).encode())
    return f"{name}-{digest.hexdigest()[:12]}"


def read_metrics(path: Path) -> list[tuple[str, float, float]]:
    with open(path, newline="") as f:
        return [(r["case"], float(r["dsc"] or "nan"), float(r["nsd"] or "nan")) for r in csv.DictReader(f)]


def write_metrics(path: Path, scores: list[tuple[str, float, float]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["case", "dsc", "nsd"])
    writer.writerows(scores)
    write_atomically(path, text.getvalue().encode())


def scores_of(name: str, cases_dir: Path, model: str, out: Path) -> tuple[list[tuple[str, float, float]], float]:
    """(case, DSC, NSD) of `predict --precision NAME` on every case, and the run's wall seconds."""
    options = PredictOptions(
        cases_dir / "imgs",
        out,
        model=model,
        precision=name,
        cache_dir=None,
        weights_dir=REPO / "weights",
        timing_csv=out / "efficiency_timer.csv",
    )
    start = time.perf_counter()
    if run(options, start):
        raise SystemExit(f"predict --precision {name} failed on some case")
    seconds = time.perf_counter() - start
    return [(r.case, r.dsc, r.nsd) for r in score_folder(out, cases_dir / "gts")], seconds


def gate(base: dict, other: dict) -> dict:
    """Gate verdict of one configuration's group summary against f32's."""
    drops = {g: base[g].dsc - other[g].dsc for g in base}
    worst = max((g for g in drops if g != OVERALL), key=drops.get)
    passed = drops[OVERALL] <= GATE_OVERALL and drops[worst] <= GATE_GROUP
    return {
        "passed": passed,
        "mean_drop": round(drops[OVERALL], 4),
        "worst_group": worst,
        "worst_drop": round(drops[worst], 4),
    }


def scores_source(reused: dict[str, Path], names: list[str]) -> str:
    """Where the record's figures for `names` come from: this run, except the per-case scores read from
    earlier CSVs."""
    if not reused:
        return "speeds and per-case scores from this run"
    earlier = ", ".join(
        f"{name} from {path.relative_to(REPO) if path.is_relative_to(REPO) else path} "
        f"(written {time.strftime('%Y-%m-%d', time.localtime(path.stat().st_mtime))})"
        for name, path in reused.items()
    )
    others = "; the others from this run" if set(names) - set(reused) else ""
    return f"speeds from this run; per-case scores of earlier runs for {earlier}{others}"


def _int8(name: str) -> bool:
    return Configuration.parse(name).encoder_is_int8


def record(model_dir: Path, speed: dict, verdicts: dict, command: str, reused: dict[str, Path]) -> Path:
    """Writes this CPU class's entries (speed and gate of every configuration) into the model's record;
    `reused` names the configurations whose per-case scores came from an earlier run's CSV. An INT8
    entry names the sha256s of the INT8 files it ran (`auto` trusts it only while int8.json names the
    same)."""
    path = model_dir / RECORD_FILE
    data = json.loads(path.read_text()) if path.is_file() else {"classes": {}}
    data["gate"] = {
        "mean_drop_max": GATE_OVERALL,
        "group_drop_max": GATE_GROUP,
        "metric": "DSC, mean of modality-group means, all cases of cvpr24-format",
    }
    flags, capabilities = cpu_flags(), openvino_capabilities()
    data["classes"][cpu_class(capabilities, flags)] = {
        "cpu": cpu_model(),
        "flags": [f for f in REPORTED_FLAGS if f in flags],
        "openvino": ov.__version__.split("-")[0],
        "openvino_capabilities": sorted(capabilities),
        "measured": time.strftime("%Y-%m-%d"),
        "command": command,
        "source": scores_source(reused, list(verdicts)),
        "configurations": [
            {
                "configuration": name,
                "speed": {
                    "encode_s": round(speed[name]["encode"], 4),
                    "decode_s_per_box": round(speed[name]["decode"], 5),
                },
                "gate": verdicts[name],
            }
            | ({"int8_files": {f: sha256_of(model_dir / f) for f in INT8_FILES}} if _int8(name) else {})
            for name in verdicts
        ],
    }
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="litemedsam")
    parser.add_argument("--configurations", nargs="+", help="default: f32 and every shorthand this CPU runs")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--accuracy", action="store_true", help="also run the accuracy gate (slow: every case)")
    parser.add_argument("--cases-dir", type=Path, default=evaluation_cases())
    parser.add_argument("--results", type=Path, default=REPO / "build" / "precision", help="per-case score CSVs")
    parser.add_argument("--f32-metrics", type=Path, help="f32 scores from this CSV instead of an f32 run")
    parser.add_argument("--record", action="store_true", help=f"write weights/MODEL/{RECORD_FILE} (needs --accuracy)")
    parser.add_argument("-o", "--out", type=Path, help="default: benchmarks/precision-<CPU class>.md")
    args = parser.parse_args()

    model_dir = REPO / "weights" / args.model
    names = [
        Configuration.parse(c).name
        for c in args.configurations or default_configurations(model_dir, openvino_capabilities())
    ]
    if "f32-f32" not in names:
        names.insert(0, "f32-f32")
    command = f"python benchmarks/{Path(sys.argv[0]).name} {' '.join(sys.argv[1:])}"
    lines = [
        "# Precision",
        "",
        f"CPU: {describe_cpu(openvino_capabilities(), cpu_flags())}; OpenVINO {ov.__version__.split('-')[0]}.",
        "",
        f"Produced by `{command}` on {time.strftime('%Y-%m-%d')}.",
        "",
        f"## Speed ({args.model}, one process, {args.rounds} alternating rounds, medians)",
        "",
        "| configuration (encoder-decoder) | compile s (no cache) | encoder s | decoder s per box "
        "| encoder vs f32 | decoder vs f32 |",
        "|---|---|---|---|---|---|",
    ]
    result_files = {n: args.results / f"{result_name(n, model_dir)}.csv" for n in names} if args.accuracy else {}
    speed = time_engines(model_dir, names, args.rounds)
    base = speed["f32-f32"]
    for name, t in speed.items():
        lines.append(
            f"| {name} | {t['compile']:.3f} | {t['encode']:.3f} | {t['decode']:.4f} | "
            f"{t['encode'] / base['encode']:.3f} | {t['decode'] / base['decode']:.3f} |"
        )
    print("\n".join(lines), flush=True)

    if args.accuracy:
        results, seconds, reused = {}, {}, {}
        if args.f32_metrics:
            results["f32-f32"] = read_metrics(args.f32_metrics)
        for name in names:
            csv_path = result_files[name]
            if name in results:
                continue
            if csv_path.is_file():
                results[name], reused[name] = read_metrics(csv_path), csv_path
                continue
            print(f"accuracy: predict --precision {name} on {args.cases_dir}", flush=True)
            results[name], seconds[name] = scores_of(name, args.cases_dir, args.model, args.results / name)
            write_metrics(csv_path, results[name])
        groups = {n: {row.group: row for row in summarize(scores)} for n, scores in results.items()}
        if args.f32_metrics:
            source = f"`{args.f32_metrics}`"
        else:
            source = f"an earlier run, `{reused['f32-f32']}`" if "f32-f32" in reused else "its own run"
        others = [n for n in groups if n != "f32-f32"]
        lines += [
            "",
            f"## Accuracy gate on {args.cases_dir.name} (DSC / NSD, mean of group means; f32 from {source})",
            "",
            "| group | " + " | ".join(groups) + " | " + " | ".join(f"{n} DSC drop" for n in others) + " |",
            "|---|" + "---|" * (len(groups) + len(others)),
        ]
        for group, row in groups["f32-f32"].items():
            cells = [f"{groups[n][group].dsc:.4f} / {groups[n][group].nsd:.4f}" for n in groups]
            drops = [f"{row.dsc - groups[n][group].dsc:+.4f}" for n in others]
            lines.append(f"| {group} | " + " | ".join(cells) + " | " + " | ".join(drops) + " |")
        lines.append("")
        verdicts = {"f32-f32": {"passed": True, "mean_drop": 0.0, "worst_group": "", "worst_drop": 0.0}}
        for name in others:
            verdicts[name] = v = gate(groups["f32-f32"], groups[name])
            run_time = f", whole run {seconds[name]:.0f} s" if name in seconds else ""
            run_time += f", scores of an earlier run (`{reused[name]}`)" if name in reused else ""
            lines.append(
                f"- {name}: overall drop {v['mean_drop']:+.4f} (gate {GATE_OVERALL}), worst group "
                f"{v['worst_group']} {v['worst_drop']:+.4f} (gate {GATE_GROUP}): "
                f"**{'passes' if v['passed'] else 'fails'}**{run_time}."
            )
        if args.record:
            lines.append(f"\nRecorded in `{record(model_dir, speed, verdicts, command, reused).relative_to(REPO)}`.")
    report = "\n".join(lines) + "\n"
    out = args.out or REPO / "benchmarks" / f"precision-{cpu_class(openvino_capabilities(), cpu_flags())}.md"
    out.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
