"""Wall time of compute-metrics with two local processes (-j 2) and on a local Dask cluster of two workers.

    python benchmarks/metrics_cluster.py [--segs DIR] [--gts DIR] [--cases N] [--repeat N]

Defaults: the reference LiteMedSAM predictions and the cvpr24-format gts under ../shared (or
MEDSAM_SHARED); the cases are those with a prediction (126), or the first N of them. Each run is a
whole `python -m evaluation compute-metrics` process, started alternately with `-j 2` and with
`--scheduler` on a cluster of two worker processes of one thread each (distributed.LocalCluster,
started once before the first run, so its start-up is not counted); the medians are compared and the
metrics.csv of every run must be byte-identical. Needs the cluster extra (pip install -e .[cluster]).
Run it on a quiet machine with OMP_NUM_THREADS=1 for figures worth quoting.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from distributed import LocalCluster

from medsam_laptop.paths import evaluation_cases, reference_dir

REPO = Path(__file__).resolve().parents[1]


def gts_with_segs(seg_dir: Path, gt_dir: Path, folder: Path, limit: int | None) -> int:
    """Link into ``folder`` the gts files that have a seg (the first ``limit``); returns how many."""
    names = sorted(p.name for p in gt_dir.glob("*.npz") if (seg_dir / p.name).is_file())[:limit]
    for name in names:
        (folder / name).symlink_to((gt_dir / name).resolve())
    return len(names)


def timed_run(seg_dir: Path, gt_dir: Path, out: Path, *where: str) -> float:
    """Wall seconds of one compute-metrics process; stops the benchmark on a usage error."""
    command = [sys.executable, "-m", "evaluation", "compute-metrics", "-s", str(seg_dir), "-g", str(gt_dir)]
    start = time.perf_counter()
    done = subprocess.run(
        [*command, "-o", str(out), "-q", *where], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):  # 1: some seg scored 0, outputs written all the same
        sys.exit(f"compute-metrics {' '.join(where)} failed ({done.returncode}): {done.stderr.strip()}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segs", type=Path, default=reference_dir() / "litemedsam-torch-segs")
    parser.add_argument("--gts", type=Path, default=evaluation_cases() / "gts")
    parser.add_argument("--cases", type=int, help="only the first N cases with a seg (default all)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each variant, alternating (default 3)")
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
    ):
        gt_dir = Path(tmp) / "gts"
        gt_dir.mkdir()
        cases = gts_with_segs(args.segs, args.gts, gt_dir, args.cases)
        variants = {"-j 2": ["-j", "2"], "--scheduler (2 workers)": ["--scheduler", cluster.scheduler_address]}
        times = {label: [] for label in variants}
        csvs = set()
        for run in range(args.repeat):
            for label, where in variants.items():
                out = Path(tmp) / f"{run}-{where[0]}"
                times[label].append(timed_run(args.segs, gt_dir, out, *where))
                csvs.add((out / "metrics.csv").read_bytes())

    print(f"{cases} cases, {args.repeat} runs of each variant, alternating; wall seconds of the whole command")
    width = max(map(len, times))
    print(f"{'run':<8}" + "".join(f"{label:>{width + 2}}" for label in times))
    for run in range(args.repeat):
        print(f"{run + 1:<8}" + "".join(f"{t[run]:>{width + 2}.2f}" for t in times.values()))
    print(f"{'median':<8}" + "".join(f"{statistics.median(t):>{width + 2}.2f}" for t in times.values()))
    print(f"metrics.csv identical across all {2 * args.repeat} runs: {'yes' if len(csvs) == 1 else 'NO'}")
    if len(csvs) != 1:
        sys.exit(1)


if __name__ == "__main__":
    main()
