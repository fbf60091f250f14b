"""A real Dask cluster on 127.0.0.1 for the tests: `dask scheduler` and `dask worker` subprocesses.

Each process runs in a session of its own, so that it is ended with its children (a worker's nanny,
the `docker run` clients it started) by killing its process group. Logs go to the given folder.
"""

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from conftest import REPO, require_module

DASK = Path(sys.executable).parent / "dask"
START_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalCluster:
    """A running scheduler and its workers; `client` is the test's own connection to the scheduler."""

    address: str
    client: object
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)  # "scheduler" and the worker names

    def worker_names(self) -> dict[str, str]:
        """Address -> name of every connected worker."""
        return {a: w["name"] for a, w in self.client.scheduler_info(n_workers=-1)["workers"].items()}

    def kill(self, name: str) -> None:
        """SIGKILL a process (scheduler or worker name) and everything it started, as a machine lost."""
        _kill(self.processes[name])


def _kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _start(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src")])}
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(DASK), *args], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


@contextmanager
def local_cluster(folder: Path, workers: int, resources: str | None = None) -> Iterator[LocalCluster]:
    """A scheduler and `workers` workers (one process, one thread each; `resources` e.g. "docker=1"),
    named w0, w1, ...; every process is killed on exit."""
    distributed = require_module("distributed", "dask and distributed (pip install -e .[cluster])")
    folder.mkdir(parents=True, exist_ok=True)
    address = f"tcp://127.0.0.1:{free_port()}"
    processes = {
        "scheduler": _start(
            ["scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1], "--no-dashboard"],
            folder / "scheduler.log",
        )
    }
    client = None
    try:
        for i in range(workers):
            name = f"w{i}"
            extra = ["--resources", resources] if resources else []
            processes[name] = _start(
                ["worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard", "--name", name]
                + ["--local-directory", str(folder / name), *extra],
                folder / f"{name}.log",
            )
        client = distributed.Client(address, timeout=START_TIMEOUT_S, set_as_default=False)
        client.wait_for_workers(workers, timeout=START_TIMEOUT_S)
        yield LocalCluster(address, client, processes)
    finally:
        if client is not None:
            client.close()
        for process in processes.values():
            _kill(process)
