"""A corpus of bad inputs in one folder: each costs its own case only, with one clear stderr line.
Then faults of the run itself: an output disk that fills up, and a run killed with SIGKILL.

Run with `-s` (or see the terminal summary) to read the message a user gets for every kind.
"""

import csv
import errno
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO, assert_like_reference, copy_cases, object_dscs, predict, predict_command
from medsam_laptop import cli
from medsam_laptop.io import atomic

US, PET = "2DBox_US_stubus_01.npz", "3DBox_PET_ibsi-sts_STS002.npz"
GOOD = [US, PET]
# The US object's box [53, 10, 101, 45] with fractional corners; a zero-width box; a box past the right edge.
ODD_BOXES = [[53.4, 10.7, 101.9, 45.2], [70, 20, 70, 30], [90, 0, 140, 60]]
# PET's box spans z 16..31, so its middle slice, 23, is prompted with the box itself: slice 3 of the
# six-slice excerpt 20..25, boxed with z_min == z_max == 3, must come out as slice 23 of PET.
ONE_SLICE_FROM, ONE_SLICE = 20, 3
IMG2D = np.zeros((32, 32, 3), np.uint8)
IMG3D = np.zeros((4, 32, 32), np.uint8)
BOX2D = np.array([[4, 4, 20, 20]])
BOX3D = np.array([[4, 4, 1, 20, 20, 2]])

# kind -> (file name, arrays or raw bytes, expected stderr fragment)
BAD = {
    "not a zip": ("2DBox_notzip.npz", b"plain text, not a zip", "not an npz file"),
    "truncated npz": ("2DBox_truncated.npz", "truncate", "not a readable npz file"),
    "pickled object array": (
        "2DBox_pickle.npz",
        {"imgs": IMG2D, "boxes": np.array([[1, 2, 3, 4]], object)},
        "boxes is a pickled object array, which is refused",
    ),
    "missing imgs": ("2DBox_noimgs.npz", {"boxes": BOX2D}, "missing key(s) ['imgs']"),
    "missing boxes": ("2DBox_noboxes.npz", {"imgs": IMG2D}, "missing key(s) ['boxes']"),
    "float image": (
        "2DBox_float.npz",
        {"imgs": IMG2D.astype(np.float32), "boxes": BOX2D},
        "imgs must be uint8, got float32",
    ),
    "int16 image with values > 255": (
        "2DBox_int16.npz",
        {"imgs": IMG2D.astype(np.int16) + 300, "boxes": BOX2D},
        "imgs must be uint8, got int16",
    ),
    "grey 2D image": ("2DBox_grey.npz", {"imgs": IMG2D[:, :, 0], "boxes": BOX2D}, "imgs must be (H, W, 3)"),
    "NaN coordinate": ("2DBox_nan.npz", {"imgs": IMG2D, "boxes": np.array([[1.0, np.nan, 5, 5]])}, "NaN or inf"),
    "inf coordinate": ("2DBox_inf.npz", {"imgs": IMG2D, "boxes": np.array([[1.0, 1, np.inf, 5]])}, "NaN or inf"),
    "inverted box": ("2DBox_inverted.npz", {"imgs": IMG2D, "boxes": np.array([[20, 4, 4, 20]])}, "box 1 is inverted"),
    "box wholly outside": (
        "2DBox_outside.npz",
        {"imgs": IMG2D, "boxes": np.array([[40, 40, 50, 50]])},
        "box 1 lies outside the image",
    ),
    "3D box with inverted z": (
        "3DBox_zinv.npz",
        {"imgs": IMG3D, "boxes": np.array([[4, 4, 3, 20, 20, 1]])},
        "box 1 is inverted",
    ),
    "2D data under a 3D name": ("3DBox_was2d.npz", {"imgs": IMG2D, "boxes": BOX2D}, "boxes must be (N, 6)"),
    "3D data under a 2D name": ("2DBox_was3d.npz", {"imgs": IMG3D, "boxes": BOX3D}, "imgs must be (H, W, 3)"),
    "huge volume": (
        "3DBox_huge.npz",
        {"imgs": np.zeros((40, 256, 256), np.uint8), "boxes": BOX3D},
        "exceeds the 1 MiB limit",
    ),
}
MESSAGES: list[str] = []


