"""One self-contained HTML page about a scored run: ``OUT_DIR/index.html``, opened from disk.

The page shows the leaderboard (``leaderboard.summarize`` over ``metrics.csv``) as a table and a bar
chart, the per-case DSC of every modality group as a box-and-dots plot, overlays of the worst cases
(ground-truth contours green, predicted contours magenta; a 3D case on the slice where gts and segs
disagree most), the running time per case (``--timing``), a second run side by side (``--compare``)
and every case in a table sorted by clicking a column header. Charts are inline SVG, the overlays
inline PNG data URIs, the script a few lines inline: no file beside it, no network.

Only the worst cases' image, gts and segs are read. A case whose seg was not scored (status other
than ok) or whose overlay cannot be drawn (a seg that is missing or unreadable now) is listed with
its reason; it never stops the report.
"""

import base64
import csv
import html
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from medsam_laptop.io.atomic import write_atomically
from medsam_laptop.io.npz import NpzError, read_arrays

from . import leaderboard
from .compute_metrics import DEFAULT_MAX_SEG_BYTES, OK, CaseResult, SegError, read_segs

MAX_SIDE = 384  # overlay size: the longer side, in pixels
GT_COLOUR = (0, 200, 0)  # BGR: green
SEG_COLOUR = (255, 0, 255)  # BGR: magenta
METRICS_COLUMNS = ("case", "dsc", "nsd", "status", "detail")
# Timing CSV kind -> (case column, seconds column): medsam_laptop.inference.timer and evaluation.time_eval.
TIMING_COLUMNS = {"pipeline timer": ("case", "total"), "time-eval": ("CaseName", "RunningTime")}
TOP_CHANGES = 10


class ReportError(Exception):
    """An input the report cannot be built from (a usage error); the message is one line."""


@dataclass(frozen=True)
class Run:
    """A scored run: ``metrics.csv`` of a folder written by compute-metrics, labelled by the folder name."""

    label: str
    results: list[CaseResult]

    @property
    def by_case(self) -> dict[str, CaseResult]:
        return {r.case: r for r in self.results}


@dataclass(frozen=True)
class Timing:
    """Seconds per case from a timing CSV; ``kind`` is a key of TIMING_COLUMNS."""

    kind: str
    seconds: dict[str, float]


@dataclass(frozen=True)
class Overlay:
    """The overlay of one case: a PNG, or the ``problem`` that kept it from being drawn.

    ``slice_index`` is the slice shown of a 3D case (of ``depth`` slices), None for a 2D case.
    """

    result: CaseResult
    png: bytes = b""
    slice_index: int | None = None
    depth: int = 0
    problem: str = ""


def read_run(metrics_dir: Path) -> Run:
    """The run whose ``metrics.csv`` is in ``metrics_dir``; an empty DSC or NSD field reads as NaN.

    Raises:
        ReportError: no metrics.csv, a column missing, or a score that is not a number.
    """
    path = Path(metrics_dir) / "metrics.csv"
    if not path.is_file():
        raise ReportError(f"no metrics.csv in {metrics_dir}")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in METRICS_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ReportError(f"{path}: no column {', '.join(missing)}")
        try:
            results = [
                CaseResult(row["case"], _number(row["dsc"]), _number(row["nsd"]), row["status"], row["detail"])
                for row in reader
            ]
        except (ValueError, csv.Error) as error:
            raise ReportError(f"{path} line {reader.line_num}: {error}") from None
    return Run(Path(metrics_dir).resolve().name, sorted(results, key=lambda r: r.case))


def _number(field: str) -> float:
    return float(field) if field else math.nan


def read_timing(path: Path) -> Timing:
    """Seconds per case of a pipeline timer CSV (``efficiency_timer.csv``: ``case``, ..., ``total``) or
    of a time-eval ``<team>_running_time.csv`` (``CaseName``, ``RunningTime``), told apart by the header.

    A case timed twice (a timer CSV appended by two runs) keeps its last row; an empty time is skipped.

    Raises:
        ReportError: an unreadable file, a header of neither kind, or a time that is not a number.
    """
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            kinds = [kind for kind, columns in TIMING_COLUMNS.items() if set(columns) <= set(header)]
            if not kinds:
                expected = " or ".join(",".join(columns) for columns in TIMING_COLUMNS.values())
                raise ReportError(f"{path}: header {','.join(header)!r} has neither {expected}")
            case_column, seconds_column = TIMING_COLUMNS[kinds[0]]
            seconds = {}
            for row in reader:
                if row[seconds_column]:
                    seconds[row[case_column]] = float(row[seconds_column])
    except OSError as error:
        raise ReportError(f"cannot read {path} ({error.strerror or error})") from None
    except (ValueError, csv.Error) as error:
        raise ReportError(f"{path} line {reader.line_num}: {error}") from None
    return Timing(kinds[0], seconds)


