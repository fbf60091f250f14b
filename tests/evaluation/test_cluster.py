"""compute-metrics --scheduler on a real Dask cluster of subprocesses on 127.0.0.1 (tests/dask_cluster.py).

The cluster run must write the bytes a local run writes, with a worker SIGKILLed mid-run.
"""

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, require_module
from dask_cluster import free_port, local_cluster
from evaluation import compute_metrics
from evaluation.cli import main

OUTPUTS = ("metrics.csv", "summary.csv", "summary.md")


@pytest.fixture
def real_folders(cases_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """gts/ with every 3D case and six 2D ones; segs/ made from them: shifted, a label erased, one
    seg missing and one broken."""
    gt_dir, seg_dir = tmp_path / "gts", tmp_path / "segs"
    gt_dir.mkdir()
    seg_dir.mkdir()
    names = sorted(p.name for p in (cases_dir / "gts").glob("3D*.npz"))
    names += sorted(p.name for p in (cases_dir / "gts").glob("2D*.npz"))[::16]
    for i, name in enumerate(names):
        shutil.copy(cases_dir / "gts" / name, gt_dir / name)
        gts = np.load(gt_dir / name)["gts"]
        segs = np.roll(gts, 1 + i % 3, axis=i % 2)
        if i % 4 == 0:
            segs[segs == segs.max()] = 0
        np.savez_compressed(seg_dir / name, segs=segs)
    (seg_dir / names[1]).unlink()
    (seg_dir / names[-1]).write_bytes(b"broken")
    return gt_dir, seg_dir


def _compute_metrics(gt_dir: Path, seg_dir: Path, out: Path, *extra: str) -> int:
    return main(["compute-metrics", "-s", str(seg_dir), "-g", str(gt_dir), "-o", str(out), "-q", *extra])


def test_cluster_run_with_a_worker_killed_mid_run_writes_the_local_bytes(real_folders, tmp_path, monkeypatch):
    gt_dir, seg_dir = real_folders
    assert _compute_metrics(gt_dir, seg_dir, tmp_path / "local") == 1  # one missing, one broken

    killed = []
    advance = compute_metrics.ProgressBar.advance

    def kill_a_busy_worker_after_the_first_case(bar, label=""):
        if not killed:
            busy = [address for address, keys in cluster.client.processing().items() if keys]
            assert busy, "no worker had a case left when the first one was done"
            killed.append(cluster.worker_names()[busy[0]])
            cluster.kill(killed[0])
        advance(bar, label)

    monkeypatch.setattr(compute_metrics.ProgressBar, "advance", kill_a_busy_worker_after_the_first_case)
    with local_cluster(tmp_path / "cluster", workers=2) as cluster:
        status = _compute_metrics(gt_dir, seg_dir, tmp_path / "cluster-out", "--scheduler", cluster.address)
        survivors = set(cluster.worker_names().values())
    assert status == 1
    assert len(killed) == 1 and survivors == {"w0", "w1"} - set(killed)

    with open(tmp_path / "cluster-out" / "metrics.csv", newline="") as f:
        cases = [row["case"] for row in csv.DictReader(f)]
    assert cases == sorted(p.name for p in gt_dir.iterdir())  # every case, once
    for name in OUTPUTS:
        assert (tmp_path / "cluster-out" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name


@pytest.fixture
def tiny_folders(tmp_path: Path) -> tuple[Path, Path]:
    gt_dir, seg_dir = tmp_path / "g", tmp_path / "s"
    gt_dir.mkdir()
    seg_dir.mkdir()
    gts = np.zeros((16, 16), np.uint8)
    gts[4:12, 4:12] = 1
    np.savez_compressed(gt_dir / "2DBox_US_a.npz", gts=gts)
    np.savez_compressed(seg_dir / "2DBox_US_a.npz", segs=gts)
    return gt_dir, seg_dir


def test_an_unreachable_scheduler_is_a_usage_error(tiny_folders, tmp_path, capsys):
    require_module("distributed", "dask and distributed (pip install -e .[cluster])")
    gt_dir, seg_dir = tiny_folders
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    assert _compute_metrics(gt_dir, seg_dir, tmp_path / "out", "--scheduler", address) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and address in err, err
    assert not (tmp_path / "out").exists()


def test_a_local_run_imports_no_dask(tiny_folders, tmp_path):
    gt_dir, seg_dir = tiny_folders
    code = (
        "import sys; from evaluation.cli import main; "
        f"main(['compute-metrics', '-s', {str(seg_dir)!r}, '-g', {str(gt_dir)!r}, '-o', {str(tmp_path / 'o')!r}, "
        "'-q', '-j', '2']); print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))"
    )
    ran = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines()[-1] == "[]"
