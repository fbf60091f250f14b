"""Score a folder of segmentations against a folder of ground truths, like the organizers' run.

Cases are the ``*.npz`` files of the ground-truth folder. Seg files are untrusted: a missing,
unreadable, too large or wrongly shaped one scores 0 (DSC and NSD) and is listed with its reason;
the run never stops for it. Outputs: per-case CSV, per-modality summary (CSV + markdown) and a PNG.
"""

from __future__ import annotations

import csv
import math
import multiprocessing
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medsam_laptop.io.case_files import modality_group
from medsam_laptop.io.npz import ArrayHeader, NpzError, read_arrays

from . import leaderboard
from .metrics import MetricOptions, case_scores

if TYPE_CHECKING:
    from distributed import Client

DEFAULT_MAX_SEG_BYTES = 1 << 30
OK = "ok"
STATUS_OF_NPZ_REASON = {"pickled": "wrong-dtype", "too-large": "too-large"}  # any other: "unreadable"


class SegError(Exception):
    """A seg file that cannot be scored; ``status`` is the short reason written to the CSV."""

    def __init__(self, status: str, detail: str):
        super().__init__(detail)
        self.status = status


@dataclass(frozen=True)
class CaseResult:
    """Scores of one case. ``status`` is OK or the reason the seg was scored 0; ``detail`` says more."""

    case: str
    dsc: float
    nsd: float
    status: str = OK
    detail: str = ""

    @property
    def modality(self) -> str:
        return modality_group(self.case)


def read_segs(path: Path, shape: tuple[int, ...], max_bytes: int = DEFAULT_MAX_SEG_BYTES) -> np.ndarray:
    """Load the ``segs`` array of an untrusted npz file.

    The array header (shape == ``shape``, an integer, bool or float dtype, at most ``max_bytes``)
    is checked before any data is decompressed; pickles are refused (medsam_laptop.io.npz).

    Raises:
        SegError: with status missing / too-large / unreadable / wrong-dtype / wrong-shape.
    """
    if not path.is_file():
        raise SegError("missing", "no seg file")

    def check(_: str, header: ArrayHeader) -> None:
        if header.dtype.kind not in "biuf" or header.dtype.itemsize > 8:
            raise SegError("wrong-dtype", f"segs dtype {header.dtype}")
        if header.shape != tuple(shape):
            raise SegError("wrong-shape", f"segs shape {header.shape}, gts shape {tuple(shape)}")

    try:
        return read_arrays(path, ["segs"], max_bytes=max_bytes, check=check)["segs"]
    except NpzError as error:
        raise SegError(STATUS_OF_NPZ_REASON.get(error.reason, "unreadable"), str(error)) from None


def score_case(
    case: str, seg_dir: Path, gt_dir: Path, options: MetricOptions, max_seg_bytes: int = DEFAULT_MAX_SEG_BYTES
) -> CaseResult:
    """Score one case; a seg file that cannot be scored gives DSC = NSD = 0 and its reason."""
    with np.load(gt_dir / case, allow_pickle=False) as gt:
        gts = gt["gts"]
        spacing = gt["spacing"] if case.startswith("3D") else None
    try:
        segs = read_segs(seg_dir / case, gts.shape, max_seg_bytes)
    except SegError as error:
        return CaseResult(case, 0.0, 0.0, error.status, str(error))
    dsc, nsd = case_scores(gts, segs, spacing, options)
    return CaseResult(case, dsc, nsd)


