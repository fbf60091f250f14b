"""A thin wrapper over the ``docker`` command line, for the timing harness (time_eval.py).

Every call goes through the ``docker`` client found on PATH; nothing here parses more than an exit
code or one formatted field.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

KILL_GRACE_S = 30.0  # how long a killed container's `docker run` may take to return


def docker(*args: str) -> subprocess.CompletedProcess:
    """Run ``docker ARGS`` and capture its output as text."""
    return subprocess.run(["docker", *args], capture_output=True, text=True)


def available() -> bool:
    """True when a docker client answers and reaches an engine."""
    try:
        return docker("info", "--format", "{{.ServerVersion}}").returncode == 0
    except FileNotFoundError:
        return False


def image_exists(ref: str) -> bool:
    """Whether the engine has an image ``ref`` (e.g. ``team:latest``) locally."""
    return docker("image", "inspect", ref).returncode == 0


def load_image(tarball: Path) -> str:
    """``docker image load -i tarball``; returns what docker said (``Loaded image: ...`` or an error)."""
    loaded = docker("image", "load", "-i", str(tarball))
    return (loaded.stdout + loaded.stderr).strip()


def remove_image(ref: str) -> None:
    """``docker rmi ref``, ignoring failures (as the organizers' script does)."""
    docker("rmi", ref)


def remove_container(name: str) -> bool:
    """Force-remove a container called ``name``; True when there was one."""
    if docker("container", "inspect", name).returncode != 0:
        return False
    docker("container", "rm", "-f", name)
    return True


def had_oom_event(name: str, since: float, until: float) -> bool:
    """Whether the engine logged an ``oom`` event for a container called ``name`` in [since, until]
    (Unix seconds). The event outlives the container, so this works after ``--rm``."""
    events = docker(
        "events",
        "--since",
        f"{since:.3f}",
        "--until",
        f"{until:.3f}",
        "--filter",
        "type=container",
        "--filter",
        "event=oom",
        "--filter",
        f"container={name}",
        "--format",
        "{{.Status}}",
    )
    return "oom" in events.stdout


def timed_run(
    command: list[str], container: str, log_path: Path, timeout_s: float | None
) -> tuple[int | None, float, bool]:
    """Run a ``docker run`` command line with its output in ``log_path``.

    Returns (exit code, wall seconds of the whole command, timed out). On a timeout the container
    is killed (``docker kill``) and the client given ``KILL_GRACE_S`` to return; the wall time then
    includes the kill.
    """
    with log_path.open("wb") as log:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            exit_code: int | None = process.wait(timeout=timeout_s)
            return exit_code, time.perf_counter() - start, False
        except subprocess.TimeoutExpired:
            docker("kill", container)
            try:
                exit_code = process.wait(timeout=KILL_GRACE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                exit_code = process.wait()
            return exit_code, time.perf_counter() - start, True
