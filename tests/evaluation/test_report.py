"""The HTML report on real cases: its sections, broken segs, --compare, --timing, usage errors, a real browser."""

import base64
import csv
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import require
from evaluation import leaderboard
from evaluation.cli import main
from evaluation.compute_metrics import CaseResult
from evaluation.report import (
    GT_COLOUR,
    SEG_COLOUR,
    ReportError,
    Run,
    Timing,
    disagreement_slice,
    overlay_png,
    read_run,
    read_timing,
    render_page,
    worst_cases,
)
from medsam_laptop.inference.timer import StageTimer, append_rows, case_row

US = ["2DBox_US_stubus_01.npz", "2DBox_US_stubus_04.npz", "2DBox_US_stubus_07.npz", "2DBox_US_stubus_10.npz"]
PET = ["3DBox_PET_ibsi-sts_STS001.npz", "3DBox_PET_ibsi-sts_STS002.npz", "3DBox_PET_ibsi-sts_STS003.npz"]
CT = ["2DBox_CT_sammed2d_amos-0004-75.npz"]
MISSING, BROKEN = US[0], US[1]  # no seg file; garbage bytes
SLICED = PET[2]  # segs = gts except one slice, emptied: the overlay must show that slice


@dataclass(frozen=True)
class Folders:
    imgs: Path
    gts: Path
    segs: Path
    metrics: Path
    perfect_metrics: Path  # a second run: segs = gts
    sliced_z: int
    depth: int


def run_cli(*args) -> int:
    return main([str(a) for a in args])


def report_args(f: Folders, out: Path, *extra) -> list:
    return ["report", "-m", f.metrics, "-s", f.segs, "-g", f.gts, "-i", f.imgs, "-o", out, *extra]


@pytest.fixture(scope="module")
def folders(cases_dir, tmp_path_factory) -> Folders:
    """A seg folder built from real gts (shifted, so DSC < 1), scored by compute-metrics, and a perfect run."""
    root = tmp_path_factory.mktemp("report")
    gts, segs, perfect = root / "gts", root / "segs", root / "perfect"
    for folder in (gts, segs, perfect):
        folder.mkdir()
    for i, case in enumerate(US + PET + CT):
        shutil.copy(cases_dir / "gts" / case, gts / case)
        with np.load(gts / case) as data:
            labels = data["gts"]
        np.savez_compressed(perfect / case, segs=labels)
        if case == SLICED:
            sliced_z = int(np.flatnonzero(np.count_nonzero(labels, axis=(1, 2)))[0]) + 5  # not the largest slice
            assert labels[sliced_z].any()
            shifted, depth = labels.copy(), labels.shape[0]
            shifted[sliced_z] = 0
        else:
            shifted = np.roll(labels, 1 + i % 3, axis=-1)
        if case != MISSING:
            np.savez_compressed(segs / case, segs=shifted)
    (segs / BROKEN).write_bytes(b"\x00garbage, not an npz\xff" * 10)
    assert run_cli("compute-metrics", "-s", segs, "-g", gts, "-o", root / "metrics", "-q") == 1  # two not scored
    assert run_cli("compute-metrics", "-s", perfect, "-g", gts, "-o", root / "perfect-metrics", "-q") == 0
    return Folders(cases_dir / "imgs", gts, segs, root / "metrics", root / "perfect-metrics", sliced_z, depth)


