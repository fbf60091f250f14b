"""The organizers' docker timing harness (``CVPR24_time_eval.py``), with what it hides reported.

Reproduced by default, team by team: ``docker image load`` each file of the tarball folder (sorted;
team = file name before the first '.', lowercased; image ``<team>:latest``); fresh ``inputs/``,
``outputs/`` (``chmod 777``) and ``<out>/<team>/`` folders; for each case (every file of the case
folder, sorted) copy that ONE case into ``inputs/``, time the whole ``docker container run -m 8G
--name <team> --rm -v .../inputs/:/workspace/inputs/ -v .../outputs/:/workspace/outputs/
<team>:latest /bin/bash -c "sh predict.sh"``, delete the case from ``inputs/`` and move
``outputs/<case>`` into the team folder. Nothing else is emptied between cases: what a container
leaves in ``inputs/`` or ``outputs/`` (a compiled-model cache, say) is there for the next case.
Then ``<team>_running_time.csv`` (CaseName, RunningTime), the work folders are removed, and the
image (``docker rmi``).

Reported here, ignored there: a non-zero exit, an out-of-memory kill (exit 137 plus the engine's
``oom`` event), a missing or misnamed output, an input the container deleted, a container left
with the team's name (removed first: it would make ``docker run`` fail), folders that a non-root
organizer could not clean up (the organizers reported such folders), and with ``--timeout`` a case that
ran too long.
Details: ``<team>/<team>_outcomes.csv``; container output: ``<out>/<team>_logs/<case>.log``.
Differences on purpose: the work folders live in ``--work-dir``, not the current directory, and only
they are chmod-ed (the organizers chmod all of ``./*``); where the organizers' script would abort a
team (a vanished input) the case is reported and the run goes on.
With ``--scheduler`` the cases are spread over timing machines, one Dask worker each
(time_eval_cluster.py); without it, everything above runs on this machine.
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import shutil
import stat
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import docker_engine as engine

OK = "ok"
MISSING_OUTPUT = "missing-output"
MISNAMED_OUTPUT = "misnamed-output"
EXIT_NONZERO = "exit-nonzero"
KILLED = "killed"
OOM_KILLED = "oom-killed"
TIMEOUT = "timeout"
DOCKER_ERROR = "docker-error"
INPUT_GONE = "input-gone"

EPILOG = (
    "Exit status: 0 when every case of every team is ok; 1 when a case failed, an image did not load "
    "as <team>:latest or the work folders could not be cleaned up; 2 when nothing could be run "
    "(with --scheduler also: no scheduler, no worker with the resource docker=1, one without an engine)."
)
DOCKER_RUN_FAILED = 125  # `docker run` itself failed: name conflict, unknown image, bad option
SIGKILL_EXIT = 137  # 128 + 9: the container's main process got SIGKILL (OOM killer, docker kill)


@dataclass(frozen=True)
class CaseResult:
    """One case of one team: wall time of the whole `docker run`, its exit code, the verdict."""

    case: str
    seconds: float
    exit_code: int | None
    outcome: str
    detail: str = ""


@dataclass(frozen=True)
class RunSettings:
    """How each container is started, beyond the organizers' fixed command line."""

    memory: str = "8G"
    extra_args: tuple[str, ...] = ()
    timeout_s: float | None = None
    fresh_dirs: bool = False


def team_name(tarball: str | Path) -> str:
    """The organizers' team name: the file name before its first '.', lowercased."""
    return Path(tarball).name.split(".")[0].lower()


def docker_run_command(team: str, image: str, inputs: Path, outputs: Path, settings: RunSettings) -> list[str]:
    """The organizers' command line (absolute paths instead of ``$PWD``), extra args before the image."""
    return [
        "docker",
        "container",
        "run",
        "-m",
        settings.memory,
        "--name",
        team,
        "--rm",
        "-v",
        f"{inputs.resolve()}/:/workspace/inputs/",
        "-v",
        f"{outputs.resolve()}/:/workspace/outputs/",
        *settings.extra_args,
        image,
        "/bin/bash",
        "-c",
        "sh predict.sh",
    ]


