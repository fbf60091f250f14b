"""Files written whole or not at all, the leftovers of writers that were killed, and the check that a
folder takes files at all.

A file is written to `.<name>.<pid>.tmp` beside its target and renamed over it, so a full disk or a
kill never leaves a partial target. A kill during the write can leave the temporary file; the next run
removes those whose process is gone.
"""

import os
from pathlib import Path


def write_atomically(path: Path, data: bytes | memoryview) -> Path:
    """Writes `data` to `path` through a temporary file and a rename; returns `path`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def check_writable(folder: Path) -> None:
    """Creates `folder` if needed and writes and removes a probe file in it; raises OSError where it cannot."""
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".write-test.{os.getpid()}"
    probe.touch()
    probe.unlink()


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Removes the temporary files in `folder` whose writer is gone; returns them. A pid equal to this
    process's is stale too: a container's pids start again from 1."""
    removed = []
    for path in folder.glob(".*.tmp"):
        pid = path.name.rsplit(".", 2)[-2]
        if pid.isdigit() and (int(pid) == os.getpid() or not _is_running(int(pid))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