def _write(path, content):
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "truncate":
        np.savez_compressed(path, imgs=np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8), boxes=BOX2D)
        path.write_bytes(path.read_bytes()[:2000])
    else:
        np.savez(path, **content)


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory, cases_dir):
    root = tmp_path_factory.mktemp("bad")
    inputs, outputs = root / "inputs", root / "outputs"
    inputs.mkdir()
    for name in GOOD:
        shutil.copy(cases_dir / "imgs" / name, inputs / name)
    for name, content, _ in BAD.values():
        _write(inputs / name, content)
    # Accepted oddities, on real images so that segmenting nothing fails: fractional coordinates, a
    # zero-width box, a box partly outside, z_min == z_max, no boxes at all, and more than 255 boxes
    # (labels need uint16).
    us = np.load(cases_dir / "imgs" / US)["imgs"]
    np.savez(inputs / "2DBox_odd.npz", imgs=us, boxes=np.array(ODD_BOXES))
    pet = np.load(cases_dir / "imgs" / PET)["imgs"]
    np.savez(
        inputs / "3DBox_oneslice.npz",
        imgs=pet[ONE_SLICE_FROM : ONE_SLICE_FROM + 6],
        boxes=np.array([[10, 10, ONE_SLICE, 19, 16, ONE_SLICE]]),
    )
    np.savez(inputs / "2DBox_empty.npz", imgs=IMG2D, boxes=np.zeros((0, 4), np.int64))
    many = np.zeros((64, 64, 3), np.uint8)
    many[20:44, 20:44] = 230
    boxes = np.array([[x, y, x + 6, y + 6] for x in range(0, 64, 4) for y in range(0, 64, 4)] + [[20, 20, 43, 43]])
    np.savez(inputs / "2DBox_many.npz", imgs=many, boxes=boxes)
    (inputs / "notes.txt").write_text("not a case")
    (inputs / "subfolder").mkdir()
    before = sorted(p.name for p in inputs.iterdir())
    os.chmod(inputs, 0o555)
    try:
        result = subprocess.run(
            predict_command("-i", inputs, "-o", outputs, "--model", "litemedsam", "--precision", "f32"),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "MEDSAM_MAX_IMAGE_MB": "1"},
        )
    finally:
        os.chmod(inputs, 0o755)
    assert sorted(p.name for p in inputs.iterdir()) == before  # nothing written into the inputs
    return result, outputs


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_case_gets_one_clear_line(kind, bad_run):
    result, outputs = bad_run
    name, _, fragment = BAD[kind]
    lines = [line for line in result.stderr.splitlines() if line.startswith(f"error: {name}:")]
    assert len(lines) == 1 and fragment in lines[0], result.stderr
    assert not (outputs / name).exists()
    MESSAGES.append(f"{kind:32s} {lines[0]}")