def classify(
    case: str,
    exit_code: int | None,
    timed_out: bool,
    oom_event: bool,
    output_present: bool,
    new_outputs: Sequence[str],
    input_present: bool,
) -> tuple[str, str]:
    """Verdict and detail for one case, the most telling problem first.

    ``new_outputs``: names that appeared at the top of ``outputs/`` during this case, besides the
    expected ``case`` itself (a misnamed output shows up there as a new ``.npz``).
    """
    if timed_out:
        return TIMEOUT, "killed after --timeout"
    if exit_code == SIGKILL_EXIT and oom_event:
        return OOM_KILLED, "the kernel's OOM killer stopped the container (memory limit)"
    if exit_code == SIGKILL_EXIT:
        return KILLED, "SIGKILL (exit 137) without an oom event"
    if exit_code == DOCKER_RUN_FAILED:
        return DOCKER_ERROR, "docker run failed (exit 125), see the log"
    if exit_code != 0:
        return EXIT_NONZERO, f"exit code {exit_code}" + ("; output present" if output_present else "")
    if not input_present:
        return INPUT_GONE, "the container removed the input case (the organizers' script aborts the team)"
    if output_present:
        return OK, ""
    misnamed = sorted(name for name in new_outputs if name.endswith(".npz"))
    if misnamed:
        return MISNAMED_OUTPUT, f"expected {case}, found {', '.join(misnamed)}"
    return MISSING_OUTPUT, f"no outputs/{case}"


def write_running_time_csv(path: Path, results: Sequence[CaseResult]) -> None:
    """The organizers' CSV: columns CaseName, RunningTime (seconds), one row per case in run order."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["CaseName", "RunningTime"])
        writer.writerows([r.case, repr(r.seconds)] for r in results)


def write_outcomes_csv(path: Path, results: Sequence[CaseResult], where: Sequence[tuple[str, str]] = ()) -> None:
    """What the organizers' CSV leaves out: columns case, running_time_s, exit_code, outcome, detail;
    given ``where``, one (host name, worker address) a result (time-eval --scheduler), also host, worker."""
    header = ["case", "running_time_s", "exit_code", "outcome", "detail"]
    rows = [
        [r.case, f"{r.seconds:.3f}", "" if r.exit_code is None else r.exit_code, r.outcome, r.detail] for r in results
    ]
    if where:
        header += ["host", "worker"]
        rows = [row + list(placed) for row, placed in zip(rows, where)]
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def undeletable_by_others(folder: Path) -> list[str]:
    """Folders under ``folder`` whose entries another non-root user could not delete.

    Deleting an entry needs write permission on its folder: a non-empty folder owned by a uid other
    than this process's and not world-writable (a cache the container made with umask 022, say)
    stops the organizers' cleanup when they run as a non-root user, and with it every later team.
    """
    found = []
    for root, dirs, files in os.walk(folder):
        info = os.stat(root)
        if (dirs or files) and info.st_uid != os.getuid() and not info.st_mode & stat.S_IWOTH:
            found.append(f"{os.path.relpath(root, folder.parent)} (uid {info.st_uid}, mode {info.st_mode & 0o777:o})")
    return found


def fresh_dir(path: Path) -> None:
    """Empty (or create) ``path`` and make it world-writable, as the organizers' rmtree + chmod does."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    os.chmod(path, 0o777)


def run_case(
    case: Path, container: str, image: str, work: Path, team_dir: Path, logs: Path, settings: RunSettings
) -> CaseResult:
    """One case as the organizers run it, then the checks they skip. ``container``: the container's
    name, the team's name as the organizers have it."""
    inputs, outputs = work / "inputs", work / "outputs"
    if settings.fresh_dirs:
        fresh_dir(inputs)
        fresh_dir(outputs)
    notes = []
    if engine.remove_container(container):
        notes.append(f"removed a leftover container named {container} before the run")
    shutil.copy(case, inputs)
    before = set(os.listdir(outputs))
    started = time.time()
    exit_code, seconds, timed_out = engine.timed_run(
        docker_run_command(container, image, inputs, outputs, settings),
        container,
        logs / f"{case.name}.log",
        settings.timeout_s,
    )
    oom = exit_code == SIGKILL_EXIT and engine.had_oom_event(container, started - 1.0, time.time() + 1.0)
    if engine.remove_container(container):
        notes.append(f"a container named {container} was left after the run (removed)")
    input_present = (inputs / case.name).exists()
    if input_present:
        (inputs / case.name).unlink()
    output = outputs / case.name
    output_present = output.is_file()
    new_outputs = sorted(set(os.listdir(outputs)) - before - {case.name})
    if output_present:
        shutil.move(output, team_dir / case.name)
    outcome, detail = classify(case.name, exit_code, timed_out, oom, output_present, new_outputs, input_present)
    return CaseResult(case.name, seconds, exit_code, outcome, "; ".join(filter(None, [detail, *notes])))