def worst_cases(results: Sequence[CaseResult], n: int) -> list[CaseResult]:
    """The ``n`` lowest-DSC scored cases of every modality group, groups in name order.

    Cases not scored (status other than ok) and NaN DSCs are left out: the former are listed apart.
    """
    ranked = sorted((r for r in results if r.status == OK and not math.isnan(r.dsc)), key=lambda r: (r.dsc, r.case))
    by_group: dict[str, list[CaseResult]] = {}
    for r in ranked:
        by_group.setdefault(r.modality, []).append(r)
    return [r for group in sorted(by_group) for r in by_group[group][:n]]


def disagreement_slice(gts: np.ndarray, segs: np.ndarray) -> int:
    """Index along axis 0 of (D, H, W) label maps with the most voxels where gts != segs (the first
    of equals); where they agree everywhere, the slice with the most ground-truth voxels."""
    disagreement = np.count_nonzero(gts != segs, axis=(1, 2))
    if disagreement.any():
        return int(np.argmax(disagreement))
    return int(np.argmax(np.count_nonzero(gts, axis=(1, 2))))


def overlay_png(image: np.ndarray, gts: np.ndarray, segs: np.ndarray, max_side: int = MAX_SIDE) -> bytes:
    """image (H, W) or (H, W, 3) RGB, gts and segs (H, W) label maps -> PNG bytes of the image scaled
    to ``max_side`` on its longer side, each label's contour drawn (gts GT_COLOUR, segs SEG_COLOUR)."""
    h, w = gts.shape
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    rows = np.minimum((np.arange(size[1]) / scale).astype(int), h - 1)
    cols = np.minimum((np.arange(size[0]) / scale).astype(int), w - 1)
    canvas = _to_bgr(image)
    canvas = cv2.resize(canvas, size, interpolation=cv2.INTER_AREA) if scale < 1 else canvas[rows][:, cols]
    canvas = np.ascontiguousarray(canvas)
    for labels, colour in ((gts, GT_COLOUR), (segs, SEG_COLOUR)):
        scaled = labels[rows][:, cols]  # nearest neighbour, any dtype
        for label in np.unique(scaled[scaled != 0]):
            contours, _ = cv2.findContours((scaled == label).astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(canvas, contours, -1, colour, 1)
    ok, png = cv2.imencode(".png", canvas, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    assert ok, "cv2.imencode failed on a uint8 BGR image"
    return png.tobytes()


def _to_bgr(image: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1) or (H, W, 3) RGB of any numeric dtype -> (H, W, 3) uint8 BGR (min-max scaled
    unless already uint8)."""
    if image.dtype != np.uint8:
        image = image.astype(np.float64)
        low, high = float(np.min(image)), float(np.max(image))
        image = ((image - low) * (255.0 / (high - low) if high > low else 0.0)).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)


def load_overlay(result: CaseResult, img_dir: Path, gt_dir: Path, seg_dir: Path) -> Overlay:
    """The overlay of one case from ``img_dir`` (``imgs``), ``gt_dir`` (``gts``) and ``seg_dir`` (``segs``,
    read as untrusted by ``read_segs``). Whatever cannot be read or does not fit is the Overlay's problem."""
    case = result.case
    try:
        gts = read_arrays(gt_dir / case, ["gts"], max_bytes=DEFAULT_MAX_SEG_BYTES)["gts"]
        image = read_arrays(img_dir / case, ["imgs"], max_bytes=DEFAULT_MAX_SEG_BYTES)["imgs"]
    except NpzError as error:
        return Overlay(result, problem=f"image or ground truth unreadable: {error}")
    try:
        segs = read_segs(seg_dir / case, gts.shape)
    except SegError as error:
        return Overlay(result, problem=f"seg {error.status}: {error}")
    if gts.ndim not in (2, 3) or gts.size == 0 or image.shape not in (gts.shape, (*gts.shape, 1), (*gts.shape, 3)):
        return Overlay(result, problem=f"imgs shape {image.shape} and gts shape {gts.shape} cannot be drawn")
    if gts.ndim == 2:
        return Overlay(result, overlay_png(image, gts, segs))
    z = disagreement_slice(gts, segs)
    return Overlay(result, overlay_png(image[z], gts[z], segs[z]), z, gts.shape[0])


def build_report(
    metrics_dir: Path,
    seg_dir: Path,
    gt_dir: Path,
    img_dir: Path,
    out_dir: Path,
    timing: Path | None = None,
    compare: Path | None = None,
    worst: int = 3,
) -> Path:
    """Write ``out_dir/index.html`` about the run in ``metrics_dir``; returns its path.

    Raises:
        ReportError: a folder missing, no metrics.csv (here or in ``compare``), an unreadable timing
            CSV, or ``worst`` < 0. Nothing is written then.
    """
    for name, folder in (("seg", seg_dir), ("gt", gt_dir), ("image", img_dir), ("metrics", metrics_dir)):
        if not Path(folder).is_dir():
            raise ReportError(f"{name} folder {folder} is not a folder")
    if worst < 0:
        raise ReportError(f"--worst must be >= 0, not {worst}")
    run = read_run(metrics_dir)
    other = read_run(compare) if compare is not None else None
    times = read_timing(timing) if timing is not None else None
    overlays = [load_overlay(r, Path(img_dir), Path(gt_dir), Path(seg_dir)) for r in worst_cases(run.results, worst)]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return write_atomically(out_dir / "index.html", render_page(run, overlays, other, times).encode())


def render_page(run: Run, overlays: Sequence[Overlay], other: Run | None = None, timing: Timing | None = None) -> str:
    """The whole HTML page: leaderboard, comparison, unscored cases, distribution, worst cases, timing,
    the case table. Every text from the inputs is escaped."""
    rows = leaderboard.summarize((r.case, r.dsc, r.nsd) for r in run.results)
    sections = [
        _section("Leaderboard", f'<div class="side">{_leaderboard_table(rows)}{_bar_chart_svg(rows)}</div>'),
        _section(f"Compared with {other.label}", _compare_html(run, other)) if other else "",
        _section("Cases not scored or not drawn", _problems_html(run.results, overlays)),
        _section("DSC per case, by group", _distribution_svg(run.results)),
        _section("Worst cases", _overlays_html(overlays)),
        _section("Running time", _timing_html(run.results, timing)) if timing else "",
        _section("All cases (click a column header to sort)", _case_table(run, other, timing)),
    ]
    title = html.escape(f"Segmentation report: {run.label}")
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
        f"<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
        f"<p>{len(run.results)} cases, {len(rows) - 1} groups.</p>\n"
        f"{''.join(sections)}<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )


def _section(heading: str, body: str) -> str:
    return f"<section>\n<h2>{html.escape(heading)}</h2>\n{body}\n</section>\n"


def _score(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.4f}"


def _signed(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:+.4f}"


def _change(value: float) -> str:
    """A signed change, as a span coloured by its sign."""
    sign = "up" if value > 0 else "down" if value < 0 else "same"
    return f'<span class="{sign}">{_signed(value)}</span>'


def _cell(text: str, sort: float | None = None) -> str:
    """A table cell of escaped ``text``; a ``sort`` number (NaN: blank, sorted last) is what the
    sorting script compares instead of the text."""
    if sort is None:
        return f"<td>{html.escape(text)}</td>"
    return f'<td data-sort="{"" if math.isnan(sort) else repr(float(sort))}">{html.escape(text)}</td>'


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], sortable: bool = False) -> str:
    """A table of already-rendered ``<td>`` cells under an escaped header."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "\n".join(f"<tr>{''.join(cells)}</tr>" for cells in rows)
    kind = ' class="sortable"' if sortable else ""
    return f"<table{kind}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>\n"


def _leaderboard_table(rows: Sequence[leaderboard.GroupScore]) -> str:
    return _table(
        ["group", "cases", "DSC", "NSD"],
        [[_cell(r.group), _cell(str(r.cases)), _cell(_score(r.dsc)), _cell(_score(r.nsd))] for r in rows],
    )


def _bar_chart_svg(rows: Sequence[leaderboard.GroupScore], width: int = 760, height: int = 300) -> str:
    """Grouped bars of DSC and NSD per group, the mean of group means last; y from 0 to 1."""
    left, top, bottom = 40, 24, 110
    plot_h = height - top - bottom
    slot = (width - left - 10) / len(rows)
    y = lambda v: top + plot_h * (1 - (0.0 if math.isnan(v) else v))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" class="chart">']
    for tick in np.linspace(0, 1, 6):
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.1f}</text>')
    for i, row in enumerate(rows):
        x0 = left + i * slot
        for offset, value, kind in ((0.15, row.dsc, "dsc"), (0.5, row.nsd, "nsd")):
            parts.append(
                f'<rect x="{x0 + offset * slot:.1f}" y="{y(value):.1f}" width="{0.35 * slot:.1f}" '
                f'height="{top + plot_h - y(value):.1f}" class="{kind}"><title>{html.escape(row.group)} '
                f"{kind.upper()} {_score(value)}</title></rect>"
            )
        label_x, label_y = x0 + 0.5 * slot, top + plot_h + 14
        parts.append(
            f'<text x="{label_x:.1f}" y="{label_y}" text-anchor="end" '
            f'transform="rotate(-35 {label_x:.1f} {label_y})">{html.escape(row.group)}</text>'
        )
    parts.append(f'<rect x="{width - 130}" y="4" width="10" height="10" class="dsc"/>')
    parts.append(f'<text x="{width - 116}" y="13">DSC</text>')
    parts.append(f'<rect x="{width - 76}" y="4" width="10" height="10" class="nsd"/>')
    parts.append(f'<text x="{width - 62}" y="13">NSD</text>')
    return "\n".join(parts) + "\n</svg>\n"


def _distribution_svg(results: Sequence[CaseResult], width: int = 760) -> str:
    """Per group: a box from the first to the third quartile of the case DSCs, the median, a whisker
    from the lowest to the highest, and one dot per case (red: not scored)."""
    by_group: dict[str, list[CaseResult]] = {}
    for r in results:
        by_group.setdefault(r.modality, []).append(r)
    label_w, right, row_h, top = 170, 90, 30, 10
    plot_w = width - label_w - right
    height = top + row_h * len(by_group) + 30
    x = lambda v: label_w + plot_w * v
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" class="chart">']
    for tick in np.linspace(0, 1, 11):
        parts.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{top}" y2="{height - 24}" class="grid"/>')
        parts.append(f'<text x="{x(tick):.1f}" y="{height - 8}" text-anchor="middle">{tick:.1f}</text>')
    for i, (group, cases) in enumerate(sorted(by_group.items())):
        mid = top + row_h * (i + 0.5)
        scores = [r.dsc for r in cases if not math.isnan(r.dsc)]
        parts.append(f'<text x="{label_w - 8}" y="{mid + 4:.1f}" text-anchor="end">{html.escape(group)}</text>')
        nan_note = f", {len(cases) - len(scores)} NaN" if len(scores) < len(cases) else ""
        parts.append(f'<text x="{width - right + 8}" y="{mid + 4:.1f}">n={len(cases)}{nan_note}</text>')
        if scores:
            low, q1, median, q3, high = np.percentile(scores, [0, 25, 50, 75, 100])
            parts.append(f'<line x1="{x(low):.1f}" x2="{x(high):.1f}" y1="{mid:.1f}" y2="{mid:.1f}" class="whisker"/>')
            parts.append(
                f'<rect x="{x(q1):.1f}" y="{mid - row_h * 0.3:.1f}" width="{x(q3) - x(q1):.1f}" '
                f'height="{row_h * 0.6:.1f}" class="box"/>'
            )
            parts.append(
                f'<line x1="{x(median):.1f}" x2="{x(median):.1f}" y1="{mid - row_h * 0.3:.1f}" '
                f'y2="{mid + row_h * 0.3:.1f}" class="median"/>'
            )
        for j, r in enumerate(c for c in cases if not math.isnan(c.dsc)):
            jitter = ((j * 0.618034) % 1 - 0.5) * row_h * 0.5  # a fixed spread, the same on every build
            kind = "dot" if r.status == OK else "dot failed"
            parts.append(
                f'<circle cx="{x(r.dsc):.1f}" cy="{mid + jitter:.1f}" r="2.5" class="{kind}">'
                f"<title>{html.escape(r.case)}: DSC {_score(r.dsc)}</title></circle>"
            )
    return "\n".join(parts) + "\n</svg>\n"


def _problems_html(results: Sequence[CaseResult], overlays: Sequence[Overlay]) -> str:
    """The cases not scored (status from metrics.csv) and the worst cases whose overlay was not drawn."""
    unscored = [[_cell(r.case), _cell(r.status), _cell(r.detail)] for r in results if r.status != OK]
    undrawn = [[_cell(o.result.case), _cell("not drawn"), _cell(o.problem)] for o in overlays if o.problem]
    if not unscored and not undrawn:
        return "<p>None: every case was scored and every overlay drawn.</p>"
    summary = f"<p>{len(unscored)} cases not scored (DSC = NSD = 0), {len(undrawn)} overlays not drawn.</p>\n"
    return summary + _table(["case", "status", "detail"], unscored + undrawn)


def _overlays_html(overlays: Sequence[Overlay]) -> str:
    """The drawn overlays, one row per group, each captioned with its case, scores and 3D slice."""
    by_group: dict[str, list[str]] = {}
    for o in overlays:
        if o.problem:
            continue
        r = o.result
        where = f" · slice z = {o.slice_index} of {o.depth} (most disagreeing voxels)" if o.depth else ""
        data = base64.b64encode(o.png).decode("ascii")
        by_group.setdefault(r.modality, []).append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(r.case)}">'
            f"<figcaption><b>{html.escape(r.case)}</b><br>"
            f"{html.escape(f'DSC {_score(r.dsc)} · NSD {_score(r.nsd)}{where}')}</figcaption></figure>"
        )
    if not by_group:
        return "<p>No overlay.</p>"
    legend = (
        '<p class="legend"><span class="gt">&#9632;</span> ground truth &nbsp; '
        '<span class="seg">&#9632;</span> prediction</p>\n'
    )
    return legend + "".join(
        f'<h3>{html.escape(group)}</h3>\n<div class="overlays">\n' + "\n".join(figures) + "\n</div>\n"
        for group, figures in by_group.items()
    )


def _compare_html(run: Run, other: Run) -> str:
    """Per-group scores of both runs and the change (this minus other); the cases whose DSC changed most."""
    mine = {r.group: r for r in leaderboard.summarize((r.case, r.dsc, r.nsd) for r in run.results)}
    theirs = {r.group: r for r in leaderboard.summarize((r.case, r.dsc, r.nsd) for r in other.results)}
    groups = sorted((set(mine) | set(theirs)) - {leaderboard.OVERALL}) + [leaderboard.OVERALL]
    missing = leaderboard.GroupScore("", 0, math.nan, math.nan)
    group_rows = []
    for group in groups:
        a, b = mine.get(group, missing), theirs.get(group, missing)
        group_rows.append(
            [_cell(group), _cell(f"{a.cases} / {b.cases}")]
            + [_cell(_score(a.dsc)), _cell(_score(b.dsc)), f"<td>{_change(a.dsc - b.dsc)}</td>"]
            + [_cell(_score(a.nsd)), _cell(_score(b.nsd)), f"<td>{_change(a.nsd - b.nsd)}</td>"]
        )
    this, that = html.escape(run.label), html.escape(other.label)
    table = _table(
        ["group", "cases", f"DSC {run.label}", f"DSC {other.label}", "change"]
        + [f"NSD {run.label}", f"NSD {other.label}", "change"],
        group_rows,
    )
    theirs_by_case = other.by_case
    changes = sorted(
        (
            (r.dsc - theirs_by_case[r.case].dsc, r, theirs_by_case[r.case])
            for r in run.results
            if r.case in theirs_by_case and not math.isnan(r.dsc - theirs_by_case[r.case].dsc)
        ),
        key=lambda change: (-abs(change[0]), change[1].case),
    )[:TOP_CHANGES]
    case_rows = [
        [_cell(a.case), _cell(a.modality), _cell(_score(a.dsc)), _cell(_score(b.dsc)), f"<td>{_change(d)}</td>"]
        for d, a, b in changes
    ]
    only = len(set(run.by_case) ^ set(theirs_by_case))
    return (
        f"<p>Change = {this} minus {that}; {only} cases are in one run only.</p>\n{table}"
        f"<h3>The {len(case_rows)} cases whose DSC changed most</h3>\n"
        + _table(["case", "group", f"DSC {run.label}", f"DSC {other.label}", "change"], case_rows)
    )


def _timing_html(results: Sequence[CaseResult], timing: Timing) -> str:
    """Total, mean, median and slowest case, then per group; only the run's cases count."""
    timed = {r.case: timing.seconds[r.case] for r in results if r.case in timing.seconds}
    if not timed:
        return f"<p>The {html.escape(timing.kind)} CSV times none of the run's cases.</p>"
    slowest = max(timed, key=timed.get)
    summary = (
        f"{timing.kind} CSV: {len(timed)} of {len(results)} cases timed, total {sum(timed.values()):.1f} s, "
        f"mean {statistics.mean(timed.values()):.2f} s, median {statistics.median(timed.values()):.2f} s, "
        f"slowest {slowest} ({timed[slowest]:.2f} s)"
    )
    by_group: dict[str, list[float]] = {}
    for r in results:
        if r.case in timed:
            by_group.setdefault(r.modality, []).append(timed[r.case])
    rows = [
        [_cell(g), _cell(str(len(s))), _cell(f"{statistics.mean(s):.2f}"), _cell(f"{max(s):.2f}")]
        for g, s in sorted(by_group.items())
    ]
    return f"<p>{html.escape(summary)}.</p>\n" + _table(["group", "cases timed", "mean s", "max s"], rows)


