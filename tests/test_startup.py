"""How a predict process starts (startup.py): which runs get the short start, that every entry point reaches
that decision before numpy is imported, and that the prepared heap then serves fresh memory without page
faults."""

import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import REPO
from medsam_laptop import cli
from medsam_laptop.engines.precision import FAST_START_MAX_CASES
from medsam_laptop.inference import startup


def _python(code: str, *args: str) -> str:
    """The output of `code` run by a fresh interpreter (a process whose start nothing has changed yet)."""
    command = [sys.executable, "-c", textwrap.dedent(code), *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def prepared(monkeypatch):
    """Records each call of prepare_short_run instead of changing this process."""
    calls = []
    monkeypatch.setattr(startup, "prepare_short_run", lambda: calls.append(True))
    return calls


def _folder(tmp_path, names):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in names:
        (folder / name).touch()  # the decision reads names only
    return folder


@pytest.mark.parametrize(
    ("names", "options", "short"),
    [
        (["2DBox_US_a.npz", "2DBox_CT_b.npz"], [], True),
        ([], [], True),
        ([f"2DBox_US_{i}.npz" for i in range(FAST_START_MAX_CASES + 1)], [], False),
        (["2DBox_US_a.npz", "3DBox_CT_b.npz"], [], False),
        (["2DBox_US_a.npz"], ["--backend", "torch"], False),
        (["2DBox_US_a.npz"], ["--baseline"], False),
    ],
)
def test_a_few_2d_cases_under_openvino_start_short(tmp_path, prepared, names, options, short):
    args = cli._parser().parse_args(["predict", "-i", str(_folder(tmp_path, names)), "-o", "out", *options])
    startup.prepare(args.input, args.backend, args.baseline)
    assert prepared == ([True] if short else [])


def test_a_missing_input_folder_starts_plainly(tmp_path, prepared):
    startup.prepare(tmp_path / "none", "openvino", baseline=False)
    assert prepared == []


def test_a_library_call_never_changes_its_process(tmp_path, prepared):
    """main() without own_process (as a test or a notebook calls it) leaves the caller's process alone."""
    folder = _folder(tmp_path, [])
    assert cli.main(["predict", "-i", str(folder), "-o", str(tmp_path / "out")]) == 0
    assert prepared == []
    assert cli.main(["predict", "-i", str(folder), "-o", str(tmp_path / "out")], own_process=True) == 0
    assert prepared == [True]


def test_the_command_line_decides_before_importing_numpy(tmp_path):
    """The heap's fault-in overlaps numpy's import only if nothing before the decision imports numpy."""
    code = f"""
        import sys
        from medsam_laptop import cli
        from medsam_laptop.inference import startup
        startup.prepare_short_run = lambda: print("numpy imported:", "numpy" in sys.modules)
        cli.main(["predict", "-i", "{tmp_path}", "-o", "{tmp_path / "out"}"], own_process=True)
    """
    assert _python(code) == "numpy imported: False"


def _transparent_huge_pages_always() -> bool:
    path = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    return path.is_file() and "[always]" in path.read_text()


def _heap_fault_in_runs() -> bool:
    """prepare_short_run's own conditions: glibc first, since os.sched_getaffinity exists on Linux only."""
    return platform.libc_ver()[0] == "glibc" and len(os.sched_getaffinity(0)) >= 2


@pytest.mark.skipif(not _heap_fault_in_runs(), reason="the fault-in needs glibc and a second core")
@pytest.mark.skipif(_transparent_huge_pages_always(), reason="huge pages: far fewer faults without it too")
def test_a_prepared_heap_serves_fresh_memory_without_page_faults():
    """100 MB allocated and written after the preparation fault a few pages only; without it, one per page."""
    code = """
        import ctypes, gc, resource, sys
        from medsam_laptop.inference import startup
        libc = ctypes.CDLL(None)
        libc.malloc.restype = ctypes.c_void_p
        libc.malloc.argtypes = [ctypes.c_size_t]
        libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
        if sys.argv[1] == "prepared":
            startup.prepare_short_run().join()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        libc.memset(libc.malloc(100 << 20), 1, 100 << 20)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before, gc.isenabled())
    """
    plain, prepared = (_python(code, mode).split() for mode in ("plain", "prepared"))
    pages = (100 << 20) // 4096
    assert int(plain[0]) > pages // 2 and plain[1] == "True"
    assert int(prepared[0]) < pages // 20 and prepared[1] == "False"