def clean_up(work: Path) -> tuple[list[str], list[str]]:
    """Remove the work folders; returns (what the cases left in them, problems found)."""
    problems = []
    leftovers = sorted(os.listdir(work / "outputs")) + sorted(os.listdir(work / "inputs"))
    locked = undeletable_by_others(work / "inputs") + undeletable_by_others(work / "outputs")
    if locked:
        problems.append(
            f"the container left folders another non-root user cannot empty: {', '.join(locked[:5])}; "
            "write with umask 0000 so that the organizers' cleanup works whoever runs it"
        )
    try:
        shutil.rmtree(work / "inputs")
        shutil.rmtree(work / "outputs")
        if not any(work.iterdir()):
            work.rmdir()
    except OSError as error:
        problems.append(f"cannot remove the work folders ({error}): the organizers' script would skip every later team")
    return leftovers, problems


def case_line(team: str, result: CaseResult) -> str:
    """The line printed for a finished case."""
    return f"{team}  {result.case}  {result.seconds:8.2f} s  {result.outcome}  {result.detail}".rstrip()


def evaluate_team(
    team: str, image: str, cases: Sequence[Path], out_dir: Path, work: Path, settings: RunSettings
) -> tuple[list[CaseResult], list[str]]:
    """All cases of one team: (case results, team-level problems).

    Writes the team folder, both CSVs and the logs; prints a line a case.
    """
    if engine.remove_container(team):
        print(f"{team}: removed a leftover container named {team} before the run")
    fresh_dir(work / "inputs")
    fresh_dir(work / "outputs")
    team_dir, logs = out_dir / team, out_dir / f"{team}_logs"
    fresh_dir(team_dir)
    logs.mkdir(parents=True, exist_ok=True)
    results = []
    for case in cases:
        result = run_case(case, team, image, work, team_dir, logs, settings)
        results.append(result)
        print(case_line(team, result), flush=True)
    write_running_time_csv(team_dir / f"{team}_running_time.csv", results)
    write_outcomes_csv(team_dir / f"{team}_outcomes.csv", results)
    leftovers, problems = clean_up(work)
    if leftovers:
        print(f"{team}: left in the work folders after the last case: {', '.join(leftovers[:10])}")
    return results, problems


def add_parser(subparsers) -> None:
    """Register ``time-eval`` on the subparsers of ``python -m evaluation`` (sets ``run`` to :func:`main`)."""
    configure(
        subparsers.add_parser(
            "time-eval",
            help="time submission containers one case at a time, as the organizers do",
            description=__doc__.split("\n\n")[0],
            epilog=EPILOG,
        )
    )