def test_a_bad_first_case_fails_alone(tmp_path, cases_dir, capsys):
    """The first case is read while the model compiles; its failure is still its own line and row."""
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    _write(inputs / "2DBox_0notzip.npz", b"plain text, not a zip")  # sorts before the US case
    shutil.copy(cases_dir / "imgs" / US, inputs)
    assert (
        cli.main(["predict", "-i", str(inputs), "-o", str(outputs), "--model", "litemedsam", "--precision", "f32"]) == 1
    )
    assert "error: 2DBox_0notzip.npz: not an npz file" in capsys.readouterr().err
    assert sorted(p.name for p in outputs.glob("*.npz")) == [US]
    with open(outputs / "efficiency_timer.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["case"], r["status"]) for r in rows] == [("2DBox_0notzip.npz", "error"), (US, "ok")]
    assert float(rows[0]["compile"]) > 0 and float(rows[1]["compile"]) == 0  # start-up goes to the first row
    assert float(rows[1]["read"]) > 0


def test_run_reports_failure_and_keeps_the_rest(bad_run):
    result, outputs = bad_run
    assert result.returncode == 1
    written = sorted(p.name for p in outputs.iterdir() if p.suffix == ".npz")
    accepted = ["2DBox_empty.npz", "2DBox_many.npz", "2DBox_odd.npz", "3DBox_oneslice.npz"]
    assert written == sorted(GOOD + accepted)
    assert not [p for p in outputs.iterdir() if p.name.endswith(".tmp")]
    for name in written:
        with zipfile.ZipFile(outputs / name) as z:
            assert z.namelist() == ["segs.npy"]
    assert f"done: {len(written)} of {len(written) + len(BAD)} cases" in result.stderr
    assert "note: ignoring 2 entries" in result.stderr
    assert "warning: 2DBox_empty.npz: no boxes; writing an empty segmentation" in result.stderr


def test_accepted_oddities_give_sound_outputs(bad_run, reference_dir):
    _, outputs = bad_run
    empty = np.load(outputs / "2DBox_empty.npz")["segs"]
    assert empty.shape == (32, 32) and empty.dtype == np.uint8 and not empty.any()

    one = np.load(outputs / "3DBox_oneslice.npz")["segs"]
    pet = np.load(outputs / PET)["segs"]
    assert one.shape == (6, *pet.shape[1:])
    assert one[ONE_SLICE].any() and np.array_equal(one[ONE_SLICE], pet[ONE_SLICE_FROM + ONE_SLICE])
    assert not np.delete(one, ONE_SLICE, axis=0).any()  # that slice only

    many = np.load(outputs / "2DBox_many.npz")["segs"]
    assert many.dtype == np.uint16 and many.max() == 257

    odd = np.load(outputs / "2DBox_odd.npz")["segs"]
    ref = np.load(reference_dir / "litemedsam-torch-segs" / US)["segs"]
    assert odd.shape == ref.shape and odd.dtype == np.uint8
    assert object_dscs(odd, ref, 1)[0] > 0.95  # fractional corners move the box by less than a pixel
    assert (odd == 3).sum() > 100  # the box past the edge holds image content


def test_unwritable_output_folder_is_a_usage_error(tmp_path, cases_dir):
    blocker = tmp_path / "out"
    blocker.write_text("a file where the output folder should be")
    result = subprocess.run(
        [sys.executable, "-m", "medsam_laptop", "predict", "-i", str(cases_dir / "imgs"), "-o", str(blocker)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2 and "is not writable" in result.stderr
    MESSAGES.append(f"{'unwritable output folder':32s} {result.stderr.strip()}")


# Faults of the run: a disk that fills up after the first case, and a SIGKILL.
US2, CT = "2DBox_US_stubus_04.npz", "3DBox_CT_ibsi-sts_STS002.npz"


def _leftovers(outputs: Path) -> list[str]:
    return sorted(str(p.relative_to(outputs)) for p in outputs.rglob("*") if p.name.endswith(".tmp"))


@contextmanager
def _tmpfs(folder: Path, size: str):
    """Mounts a tmpfs of `size` on `folder`; yields False where mounting is not permitted."""
    folder.mkdir()
    try:
        mounted = (
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)], capture_output=True
            ).returncode
            == 0
        )
    except FileNotFoundError:
        mounted = False
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], check=True)


def _leave_one_block(folder: Path) -> None:
    """Fills the file system of `folder` but for one block: room for one small file, then ENOSPC."""
    free = os.statvfs(folder)
    (folder / ".filler").write_bytes(bytes((free.f_bavail - 1) * free.f_frsize))
    assert os.statvfs(folder).f_bavail == 1


def _disk_full_after(n_files: int):
    """An `open` for the atomic-write module (segs and timer rows): the first `n_files` files written are written, every
    later write stores half its bytes and raises ENOSPC, as a disk that fills up does."""
    opened = []

    class HalfWritten:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()
            return False

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            self.f.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def fake_open(path, mode="r", *args, **kwargs):
        f = open(path, mode, *args, **kwargs)
        if "w" not in mode:
            return f
        opened.append(path)
        return f if len(opened) <= n_files else HalfWritten(f)

    return fake_open


