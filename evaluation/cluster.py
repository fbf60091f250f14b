"""Running per-case work as Dask tasks on a ``distributed`` cluster (the ``cluster`` extra).

Imported only when a command is given ``--scheduler``, so single-machine runs need no Dask. The
workers import ``evaluation`` themselves (the package must be installed there) and read and write
the case folders at the paths the client names, so those folders must be shared by every machine.

A task whose worker is lost (the machine fails, the process is killed) is run again by the scheduler
on another worker, up to its ``distributed.scheduler.allowed-failures`` (default 3) lost workers; its
future completes once, with the result of the run that finished.
"""

import re
import socket
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from distributed import Client, as_completed, get_worker

CONNECT_TIMEOUT_S = 10.0
T = TypeVar("T")
R = TypeVar("R")


class ClusterError(Exception):
    """No usable cluster: the scheduler cannot be reached, or it has no suitable worker."""


def connect(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> Client:
    """A client of the scheduler at ``address`` (e.g. ``tcp://10.0.0.5:8786``) with a worker connected.

    Raises:
        ClusterError: one line naming the address, when the scheduler does not answer within
            ``timeout_s`` or no worker has joined it by then.
    """
    try:
        client = Client(address, timeout=timeout_s, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ClusterError(f"no Dask scheduler reachable at {address} ({reason})") from None
    try:
        client.wait_for_workers(1, timeout=timeout_s)
    except TimeoutError:
        client.close()
        raise ClusterError(f"no worker joined the Dask scheduler at {address} within {timeout_s:g} s") from None
    return client


def workers_with(client: Client, resource: str) -> list[str]:
    """Addresses of the connected workers that declare at least one unit of ``resource``."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    return sorted(address for address, info in workers.items() if info.get("resources", {}).get(resource, 0) >= 1)


def map_unordered(
    client: Client,
    function: Callable[[T], R],
    items: Iterable[T],
    resources: dict[str, float] | None = None,
    retries: int = 0,
) -> Iterator[R]:
    """``function(item)`` for every item, one task each; yields each result once, as tasks finish.

    ``function`` must be importable on the workers (a module-level function, or a
    ``functools.partial`` of one). ``resources``: what each task holds while it runs, e.g.
    ``{"docker": 1}``; ``retries``: how often a task that raised is run again. Each future is
    dropped once its result is here, so that a worker lost later does not make the scheduler
    recompute a finished task. The first exception a task raises (after its retries) is raised here.
    """
    futures = client.map(function, list(items), pure=False, resources=resources, retries=retries)
    finished = as_completed(futures, loop=client.loop, with_results=True)
    del futures
    for _, result in finished:
        yield result


def this_worker() -> tuple[str, str, str]:
    """Inside a task on a worker: (host name, worker address, the worker's local directory)."""
    worker = get_worker()
    return socket.gethostname(), worker.address, worker.local_directory


def address_slug(address: str) -> str:
    """A worker address as a file and container name part: ``tcp://10.0.0.5:40123`` -> ``10.0.0.5-40123``."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", address.split("://", 1)[-1]).strip("-")
