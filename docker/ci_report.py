"""CI verdict on the container run: its DSC per case against the pipeline's own run outside the
container on the same cases, and the running times of the organizers' harness.

    python docker/ci_report.py TIME_EVAL_TEAM_DIR CONTAINER_METRICS_CSV LOCAL_METRICS_CSV

Exits 1 when a case is missing, was not scored "ok", or has a DSC below the local run's
(tolerance 1e-3: the same IR on the same CPU gives the same masks).
"""

import csv
import statistics
import sys
from pathlib import Path

TOLERANCE = 1e-3


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as f:
        return {row["case"]: row for row in csv.DictReader(f)}


def main(team_dir: Path, container_csv: Path, local_csv: Path) -> int:
    times_csv = next(team_dir.glob("*_running_time.csv"))
    with open(times_csv, newline="") as f:
        times = {row["CaseName"]: float(row["RunningTime"]) for row in csv.DictReader(f)}
    for case, seconds in sorted(times.items()):
        print(f"ci_report: running time {case}: {seconds:.2f} s")
    for kind in ("2D", "3D"):
        values = [s for c, s in times.items() if c.startswith(kind)]
        if values:
            print(f"ci_report: {kind} median running time {statistics.median(values):.2f} s over {len(values)} cases")

    container, local = _rows(container_csv), _rows(local_csv)
    failures = []
    print("ci_report: case, container DSC/NSD, local DSC/NSD")
    for case, ref in sorted(local.items()):
        got = container.get(case)
        if got is None or got["status"] != "ok":
            failures.append(f"{case}: {'missing' if got is None else got['status']}")
            continue
        print(f"ci_report: {case} {got['dsc']}/{got['nsd']} {ref['dsc']}/{ref['nsd']}")
        if float(got["dsc"] or "nan") < float(ref["dsc"] or "nan") - TOLERANCE:
            failures.append(f"{case}: container DSC {got['dsc']} below the local {ref['dsc']}")
    for failure in failures:
        print(f"ci_report: FAIL {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main(*map(Path, sys.argv[1:4])))
