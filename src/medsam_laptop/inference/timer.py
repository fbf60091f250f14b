"""The efficiency timer: seconds per stage and per case, appended to a CSV and summarised on stderr."""

import csv
import io
import os
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..io.atomic import write_atomically

STARTUP_STAGES = ("interpreter", "imports", "compile")
CASE_STAGES = ("read", "preprocess", "encode", "decode", "postprocess", "write")
COLUMNS = ("case", "status", "configuration", "boxes", "slices_encoded", *STARTUP_STAGES, *CASE_STAGES, "total")


def interpreter_seconds() -> float:
    """Seconds from this process's start to now (Linux /proc); 0.0 where that cannot be read."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


class StageTimer:
    """Accumulates wall-clock seconds per named stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] += n


def case_row(
    case: str, status: str, configuration: str, timer: StageTimer, startup: dict[str, float]
) -> dict[str, str]:
    """One CSV row; `configuration` names what ran (model, precision, prompts); `startup` holds the
    process's start-up stages (charged to the first case it runs)."""
    stages = {**{s: startup.get(s, 0.0) for s in STARTUP_STAGES}, **{s: timer.seconds[s] for s in CASE_STAGES}}
    row = {"case": case, "status": status, "configuration": configuration, "boxes": str(timer.counts["boxes"])}
    row["slices_encoded"] = str(timer.counts["slices_encoded"])
    row.update({k: f"{v:.4f}" for k, v in stages.items()})
    row["total"] = f"{sum(stages.values()):.4f}"
    return row


class TimerFileError(Exception):
    """A timer CSV whose header is not this timer's: its rows are never mixed with ours."""


def append_rows(path: Path, rows: list[dict[str, str]]) -> None:
    """Adds rows to the CSV at `path` (with a header when the file is new) all or nothing: the grown file
    is written whole and renamed over it (`atomic.py`), so a full disk or a kill leaves the old file whole.
    Raises TimerFileError, and leaves the file as it is, when it has other columns."""
    old = path.read_text() if path.exists() else ""
    header = next(csv.reader(io.StringIO(old)), None)
    if header is not None and header != list(COLUMNS):
        raise TimerFileError(f"{path} has columns other than this timer's")
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS)
    if not old:
        writer.writeheader()
    writer.writerows(rows)
    write_atomically(path, (old + text.getvalue()).encode())


def summary_line(row: dict[str, str]) -> str:
    parts = ", ".join(f"{s} {float(row[s]):.3f}" for s in (*STARTUP_STAGES, *CASE_STAGES) if float(row[s]) > 0)
    return f"{row['case']}: {row['status']}, {row['configuration']}, {row['boxes']} boxes, {row['total']} s ({parts})"