@pytest.fixture(scope="module")
def page(folders, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("page")
    assert run_cli(*report_args(folders, out)) == 0
    return out / "index.html"


def section(text: str, heading: str) -> str:
    """The HTML of the <section> whose <h2> starts with ``heading``."""
    match = re.search(rf"<h2>{re.escape(heading)}.*?</h2>(.*?)</section>", text, re.S)
    assert match, f"no section {heading!r}"
    return match.group(1)


def cells(row_html: str) -> list[str]:
    return [re.sub("<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row_html, re.S)]


def table_rows(section_html: str, table: int = 0) -> list[list[str]]:
    body = re.findall(r"<tbody>(.*?)</tbody>", section_html, re.S)[table]
    return [cells(row) for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def test_report_shows_the_leaderboard_overlays_and_every_case(folders, page):
    text = page.read_text()
    run = read_run(folders.metrics)
    rows = leaderboard.summarize((r.case, r.dsc, r.nsd) for r in run.results)
    assert [r.group for r in rows] == ["2DBox_CT", "2DBox_US", "3DBox_PET", leaderboard.OVERALL]
    board = section(text, "Leaderboard")
    assert table_rows(board) == [[r.group, str(r.cases), f"{r.dsc:.4f}", f"{r.nsd:.4f}"] for r in rows]
    assert board.count("<rect") == 2 * len(rows) + 2  # the bar chart: DSC and NSD per row, two legend keys

    dots = section(text, "DSC per case").count("<circle")
    assert dots == len(US + PET + CT)

    # Overlays: the 3 lowest-DSC scored cases per group (US has only two scored), in group order.
    figures = re.findall(r'<img src="data:image/png;base64,([^"]+)".*?<b>(.*?)</b><br>(.*?)</figcaption>', text, re.S)
    scored = sorted((r for r in run.results if r.status == "ok"), key=lambda r: (r.modality, r.dsc, r.case))
    assert [case for _, case, _ in figures] == [r.case for r in scored]
    for data, case, caption in figures:
        image = cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)
        assert max(image.shape[:2]) == 384
        assert (image == GT_COLOUR).all(axis=2).any(), case
        assert (image == SEG_COLOUR).all(axis=2).any() == (case != SLICED), case  # SLICED: segs empty there
        assert ("slice z = " in caption) == case.startswith("3D")
    captions = {case: caption for _, case, caption in figures}
    assert f"slice z = {folders.sliced_z} of {folders.depth}" in captions[SLICED]

    table = section(text, "All cases")
    assert '<table class="sortable">' in table
    assert [row[:5] for row in table_rows(table)] == [
        [r.case, r.modality, f"{r.dsc:.4f}", f"{r.nsd:.4f}", r.status] for r in run.results
    ]
    assert "<script>" in text and "http" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_missing_and_broken_segs_are_listed(folders, page, tmp_path):
    listed = table_rows(section(page.read_text(), "Cases not scored"))
    assert [row[:2] for row in listed] == [[MISSING, "missing"], [BROKEN, "unreadable"]]

    # A seg that breaks after scoring: the overlay is not drawn, the case is listed, the page still builds.
    segs = tmp_path / "segs"
    shutil.copytree(folders.segs, segs)
    (segs / PET[0]).write_bytes(b"PK\x03\x04 truncated")
    args = report_args(folders, tmp_path / "out")
    args[4] = segs
    assert run_cli(*args) == 0
    text = (tmp_path / "out" / "index.html").read_text()
    listed = table_rows(section(text, "Cases not scored"))
    assert [row[:2] for row in listed] == [[MISSING, "missing"], [BROKEN, "unreadable"], [PET[0], "not drawn"]]
    assert listed[2][2].startswith("seg unreadable: ")
    assert text.count("<img ") == page.read_text().count("<img ") - 1


def test_compare_shows_the_change_per_group(folders, tmp_path):
    assert run_cli(*report_args(folders, tmp_path, "--compare", folders.perfect_metrics)) == 0
    compare = section((tmp_path / "index.html").read_text(), "Compared with perfect-metrics")
    mine = leaderboard.summarize((r.case, r.dsc, r.nsd) for r in read_run(folders.metrics).results)
    groups = table_rows(compare, 0)
    assert [row[0] for row in groups] == [r.group for r in mine]
    for row, r in zip(groups, mine):
        # the other run is perfect (1.0 everywhere), so the change is this run's score minus 1
        assert row[2:] == [f"{r.dsc:.4f}", "1.0000", f"{r.dsc - 1:+.4f}", f"{r.nsd:.4f}", "1.0000", f"{r.nsd - 1:+.4f}"]
    changed = table_rows(compare, 1)
    assert len(changed) == 8 and [row[0] for row in changed][:2] == [MISSING, BROKEN]  # DSC 0: change -1
    changes = [abs(float(row[4])) for row in changed]
    assert changes == sorted(changes, reverse=True)


@pytest.mark.parametrize("kind", ["time-eval", "pipeline timer"])
def test_timing_from_either_csv(folders, tmp_path, kind):
    cases = US + PET  # CT left untimed
    seconds = {case: 1.5 + i for i, case in enumerate(cases)}
    path = tmp_path / "times.csv"
    if kind == "time-eval":
        path.write_text("CaseName,RunningTime\n" + "".join(f"{c},{s!r}\n" for c, s in seconds.items()))
    else:
        for case, value in seconds.items():
            timer = StageTimer()
            timer.seconds["encode"] = value
            append_rows(path, [case_row(case, "ok", "litemedsam f32", timer, {"interpreter": 0.0})])
    assert read_timing(path).kind == kind and read_timing(path).seconds == pytest.approx(seconds)

    assert run_cli(*report_args(folders, tmp_path / "out", "--timing", path)) == 0
    text = (tmp_path / "out" / "index.html").read_text()
    timing = section(text, "Running time")
    assert f"{kind} CSV: {len(cases)} of {len(cases + CT)} cases timed, total {sum(seconds.values()):.1f} s" in timing
    assert table_rows(timing) == [
        ["2DBox_US", "4", "3.00", "4.50"],  # 1.5 .. 4.5
        ["3DBox_PET", "3", "6.50", "7.50"],  # 5.5 .. 7.5
    ]
    by_case = {row[0]: row[6] for row in table_rows(section(text, "All cases"))}
    assert by_case == {**{c: f"{s:.3f}" for c, s in seconds.items()}, CT[0]: ""}


@pytest.mark.parametrize(
    "problem", ["no metrics.csv", "no seg folder", "no image folder", "compare without metrics", "timing header"]
)
def test_usage_errors_exit_2_with_one_line(folders, tmp_path, capsys, problem):
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "bad.csv").write_text("case,seconds\na.npz,1.0\n")
    args = report_args(folders, tmp_path / "out")
    replace, extra = {
        "no metrics.csv": ({2: empty}, []),
        "no seg folder": ({4: tmp_path / "nowhere"}, []),
        "no image folder": ({8: tmp_path / "nowhere"}, []),
        "compare without metrics": ({}, ["--compare", empty]),
        "timing header": ({}, ["--timing", tmp_path / "bad.csv"]),
    }[problem]
    for index, value in replace.items():
        args[index] = value
    assert run_cli(*args, *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("report: ") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_bad_worst_count_exits_2(folders, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        run_cli(*report_args(folders, tmp_path / "out"), "--worst", "three")
    assert exit_.value.code == 2
    assert run_cli(*report_args(folders, tmp_path / "out"), "--worst", "-1") == 2
    assert capsys.readouterr().err.endswith("report: --worst must be >= 0, not -1\n")
    assert not (tmp_path / "out").exists()


def test_timing_csv_of_neither_kind_names_both(tmp_path):
    (tmp_path / "t.csv").write_text("case,seconds\na.npz,1.0\n")
    with pytest.raises(ReportError, match="'case,seconds' has neither case,total or CaseName,RunningTime"):
        read_timing(tmp_path / "t.csv")


def test_disagreement_slice_and_overlay_geometry():
    gts = np.zeros((4, 10, 10), np.uint8)
    gts[:, 2:8, 2:8] = 1
    segs = gts.copy()
    assert disagreement_slice(gts, segs) == 0  # no disagreement: the first slice of the most gt
    segs[1, 2:4] = 0
    segs[3, 2:5] = 0
    assert disagreement_slice(gts, segs) == 3
    for shape in ((30, 20), (1200, 600)):  # scaled up and down to 384 on the longer side
        labels = np.zeros(shape, np.uint8)
        labels[shape[0] // 4 : shape[0] // 2, shape[1] // 4 : shape[1] // 2] = 2
        png = overlay_png(np.full((*shape, 3), 90, np.uint8), labels, np.roll(labels, shape[1] // 8, axis=1))
        image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (384, round(384 * shape[1] / shape[0]), 3)
        assert (image == GT_COLOUR).all(axis=2).any() and (image == SEG_COLOUR).all(axis=2).any()


def test_worst_cases_leave_out_unscored_and_nan(folders):
    run = read_run(folders.metrics)
    worst = worst_cases(run.results, 1)
    assert [r.modality for r in worst] == ["2DBox_CT", "2DBox_US", "3DBox_PET"]
    assert all(r.status == "ok" for r in worst)
    assert worst_cases(run.results, 0) == []


def chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )


def test_page_renders_in_a_real_browser(page, tmp_path):
    require(shutil.which("chromium"), "chromium on PATH (apt-get install chromium)")
    shot = tmp_path / "shot.png"
    chromium(f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri())
    image = cv2.imread(str(shot))
    assert image.shape == (2000, 1280, 3) and image.std() > 20
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 200  # text, charts and overlays, not a blank page

    text = page.read_text()
    body = re.search(r"<body[^>]*>", chromium("--dump-dom", page.as_uri()).stdout).group(0)
    assert f'data-images-decoded="{text.count("<img ")}"' in body and text.count("<img ") == 6

    # Sorting: click the DSC header once (ascending) and again (descending), as a user would.
    probe = tmp_path / "probe.html"
    probe.write_text(
        text.replace(
            "</body>",
            """<script>
window.addEventListener("load", () => {
  const table = document.querySelector("table.sortable");
  const th = Array.from(table.tHead.rows[0].cells).find(h => h.textContent === "DSC");
  const order = () => Array.from(table.tBodies[0].rows).map(r => r.cells[0].textContent).join("|");
  th.click();
  document.body.dataset.ascending = order();
  th.click();
  document.body.dataset.descending = order();
});
</script></body>""",
        )
    )
    body = re.search(r"<body[^>]*>", chromium("--dump-dom", probe.as_uri()).stdout).group(0)
    rows = table_rows(section(text, "All cases"))
    ascending = [row[0] for row in sorted(rows, key=lambda row: (float(row[2]), rows.index(row)))]
    assert re.search(r'data-ascending="([^"]*)"', body).group(1).split("|") == ascending
    descending = re.search(r'data-descending="([^"]*)"', body).group(1).split("|")
    assert [float(dict((r[0], r[2]) for r in rows)[c]) for c in descending] == sorted(
        (float(r[2]) for r in rows), reverse=True
    )


def test_metrics_csv_with_a_missing_column_is_a_usage_error(tmp_path):
    with open(tmp_path / "metrics.csv", "w", newline="") as f:
        csv.writer(f).writerows([["case", "dsc"], ["2DBox_US_a.npz", "0.5"]])
    with pytest.raises(ReportError, match="no column nsd, status, detail"):
        read_run(tmp_path)


def test_text_from_the_inputs_is_escaped():
    case = '2DBox_US_<img src=x onerror="alert(1)">.npz'
    run = Run("<b>run</b>", [CaseResult(case, 0.5, 0.5, "missing", "<no seg & more>")])
    text = render_page(run, [], Run("other&", [CaseResult(case, 0.25, 0.5)]), Timing("time-eval", {case: 1.0}))
    assert "<img" not in text and "<b>run</b>" not in text and "<no seg" not in text
    assert "2DBox_US_&lt;img src=x onerror=&quot;alert(1)&quot;&gt;.npz" in text
    assert "Compared with other&amp;" in text and "&lt;no seg &amp; more&gt;" in text
