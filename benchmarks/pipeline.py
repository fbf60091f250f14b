"""Side-by-side running time, as the organizers measure it: one cold process (or container) per case.

    python benchmarks/pipeline.py [--per-group 2] [--image TEAM:latest] [--skip-baseline] [--precision P]
        [--rounds 1] [-o benchmarks/pipeline-CLASS.md]

Variants, each on the same cases in one run, taking turns on each case (all of them on the first case,
then on the next; the order rotates from round to round), so that a slower stretch of a shared machine
hits every variant alike; with --rounds N the whole sequence runs N times and every per-case figure is
the median of the N runs that ended ok:
  a  the PyTorch reference in the organizers' manner (`predict --backend torch --baseline`:
     every slice re-encoded for every box, one decoder call per box, no cache);
  b  this pipeline (`predict`, OpenVINO), the compiled-model cache kept between cases as in the harness;
  c  with --image, the container under the organizers' harness (`evaluation.time_eval`), its work
     folders and cache kept between cases.
The project's sources are compiled to bytecode first, as the image's build does, and as Python does on a
first import unless PYTHONDONTWRITEBYTECODE is set. Prints per-modality medians, the ratios b/a and c/a,
the efficiency timer's stage medians, peak memory and the DSC/NSD of every variant against the ground
truth, and writes them to a markdown file.
"""

import argparse
import compileall
import csv
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO)]

from evaluation import docker_engine, time_eval  # noqa: E402
from evaluation.compute_metrics import score_folder  # noqa: E402
from evaluation.leaderboard import summarize  # noqa: E402
from medsam_laptop.engines.cpu import cpu_class, cpu_flags, describe_cpu, openvino_capabilities  # noqa: E402
from medsam_laptop.engines.precision import resolve  # noqa: E402
from medsam_laptop.io.case_files import modality_group  # noqa: E402
from medsam_laptop.paths import evaluation_cases  # noqa: E402

STAGES = ("interpreter", "imports", "compile", "read", "preprocess", "encode", "decode", "postprocess", "write")


def pick_cases(imgs: Path, per_group: int, extra: list[str]) -> list[str]:
    by_group: dict[str, list[str]] = {}
    for path in sorted(imgs.glob("*.npz")):
        by_group.setdefault(modality_group(path.name), []).append(path.name)
    chosen = [name for names in by_group.values() for name in names[:per_group]]
    return sorted(set(chosen) | set(extra))


