"""time-eval against a real docker engine, with the throwaway HARNESS TEST image (harness_image.py).

Without an engine or the base image the tests are skipped; under CI=true they fail (conftest.require).
"""

from pathlib import Path

import pytest
from harness_image import build_test_image, docker, fake_cases, run_time_eval

from evaluation import time_eval as te


@pytest.fixture(scope="module")
def test_image(tmp_path_factory) -> str:
    return build_test_image(tmp_path_factory.mktemp("harness-image"))


def _harness(cases: Path, out: Path, image: str, *extra: str) -> int:
    """time-eval of `image` on `cases` as the team "harnesstest"."""
    return run_time_eval("-i", str(cases), "-o", str(out), "--image", image, "--team", "harnesstest", *extra)


def _outcomes(out: Path, team: str) -> dict[str, str]:
    lines = (out / team / f"{team}_outcomes.csv").read_text().splitlines()[1:]
    return {line.split(",")[0]: line.split(",")[3] for line in lines}


def test_each_failure_is_reported_and_fails_the_run(test_image, tmp_path):
    cases = fake_cases(tmp_path / "cases", "a_ok.npz", "fail_x.npz", "missing_x.npz", "misnamed_x.npz", "eat_x.npz")
    out = tmp_path / "out"
    assert _harness(cases, out, test_image) == 1
    assert _outcomes(out, "harnesstest") == {
        "a_ok.npz": te.OK,
        "fail_x.npz": te.EXIT_NONZERO,
        "missing_x.npz": te.MISSING_OUTPUT,
        "misnamed_x.npz": te.MISNAMED_OUTPUT,
        "eat_x.npz": te.INPUT_GONE,
    }
    assert (out / "harnesstest" / "a_ok.npz").read_bytes() == b"not really an npz"
    times = (out / "harnesstest" / "harnesstest_running_time.csv").read_text().splitlines()
    assert times[0] == "CaseName,RunningTime" and len(times) == 6
    assert (out / "harnesstest_logs" / "fail_x.npz.log").exists()


def test_oom_kill_and_timeout(test_image, tmp_path):
    cases = fake_cases(tmp_path / "cases", "oom_x.npz", "slow_x.npz")
    out = tmp_path / "out"
    assert _harness(cases, out, test_image, "--memory", "64m", "--timeout", "3") == 1
    assert _outcomes(out, "harnesstest") == {"oom_x.npz": te.OOM_KILLED, "slow_x.npz": te.TIMEOUT}
    assert docker("container", "inspect", "harnesstest").returncode != 0


def test_outputs_survive_between_cases_unless_fresh_dirs(test_image, tmp_path):
    cases = fake_cases(tmp_path / "cases", "persist_1.npz", "persist_2.npz")
    out = tmp_path / "out"
    _harness(cases, out, test_image)
    assert _outcomes(out, "harnesstest") == {"persist_1.npz": te.MISSING_OUTPUT, "persist_2.npz": te.OK}
    _harness(cases, out, test_image, "--fresh-dirs")
    assert _outcomes(out, "harnesstest") == {"persist_1.npz": te.MISSING_OUTPUT, "persist_2.npz": te.MISSING_OUTPUT}


def test_other_uid_no_network_and_a_leftover_container(test_image, tmp_path, capsys):
    assert docker("create", "--name", "harnesstest", test_image, "true").returncode == 0
    cases = fake_cases(tmp_path / "cases", "a_ok.npz")
    out = tmp_path / "out"
    assert _harness(cases, out, test_image, "--docker-args=--network none -u 4242:4242") == 0
    assert "removed a leftover container named harnesstest" in capsys.readouterr().out
    assert (out / "harnesstest" / "a_ok.npz").stat().st_uid == 4242


def test_a_cache_other_users_cannot_clean_up_fails_the_team(test_image, tmp_path, capsys):
    cases = fake_cases(tmp_path / "cases", "lock_x.npz")
    out = tmp_path / "out"
    assert _harness(cases, out, test_image) == 1
    assert _outcomes(out, "harnesstest") == {"lock_x.npz": te.OK}
    assert "outputs/cache (uid 1000, mode 755)" in capsys.readouterr().err


def test_tarballs_are_loaded_named_run_and_removed(test_image, tmp_path, capsys):
    dockers = tmp_path / "dockers"
    dockers.mkdir()
    assert docker("tag", test_image, "harnesstest:latest").returncode == 0
    assert docker("save", "-o", str(dockers / "HarnessTest.tar"), "harnesstest:latest").returncode == 0
    (dockers / "Wrong.tar").write_bytes((dockers / "HarnessTest.tar").read_bytes())
    cases = fake_cases(tmp_path / "cases", "a_ok.npz")
    out = tmp_path / "out"
    try:
        # Wrong.tar loads as harnesstest:latest, not wrong:latest: reported, status 1.
        assert run_time_eval("-i", str(cases), "-o", str(out), "-d", str(dockers)) == 1
        assert "no image wrong:latest" in capsys.readouterr().err
        assert _outcomes(out, "harnesstest") == {"a_ok.npz": te.OK}
        assert not (out / "wrong").exists()
    finally:
        docker("rmi", "harnesstest:latest")
