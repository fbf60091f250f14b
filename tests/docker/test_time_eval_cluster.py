"""time-eval --scheduler: two Dask workers on 127.0.0.1 (tests/dask_cluster.py) sharing the local
Docker engine, with the throwaway HARNESS TEST image (harness_image.py).

Skipped without an engine, the base image or dask; under CI=true those fail (conftest.require).
"""

import csv
import socket
import threading
import time
from pathlib import Path

import pytest
from harness_image import build_test_image, docker, fake_cases, run_time_eval

from dask_cluster import local_cluster
from evaluation import time_eval as te
from evaluation.cluster import address_slug

TEAM = "harnesstest"


@pytest.fixture(scope="module")
def test_image(tmp_path_factory) -> str:
    return build_test_image(tmp_path_factory.mktemp("harness-image"))


@pytest.fixture
def cluster(tmp_path, test_image):
    with local_cluster(tmp_path / "cluster", workers=2, resources="docker=1") as running:
        yield running
    names = docker("ps", "-aq", "--filter", f"name=^{TEAM}-").stdout.split()
    if names:  # a killed worker's container goes on in the shared engine
        docker("rm", "-f", *names)


def _outcomes(out: Path) -> list[dict[str, str]]:
    with open(out / TEAM / f"{TEAM}_outcomes.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_every_case_runs_once_on_a_named_worker_from_a_tarball(cluster, test_image, tmp_path):
    dockers = tmp_path / "dockers"
    dockers.mkdir()
    assert docker("tag", test_image, f"{TEAM}:latest").returncode == 0
    assert docker("save", "-o", str(dockers / "HarnessTest.tar"), f"{TEAM}:latest").returncode == 0
    assert docker("rmi", f"{TEAM}:latest").returncode == 0  # each worker loads it
    names = ["a_ok.npz", "b_ok.npz", "missing_x.npz", *(f"persist_{i}.npz" for i in range(4))]
    cases = fake_cases(tmp_path / "cases", *names)
    out, work = tmp_path / "out", tmp_path / "work"
    try:
        status = run_time_eval(
            "-i",
            str(cases),
            "-o",
            str(out),
            "-d",
            str(dockers),
            "--work-dir",
            str(work),
            "--scheduler",
            cluster.address,
        )
        assert docker("image", "inspect", f"{TEAM}:latest").returncode != 0  # removed after the team
    finally:
        docker("rmi", f"{TEAM}:latest")
    assert status == 1  # missing_x, and the first persist case of each worker
    rows = _outcomes(out)
    assert [r["case"] for r in rows] == names  # once each, in case order
    assert {r["host"] for r in rows} == {socket.gethostname()}
    assert {r["worker"] for r in rows} <= set(cluster.worker_names())
    assert {r["case"]: r["outcome"] for r in rows if not r["case"].startswith("persist_")} == {
        "a_ok.npz": te.OK,
        "b_ok.npz": te.OK,
        "missing_x.npz": te.MISSING_OUTPUT,
    }
    # outputs/ is kept between the cases of a worker, not shared by workers: on each worker the
    # first persist case leaves the marker and the later ones find it.
    for worker in {r["worker"] for r in rows if r["case"].startswith("persist_")}:
        persist = [r["outcome"] for r in rows if r["case"].startswith("persist_") and r["worker"] == worker]
        assert sorted(persist) == [te.MISSING_OUTPUT] + [te.OK] * (len(persist) - 1), worker
    times = (out / TEAM / f"{TEAM}_running_time.csv").read_text().splitlines()
    assert times[0] == "CaseName,RunningTime" and [t.split(",")[0] for t in times[1:]] == names
    assert (out / TEAM / "a_ok.npz").read_bytes() == b"not really an npz"
    assert list(work.iterdir()) == []  # each worker's work folders removed after the team


def test_a_case_whose_worker_is_lost_runs_again_on_another(cluster, test_image, tmp_path):
    cases = fake_cases(tmp_path / "cases", "a_ok.npz", "b_ok.npz", "nap_x.npz", "c_ok.npz")
    out, work = tmp_path / "out", tmp_path / "work"
    lost = []

    def kill_the_worker_running_nap_x():
        while not lost:
            running = list(work.glob("*/inputs/nap_x.npz"))  # the case is copied in just before its run
            if running:
                names = cluster.worker_names()
                lost.extend(a for a in names if address_slug(a) == running[0].parts[-3])
                cluster.kill(names[lost[0]])
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_worker_running_nap_x, daemon=True)
    killer.start()
    status = run_time_eval(
        "-i", str(cases), "-o", str(out), "--image", test_image, "--team", TEAM, "--work-dir", str(work),
        "--scheduler", cluster.address,
    )  # fmt: skip
    killer.join(timeout=1)
    assert status == 0 and len(lost) == 1
    rows = {r["case"]: r for r in _outcomes(out)}
    assert sorted(rows) == ["a_ok.npz", "b_ok.npz", "c_ok.npz", "nap_x.npz"]
    assert rows["nap_x.npz"]["outcome"] == te.OK and rows["nap_x.npz"]["worker"] != lost[0]
    assert (out / TEAM / "nap_x.npz").exists()


def test_workers_without_the_docker_resource_are_refused(tmp_path, capsys):
    cases = fake_cases(tmp_path / "cases", "a_ok.npz")
    with local_cluster(tmp_path / "cluster", workers=1) as plain:
        status = run_time_eval(
            "-i", str(cases), "-o", str(tmp_path / "out"), "--image", "x", "--scheduler", plain.address
        )
    assert status == 2
    assert "has the resource docker=1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