def configure(p: argparse.ArgumentParser) -> None:
    """Declare the ``time-eval`` arguments on ``p``."""
    p.add_argument("-i", "--cases-dir", type=Path, required=True, help="folder of case files (each is one run)")
    p.add_argument(
        "-o",
        "--out-dir",
        type=Path,
        required=True,
        help="writes <team>/<case>.npz, <team>/<team>_running_time.csv, <team>/<team>_outcomes.csv, <team>_logs/",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("-d", "--docker-dir", type=Path, help="folder of <team>.tar.gz files (every file is loaded)")
    source.add_argument("--image", help="an image already loaded, e.g. litemedsam:latest (not removed afterwards)")
    p.add_argument("--team", help="container / folder name with --image (default: the image name before ':')")
    p.add_argument("--work-dir", type=Path, help="where inputs/ and outputs/ live (default <out-dir>/work)")
    p.add_argument("--memory", default="8G", help="docker run -m (default 8G, as the organizers)")
    p.add_argument(
        "--docker-args",
        default="",
        help='extra docker run arguments, before the image, e.g. --docker-args="--network none -u 1000:1000"',
    )
    p.add_argument("--timeout", type=float, help="seconds a case may run before its container is killed (default none)")
    p.add_argument(
        "--fresh-dirs",
        action="store_true",
        help="correction: empty inputs/ and outputs/ before every case (the organizers do not)",
    )
    p.add_argument("--keep-image", action="store_true", help="do not docker rmi a loaded image afterwards")
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="spread the cases over the workers of a Dask cluster, one timing machine each, e.g. "
        "tcp://10.0.0.5:8786 (needs the cluster extra; see evaluation/README.md)",
    )
    p.set_defaults(run=main)


def teams_of(args: argparse.Namespace) -> list[tuple[Path | None, str]]:
    """(tarball or None for --image, team name) in the organizers' order."""
    if args.image:
        return [(None, args.team or args.image.rsplit("/", 1)[-1].split(":")[0])]
    tarballs = sorted(p for p in args.docker_dir.iterdir() if p.is_file()) if args.docker_dir.is_dir() else []
    return [(tarball, team_name(tarball)) for tarball in tarballs]


def cases_and_teams(args: argparse.Namespace) -> tuple[list[Path], list[tuple[Path | None, str]]] | None:
    """The case files (sorted) and the teams to run; None, said on stderr, when either is missing."""
    cases = sorted(p for p in args.cases_dir.iterdir() if p.is_file()) if args.cases_dir.is_dir() else []
    teams = teams_of(args)
    if not cases or not teams:
        print(
            f"time-eval: nothing to run ({len(cases)} case files in {args.cases_dir}, {len(teams)} images)",
            file=sys.stderr,
        )
        return None
    return cases, teams


def run_settings(args: argparse.Namespace) -> RunSettings:
    return RunSettings(args.memory, tuple(shlex.split(args.docker_args)), args.timeout, args.fresh_dirs)


def report_team(team: str, results: Sequence[CaseResult], problems: Sequence[str], out_dir: Path) -> int:
    """Print a team's problems (stderr) and totals; returns its number of failures."""
    bad = [r for r in results if r.outcome != OK]
    for problem in problems:
        print(f"{team}: {problem}", file=sys.stderr)
    print(
        f"{team}: {len(results) - len(bad)} ok, {len(bad)} failed, "
        f"total {sum(r.seconds for r in results):.2f} s -> {out_dir / team}"
    )
    return len(bad) + len(problems)


def main(args: argparse.Namespace) -> int:
    """Run ``time-eval`` from parsed arguments; returns the exit status described in ``EPILOG``."""
    if args.scheduler is not None:
        from .time_eval_cluster import main as main_on_cluster

        return main_on_cluster(args)
    if not engine.available():
        print("time-eval: no docker engine reachable (docker info failed)", file=sys.stderr)
        return 2
    found = cases_and_teams(args)
    if found is None:
        return 2
    cases, teams = found
    settings = run_settings(args)
    work = args.work_dir or args.out_dir / "work"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    for tarball, team in teams:  # one team at a time: load, run every case, remove the image
        image = args.image or f"{team}:latest"
        if tarball is not None:
            said = engine.load_image(tarball)
            if not engine.image_exists(image):
                print(
                    f"{tarball.name}: no image {image} after loading ({said}); the organizers' docker run "
                    "would fail (or pull from a registry) for every case",
                    file=sys.stderr,
                )
                failed += 1
                continue
        results, problems = evaluate_team(team, image, cases, args.out_dir, work, settings)
        failed += report_team(team, results, problems, args.out_dir)
        if tarball is not None and not args.keep_image:
            engine.remove_image(image)
    return 1 if failed else 0


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(
        prog="python -m evaluation.time_eval", description=__doc__.split("\n\n")[0], epilog=EPILOG
    )
    configure(_parser)
    sys.exit(main(_parser.parse_args()))