@pytest.fixture
def full_disk_run(tmp_path, cases_dir, monkeypatch, capsys):
    """predict over three cases into an output folder whose disk has room for the first case's file
    only: a real tmpfs where mounting is permitted (root), else writes that fail from the second on.
    Returns (exit status, stderr, output folder)."""
    inputs = copy_cases(cases_dir, tmp_path / "in", [US, US2, PET])
    outputs = tmp_path / "out"
    args = ["-i", inputs, "-o", outputs, "--model", "litemedsam", "--precision", "f32", "--cache-dir", "none"]
    with _tmpfs(outputs, "256k") as mounted:
        if mounted:
            _leave_one_block(outputs)
            result = predict(*args)
            yield result.returncode, result.stderr, outputs
            return
    fake_open = _disk_full_after(1)
    monkeypatch.setattr(atomic, "open", fake_open, raising=False)
    status = cli.main(["predict", *map(str, args)])
    yield status, capsys.readouterr().err, outputs


def test_a_full_disk_fails_the_cases_it_cannot_write(full_disk_run, cases_dir, reference_dir):
    status, stderr, outputs = full_disk_run
    assert status == 1, stderr
    assert "Traceback" not in stderr
    for name in (US2, PET):
        lines = [line for line in stderr.splitlines() if line.startswith(f"error: {name}:")]
        assert len(lines) == 1 and "No space left on device" in lines[0], stderr
    assert not [line for line in stderr.splitlines() if line.startswith(f"error: {US}")]
    assert f"failed: {US2}, {PET}" in stderr
    assert "done: 1 of 3 cases" in stderr
    for name in (US, US2, PET):  # the timer's rows do not fit either: a warning each, not an error
        assert f"warning: {name}: timer row not written" in stderr
    assert sorted(p.name for p in outputs.glob("*.npz")) == [US]
    assert _leftovers(outputs) == [] and not (outputs / "efficiency_timer.csv").exists()
    assert_like_reference(outputs, reference_dir, cases_dir, [US])
    first_error = next(line for line in stderr.splitlines() if line.startswith("error:"))
    MESSAGES.append(f"{'full output disk':32s} {first_error}")


def test_a_killed_run_leaves_whole_files_and_reruns(tmp_path, cases_dir, reference_dir):
    names = [US, CT]  # the 3D case after the first keeps the run busy for seconds: the kill lands there
    inputs = copy_cases(cases_dir, tmp_path / "in", names)
    outputs = tmp_path / "out"
    args = ["-i", inputs, "-o", outputs, "--model", "litemedsam", "--precision", "f32"]
    timing = outputs / "efficiency_timer.csv"
    with open(tmp_path / "stderr", "w") as err:
        run = subprocess.Popen(predict_command(*args), cwd=REPO, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 300
        while not timing.exists() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)  # the first case's row follows its segs file
        run.kill()  # SIGKILL: no handler, no clean-up
        run.wait()
    assert run.returncode == -signal.SIGKILL, (tmp_path / "stderr").read_text()  # killed mid-run

    assert sorted(p.name for p in outputs.glob("*.npz")) == [US]
    assert _leftovers(outputs) == []
    assert_like_reference(outputs, reference_dir, cases_dir, [US])  # whole
    with open(timing, newline="") as f:
        assert [r["case"] for r in csv.DictReader(f)] == [US]

    again = predict(*args)
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in outputs.glob("*.npz")) == sorted(names)
    assert _leftovers(outputs) == []
    assert_like_reference(outputs, reference_dir, cases_dir, names)
    with open(timing, newline="") as f:
        assert [(r["case"], r["status"]) for r in csv.DictReader(f)] == [(US, "ok")] + [(n, "ok") for n in names]


def test_a_rerun_removes_temporaries_of_dead_runs_only(tmp_path, cases_dir):
    """A SIGKILL during a write leaves `.<name>.<pid>.tmp`; the next run removes it unless its writer lives."""
    outputs = tmp_path / "out"
    outputs.mkdir()
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = outputs / f".{US}.{int(finished.stdout)}.tmp"
    alive = outputs / f".{US}.{os.getpid()}.tmp"  # this test's process: a writer still at work
    dead.write_bytes(b"half a file")
    alive.write_bytes(b"being written")
    result = predict(
        "-i", copy_cases(cases_dir, tmp_path / "in", [US]), "-o", outputs, "--model", "litemedsam", "--precision", "f32"
    )
    assert result.returncode == 0, result.stderr
    assert not dead.exists() and alive.exists()