def _case_table(run: Run, other: Run | None, timing: Timing | None) -> str:
    header = ["case", "group", "DSC", "NSD", "status", "detail"]
    header += ["seconds"] if timing else []
    header += [f"DSC {other.label}", "DSC change"] if other else []
    theirs = other.by_case if other else {}
    rows = []
    for r in run.results:
        cells = [_cell(r.case), _cell(r.modality), _cell(_score(r.dsc), r.dsc), _cell(_score(r.nsd), r.nsd)]
        cells += [_cell(r.status), _cell(r.detail)]
        if timing:
            seconds = timing.seconds.get(r.case, math.nan)
            cells.append(_cell("" if math.isnan(seconds) else f"{seconds:.3f}", seconds))
        if other:
            before = theirs[r.case].dsc if r.case in theirs else math.nan
            cells += [_cell(_score(before), before), _cell(_signed(r.dsc - before), r.dsc - before)]
        rows.append(cells)
    return _table(header, rows, sortable=True)


STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1240px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 2px 8px; text-align: left; }
td { font-variant-numeric: tabular-nums; }
thead th { background: #f0f0f0; }
table.sortable th { cursor: pointer; }
table.sortable th[data-order="asc"]::after { content: " \\25B2"; }
table.sortable th[data-order="desc"]::after { content: " \\25BC"; }
.up { color: #087f23; } .down { color: #c62828; }
svg.chart text { font-size: 11px; fill: #333; }
svg.chart .grid { stroke: #e4e4e4; } .dsc { fill: #3f7fbf; } .nsd { fill: #f09a3e; }
svg.chart .box { fill: #dfe9f5; stroke: #3f7fbf; } svg.chart .median { stroke: #1a4f85; stroke-width: 2; }
svg.chart .whisker { stroke: #7a9cc0; } svg.chart .dot { fill: #222; opacity: 0.7; }
svg.chart .dot.failed { fill: #d00; opacity: 1; }
.side { display: flex; gap: 24px; align-items: flex-start; }
.overlays { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; width: 384px; } figcaption { font-size: 12px; overflow-wrap: anywhere; }
.legend .gt { color: rgb(0, 200, 0); } .legend .seg { color: rgb(255, 0, 255); }
"""

# Column sorting (blank cells last), and on load the count of decoded images in <body data-images-decoded>.
SCRIPT = """
document.querySelectorAll("table.sortable").forEach(table => {
  const headers = Array.from(table.tHead.rows[0].cells);
  headers.forEach((th, column) => th.addEventListener("click", () => {
    const ascending = th.dataset.order !== "asc";
    headers.forEach(h => delete h.dataset.order);
    th.dataset.order = ascending ? "asc" : "desc";
    const key = row => row.cells[column].dataset.sort ?? row.cells[column].textContent;
    const rows = Array.from(table.tBodies[0].rows);
    const numeric = rows.every(row => key(row) === "" || !isNaN(Number(key(row))));
    rows.sort((a, b) => {
      const [x, y] = [key(a), key(b)];
      if (x === "" || y === "") return (x === "") - (y === "");
      const order = numeric ? Number(x) - Number(y) : x.localeCompare(y);
      return ascending ? order : -order;
    });
    table.tBodies[0].append(...rows);
  }));
});
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  document.body.dataset.imagesDecoded = images.filter(img => img.complete && img.naturalWidth > 0).length;
});
"""