def score_folder(
    seg_dir: Path,
    gt_dir: Path,
    options: MetricOptions = MetricOptions(),
    workers: int = 1,
    cases: Sequence[str] | None = None,
    max_seg_bytes: int = DEFAULT_MAX_SEG_BYTES,
    progress: bool = False,
    client: Client | None = None,
) -> list[CaseResult]:
    """Score every case of ``gt_dir`` (or the given ``cases``), ``workers`` processes in parallel,
    or one Dask task a case on the workers of ``client`` (evaluation.cluster.connect), which must
    see ``seg_dir`` and ``gt_dir`` at the same paths.

    Returns:
        One CaseResult per case, sorted by case name.
    """
    seg_dir, gt_dir = Path(seg_dir), Path(gt_dir)
    names = sorted(cases if cases is not None else (p.name for p in gt_dir.glob("*.npz")))
    score = partial(score_case, seg_dir=seg_dir, gt_dir=gt_dir, options=options, max_seg_bytes=max_seg_bytes)
    bar = ProgressBar(len(names), enabled=progress)
    by_case = {}
    with ExitStack() as stack:
        if client is not None:
            from .cluster import map_unordered

            # One more try for a task that raised: a transient read error on a shared file system.
            finished = map_unordered(client, score, names, retries=1)
        elif workers > 1:
            finished = stack.enter_context(multiprocessing.Pool(workers)).imap_unordered(score, names)
        else:
            finished = map(score, names)
        for result in finished:
            by_case[result.case] = result
            bar.advance(result.case)
    bar.close()
    return [by_case[name] for name in names]


class ProgressBar:
    """A one-line progress bar on stderr (redrawn in place on a terminal, every 10% otherwise)."""

    def __init__(self, total: int, enabled: bool = True, width: int = 30):
        self.total, self.enabled, self.width = total, enabled and total > 0, width
        self.done, self.start = 0, time.monotonic()
        self.interactive = sys.stderr.isatty()

    def advance(self, label: str = "") -> None:
        self.done += 1
        if not self.enabled:
            return
        if not self.interactive and self.done * 10 // self.total == (self.done - 1) * 10 // self.total:
            return
        filled = self.width * self.done // self.total
        line = (
            f"[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} "
            f"{time.monotonic() - self.start:.0f}s {label[:40]}"
        )
        sys.stderr.write(f"\r{line:<100}" if self.interactive else line + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.interactive:
            sys.stderr.write("\n")


def format_score(value: float) -> str:
    """A score as the organizers' CSV writes it (pandas): shortest repr, NaN as an empty field."""
    return "" if math.isnan(value) else repr(float(value))


def write_outputs(results: list[CaseResult], out_dir: Path) -> dict[str, Path]:
    """Write metrics.csv, summary.csv, summary.md and summary.png into ``out_dir``.

    metrics.csv: ``case,dsc,nsd,modality,status,detail``, sorted by case (the organizers' first
    three columns). summary.csv / .md: per-modality means and the mean of modality means.

    Returns:
        The written paths by kind: "cases", "summary_csv", "summary_md", "plot".
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        kind: out_dir / name
        for kind, name in (
            ("cases", "metrics.csv"),
            ("summary_csv", "summary.csv"),
            ("summary_md", "summary.md"),
            ("plot", "summary.png"),
        )
    }
    with open(paths["cases"], "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["case", "dsc", "nsd", "modality", "status", "detail"])
        writer.writerows(
            [r.case, format_score(r.dsc), format_score(r.nsd), r.modality, r.status, r.detail]
            for r in sorted(results, key=lambda r: r.case)
        )

    rows = leaderboard.summarize((r.case, r.dsc, r.nsd) for r in results)
    with open(paths["summary_csv"], "w", newline="") as f:
        f.write("group,cases,dsc,nsd\n")
        f.writelines(f"{row.group},{row.cases},{row.dsc:.4f},{row.nsd:.4f}\n" for row in rows)
    failed = [r for r in results if r.status != OK]
    markdown = leaderboard.to_markdown(rows, title="Scores per modality group")
    if failed:
        markdown += f"\n## Scored 0 ({len(failed)} cases)\n\n" + "".join(
            f"- `{r.case}`: {r.status} ({r.detail})\n" for r in failed
        )
    paths["summary_md"].write_text(markdown)
    leaderboard.plot(rows, str(paths["plot"]))
    return paths
