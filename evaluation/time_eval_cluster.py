"""``time-eval --scheduler``: the organizers' harness spread over timing machines with Dask.

Each worker stands for one machine with its own Docker engine and is started with ``--resources
docker=1``; every case is a task holding ``docker=1``, so a machine runs one container at a time.
The task runs time_eval.run_case on its worker, so a case's time is the wall time of its ``docker
run`` on that machine. Per team, a worker's first case loads the team's image there (once per
worker) and makes its own fresh work folders, ``WORK/<host>-<port>/inputs`` and ``outputs`` (WORK:
``--work-dir`` as seen by the worker, else the worker's Dask local directory). As the organizers do
on their one machine, these are not emptied between that worker's cases. When the team is done,
every worker removes its work folders and the loaded image. Containers are named
``<team>-<host>-<port>``, so that workers sharing one engine do not collide.

The case folder and ``--out-dir`` must be the same paths on every machine (a shared file system):
workers read the cases there and move the outputs and write the logs there. A task whose worker is
lost mid-case runs again on another worker (evaluation.cluster); only the run that finished
returns a time. The CSVs list the cases in case order, the outcomes CSV with host and worker.
"""

import argparse
import sys
import uuid
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from distributed import Client

from . import docker_engine as engine
from . import time_eval as te
from .cluster import ClusterError, address_slug, connect, map_unordered, this_worker, workers_with

DOCKER = "docker"  # the worker resource of one timing machine's engine

_PREPARED: dict[str, tuple[Path, str]] = {}
"""In a worker process: the id of a team's run -> (its work folder, "" or why the team cannot run there)."""


@dataclass(frozen=True)
class PlacedResult:
    """A case's result and where it ran: the worker's host name and address."""

    result: te.CaseResult
    host: str
    worker: str


def _prepare(image: str, tarball: Path | None, work: Path) -> str:
    """Load ``tarball`` into this worker's engine and make fresh work folders; "" or the problem."""
    if tarball is not None:
        said = engine.load_image(tarball)
        if not engine.image_exists(image):
            return f"no image {image} after loading {tarball.name} on this worker ({said})"
    te.fresh_dir(work / "inputs")
    te.fresh_dir(work / "outputs")
    return ""


def run_case_task(
    case: Path,
    run_id: str,
    team: str,
    image: str,
    tarball: Path | None,
    out_dir: Path,
    work_root: Path | None,
    settings: te.RunSettings,
) -> PlacedResult:
    """On a worker: one case of ``team``, preparing the worker on the first case of the team's run
    ``run_id`` there.

    A team whose image did not load on this worker gets a docker-error result, without a run.
    """
    host, address, local_dir = this_worker()
    slug = address_slug(address)
    if run_id not in _PREPARED:
        work = Path(work_root or local_dir) / slug
        _PREPARED[run_id] = (work, _prepare(image, tarball, work))
    work, problem = _PREPARED[run_id]
    if problem:
        return PlacedResult(te.CaseResult(case.name, 0.0, None, te.DOCKER_ERROR, problem), host, address)
    result = te.run_case(case, f"{team}-{slug}", image, work, out_dir / team, out_dir / f"{team}_logs", settings)
    return PlacedResult(result, host, address)


def finish_team(run_id: str, image: str, remove_image: bool) -> tuple[list[str], list[str]]:
    """On a worker (``Client.run``), after the last case of the run ``run_id``: remove its work
    folders, and the image when ``remove_image``; returns (what the cases left there, problems found)."""
    if run_id not in _PREPARED:
        return [], []
    work, problem = _PREPARED.pop(run_id)
    if problem:
        return [], []
    found = te.clean_up(work)
    if remove_image:
        engine.remove_image(image)
    return found


def evaluate_team(
    client: Client,
    team: str,
    image: str,
    tarball: Path | None,
    cases: list[Path],
    out_dir: Path,
    work_root: Path | None,
    settings: te.RunSettings,
    remove_image: bool,
) -> tuple[list[PlacedResult], list[str]]:
    """All cases of one team on the cluster: (results in case order, team-level problems).

    Writes the team folder's CSVs; the workers write the outputs and logs. Prints a line a case.
    """
    team_dir, logs = out_dir / team, out_dir / f"{team}_logs"
    te.fresh_dir(team_dir)
    logs.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex  # a worker prepares once per run of a team, whatever ran there before
    run = partial(
        run_case_task,
        run_id=run_id,
        team=team,
        image=image,
        tarball=tarball,
        out_dir=out_dir,
        work_root=work_root,
        settings=settings,
    )
    by_case = {}
    for done in map_unordered(client, run, cases, resources={DOCKER: 1}):
        by_case[done.result.case] = done
        print(f"{te.case_line(team, done.result)}  [{done.worker}]", flush=True)
    placed = [by_case[case.name] for case in cases]
    results = [p.result for p in placed]
    te.write_running_time_csv(team_dir / f"{team}_running_time.csv", results)
    te.write_outcomes_csv(team_dir / f"{team}_outcomes.csv", results, [(p.host, p.worker) for p in placed])
    problems = []
    for worker, (leftovers, found) in sorted(client.run(finish_team, run_id, image, remove_image).items()):
        if leftovers:
            print(f"{team}: left in the work folders of {worker} after its last case: {', '.join(leftovers[:10])}")
        problems += [f"on {worker}: {problem}" for problem in found]
    return placed, problems


def _timing_workers(client: Client, address: str) -> str:
    """What keeps the cluster at ``address`` from timing (no worker holding ``docker``, or one that
    reaches no engine); "" when nothing does."""
    timers = workers_with(client, DOCKER)
    if not timers:
        return f"no worker of {address} has the resource {DOCKER}=1 (start them with --resources {DOCKER}=1)"
    blind = sorted(worker for worker, ok in client.run(engine.available, workers=timers).items() if not ok)
    if blind:
        return f"no docker engine reachable on {', '.join(blind)}"
    return ""


def main(args: argparse.Namespace) -> int:
    """``time-eval --scheduler``; the exit status of time_eval.EPILOG (2 also: no usable cluster)."""
    try:
        client = connect(args.scheduler)
    except ClusterError as error:
        print(f"time-eval: {error}", file=sys.stderr)
        return 2
    with client:
        problem = _timing_workers(client, args.scheduler)
        if problem:
            print(f"time-eval: {problem}", file=sys.stderr)
            return 2
        found = te.cases_and_teams(args)
        if found is None:
            return 2
        cases, teams = found
        settings = te.run_settings(args)
        args.out_dir.mkdir(parents=True, exist_ok=True)
        failed = 0
        for tarball, team in teams:  # one team at a time, its cases over every worker
            image = args.image or f"{team}:latest"
            remove_image = tarball is not None and not args.keep_image
            placed, problems = evaluate_team(
                client, team, image, tarball, cases, args.out_dir, args.work_dir, settings, remove_image
            )
            failed += te.report_team(team, [p.result for p in placed], problems, args.out_dir)
    return 1 if failed else 0