def run_process(args: list[str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (GiB) and exit code of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    return time.perf_counter() - start, usage.ru_maxrss / 2**20, os.waitstatus_to_exitcode(status)


@dataclass(frozen=True)
class Run:
    """One variant on one case: wall seconds, peak memory (GiB; NaN where not measured) and the outcome."""

    seconds: float
    peak_gib: float
    outcome: str  # time_eval.OK, or what went wrong

    @property
    def ok(self) -> bool:
        return self.outcome == time_eval.OK


class ProcessVariant:
    """`predict` in a cold process per case; the input folder holds that case only, and the output folder
    (with its compiled-model cache) is kept from case to case, as in the harness."""

    def __init__(self, work: Path, extra_args: list[str]) -> None:
        self.inputs, self.outputs = work / "inputs", work / "outputs"
        self.inputs.mkdir(parents=True)
        self.outputs.mkdir()
        self.extra_args = extra_args

    def run(self, case: Path) -> Run:
        shutil.copy(case, self.inputs / case.name)
        (self.outputs / case.name).unlink(missing_ok=True)  # an earlier round's mask must not be scored
        command = [sys.executable, "-m", "medsam_laptop", "predict", "-i", str(self.inputs), "-o", str(self.outputs)]
        seconds, peak, code = run_process([*command, *self.extra_args])
        (self.inputs / case.name).unlink()
        if code != 0:
            return Run(seconds, peak, f"exit {code}")
        return Run(seconds, peak, time_eval.OK if (self.outputs / case.name).is_file() else time_eval.MISSING_OUTPUT)

    def close(self) -> list[str]:
        return []

    @property
    def timer_csv(self) -> Path:
        return self.outputs / "efficiency_timer.csv"


class ContainerVariant:
    """The image under the organizers' harness (`evaluation.time_eval.run_case`): one `docker run` per case,
    the work folders kept from case to case; the segmentations collect in `outputs`."""

    def __init__(self, work: Path, image: str) -> None:
        self.image, self.harness = image, work / "harness"
        self.outputs, self.logs = work / "outputs", work / "logs"
        self.team = f"medsam-bench-{os.getpid()}"  # a name no container of the user's has
        for folder in (self.harness / "inputs", self.harness / "outputs", self.outputs):
            time_eval.fresh_dir(folder)
        self.logs.mkdir()

    def run(self, case: Path) -> Run:
        (self.outputs / case.name).unlink(missing_ok=True)
        settings = time_eval.RunSettings()
        result = time_eval.run_case(case, self.team, self.image, self.harness, self.outputs, self.logs, settings)
        return Run(result.seconds, float("nan"), result.outcome)

    def close(self) -> list[str]:
        """Removes a container left by an interrupted run; returns the harness's complaints about the folders
        the containers wrote (ones the organizers' cleanup could not empty)."""
        docker_engine.remove_container(self.team)
        return time_eval.undeletable_by_others(self.harness / "outputs")


def stage_medians(timer_csv: Path) -> dict[str, float]:
    """Median seconds per stage over the timer's rows of cases that ended ok."""
    with open(timer_csv, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["status"] == "ok"]
    return {s: _median([float(r[s]) for r in rows]) for s in STAGES}


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
    parser.add_argument("--rounds", type=int, default=1, help="runs of every variant on every case (medians)")
    parser.add_argument("-o", "--out", type=Path, help="default: benchmarks/pipeline-<CPU class>.md")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    imgs, gts = args.cases_dir / "imgs", args.cases_dir / "gts"
    cases = pick_cases(imgs, args.per_group, args.extra)
    if not cases:
        parser.error(f"no cases selected from {imgs}")
    compileall.compile_dir(REPO / "src", quiet=1)  # with PYTHONDONTWRITEBYTECODE, each process would compile them
    configuration, how = resolve(args.precision, REPO / "weights" / "litemedsam")
    lone_2d, _ = resolve(args.precision, REPO / "weights" / "litemedsam", few_encoder_calls=True)
    if lone_2d != configuration:  # each process segments one case
        how += f"; {lone_2d.name} for a 2D case"
    variants = {
        "b": (
            f"this pipeline (OpenVINO, --precision {args.precision}: {configuration.name}, {how})",
            ["--precision", args.precision],
        )
    }
    if not args.skip_baseline:
        variants = {"a": ("PyTorch reference, organizers' manner", ["--backend", "torch", "--baseline"]), **variants}
    if args.image:
        variants["c"] = (f"container {args.image}, organizers' harness", [])
    keys = list(variants)
    runs: dict[str, dict[str, list[Run]]] = {k: {c: [] for c in cases} for k in keys}
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        runners = {
            k: ContainerVariant(Path(tmp, k), args.image) if k == "c" else ProcessVariant(Path(tmp, k), extra)
            for k, (_, extra) in variants.items()
        }
        try:
            for round_ in range(args.rounds):
                # The variants take turns on each case, so a slower stretch hits all alike; the order
                # rotates from round to round, so that none always runs straight after another.
                order = keys[round_ % len(keys) :] + keys[: round_ % len(keys)]
                for name in cases:
                    for key in order:
                        run = runners[key].run(imgs / name)
                        runs[key][name].append(run)
                        print(
                            f"  round {round_ + 1} {key} {name}: {run.seconds:.2f} s, peak {run.peak_gib:.2f} GiB, "
                            f"{run.outcome}",
                            flush=True,
                        )
        finally:
            folder_problems = [problem for runner in runners.values() for problem in runner.close()]
        timers = {k: r.timer_csv for k, r in runners.items() if isinstance(r, ProcessVariant)}
        stages = {k: stage_medians(path) for k, path in timers.items() if path.is_file()}
        scored = {k: score_folder(runner.outputs, gts, cases=cases) for k, runner in runners.items()}
        scores = {k: {r.case: r for r in rows} for k, rows in scored.items()}
        report = render(cases, variants, runs, scores, stages, folder_problems)
    out = args.out or REPO / "benchmarks" / f"pipeline-{cpu_class(openvino_capabilities(), cpu_flags())}.md"
    out.write_text(report)
    print(report)


def _table_head(title: str, columns: list[str]) -> list[str]:
    """A section heading, then the header and separator rows of its markdown table."""
    return ["", f"## {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]


def _median(values: list[float]) -> float:
    """The median of the values that are numbers (not NaN); NaN when none is."""
    numbers = [v for v in values if v == v]
    return statistics.median(numbers) if numbers else float("nan")


def _group_members(cases: list[str]) -> dict[str, list[str]]:
    """Modality group (and "all 2D", "all 3D") -> its cases; groups without cases are left out."""
    groups = {g: [c for c in cases if modality_group(c) == g] for g in sorted({modality_group(c) for c in cases})}
    for dims in ("2D", "3D"):
        members = [c for c in cases if c.startswith(dims)]
        if members:
            groups[f"all {dims}"] = members
    return groups


def render(cases, variants, runs, scores, stages, folder_problems) -> str:
    """The markdown report. runs: variant -> case -> one Run per round; failed runs are left out of every
    median and listed."""
    rounds = len(runs[next(iter(runs))][cases[0]])
    results = {
        k: {
            c: (_median([r.seconds for r in rs if r.ok]), _median([r.peak_gib for r in rs if r.ok]))
            for c, rs in per_case.items()
        }
        for k, per_case in runs.items()
    }
    failures = [
        f"{k} {c} (round {i + 1}: {r.outcome})"
        for k in runs
        for c in cases
        for i, r in enumerate(runs[k][c])
        if not r.ok
    ]
    groups = _group_members(cases)
    ratio_keys = [k for k in variants if k != "a" and "a" in variants]
    lines = [
        "# Benchmarks",
        "",
        f"CPU: {describe_cpu(openvino_capabilities(), cpu_flags())}; Python {platform.python_version()}. "
        f"Produced by `python {' '.join(sys.argv)}` on {time.strftime('%Y-%m-%d')}; every variant ran on the "
        f"same {len(cases)} cases, one cold process (or container) per case, in one run; the variants took turns "
        f"on each case (in an order that rotates by round), {rounds} round{'s' if rounds > 1 else ''}"
        + (
            "; per-case figures are medians of the rounds (so the first round's compile into an empty model "
            "cache, which a harness run pays once, is in them only through its round)."
            if rounds > 1
            else "."
        ),
        "",
        "Variants: " + "; ".join(f"**{k}** {v[0]}" for k, v in variants.items()) + ".",
        "",
        "Failed runs (left out of the medians): " + ("; ".join(failures) if failures else "none") + ".",
    ]
    if folder_problems:
        lines += ["", "The harness's cleanup check: " + "; ".join(folder_problems) + "."]
    lines += _table_head(
        "Running time per case (median seconds per modality group)",
        ["group", "cases", *variants, *(f"{k}/a" for k in ratio_keys)],
    )
    for group, members in groups.items():
        med = {k: _median([results[k][c][0] for c in members]) for k in variants}
        ratios = [f"{med[k] / med['a']:.3f}" for k in ratio_keys]
        lines.append(
            f"| {group} | {len(members)} | " + " | ".join([*(f"{med[k]:.2f}" for k in variants), *ratios]) + " |"
        )
    if ratio_keys and rounds > 1:
        lines += _table_head(
            "Ratios within each round (group medians of that round; round 1, 2, ...; their median)",
            ["group", *(f"{k}/a" for k in ratio_keys)],
        )
        for group, members in groups.items():
            cells = []
            for k in ratio_keys:
                per_round = [
                    _median([runs[k][c][i].seconds for c in members if runs[k][c][i].ok])
                    / _median([runs["a"][c][i].seconds for c in members if runs["a"][c][i].ok])
                    for i in range(rounds)
                ]
                cells.append(", ".join(f"{x:.3f}" for x in per_round) + f"; {_median(per_round):.3f}")
            lines.append(f"| {group} | " + " | ".join(cells) + " |")
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
