"""time-eval without a docker engine: team names, the command line, verdicts, CSVs, arguments."""

import argparse
import csv
import os
from pathlib import Path

import pytest

from conftest import require
from evaluation import time_eval as te

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "file_name, team",
    [
        ("LiteMedSAM.tar.gz", "litemedsam"),
        ("Team_1.v2.tar.gz", "team_1"),
        ("/somewhere/seno.tar", "seno"),
        ("noext", "noext"),
    ],
)
def test_team_name_is_the_lowercased_part_before_the_first_dot(file_name, team):
    assert te.team_name(file_name) == team


def test_docker_run_command_is_the_organizers_with_extras_before_the_image(tmp_path):
    settings = te.RunSettings(extra_args=("--network", "none"))
    cmd = te.docker_run_command("seno", "seno:latest", tmp_path / "inputs", tmp_path / "outputs", settings)
    assert cmd == [
        "docker",
        "container",
        "run",
        "-m",
        "8G",
        "--name",
        "seno",
        "--rm",
        "-v",
        f"{tmp_path}/inputs/:/workspace/inputs/",
        "-v",
        f"{tmp_path}/outputs/:/workspace/outputs/",
        "--network",
        "none",
        "seno:latest",
        "/bin/bash",
        "-c",
        "sh predict.sh",
    ]


def _verdict(exit_code=0, timed_out=False, oom=False, present=True, new=(), input_present=True):
    return te.classify("c.npz", exit_code, timed_out, oom, present, list(new), input_present)[0]


def test_classify_each_outcome():
    assert _verdict() == te.OK
    assert _verdict(present=False) == te.MISSING_OUTPUT
    assert _verdict(present=False, new=["cache"]) == te.MISSING_OUTPUT
    assert _verdict(present=False, new=["seg_c.npz", "cache"]) == te.MISNAMED_OUTPUT
    assert _verdict(exit_code=1) == te.EXIT_NONZERO
    assert _verdict(exit_code=137, oom=True) == te.OOM_KILLED
    assert _verdict(exit_code=137) == te.KILLED
    assert _verdict(exit_code=137, timed_out=True, oom=True) == te.TIMEOUT
    assert _verdict(exit_code=125, present=False) == te.DOCKER_ERROR
    assert _verdict(input_present=False) == te.INPUT_GONE


def test_classify_details_name_the_problem():
    assert te.classify("c.npz", 0, False, False, False, ["x.npz"], True)[1] == "expected c.npz, found x.npz"
    assert te.classify("c.npz", 2, False, False, True, [], True)[1] == "exit code 2; output present"
    assert te.classify("c.npz", 0, False, False, False, [], True)[1] == "no outputs/c.npz"


RESULTS = [te.CaseResult("b.npz", 1.25, 0, te.OK), te.CaseResult("a.npz", 0.1 + 0.2, 137, te.OOM_KILLED, "x, y")]


def test_running_time_csv_has_the_organizers_columns_in_run_order(tmp_path):
    path = tmp_path / "t_running_time.csv"
    te.write_running_time_csv(path, RESULTS)
    rows = list(csv.reader(path.open()))
    assert rows == [["CaseName", "RunningTime"], ["b.npz", "1.25"], ["a.npz", repr(0.1 + 0.2)]]


def test_outcomes_csv_keeps_exit_codes_and_details(tmp_path):
    path = tmp_path / "t_outcomes.csv"
    te.write_outcomes_csv(path, RESULTS + [te.CaseResult("c.npz", 2.0, None, te.TIMEOUT, "killed")])
    rows = list(csv.DictReader(path.open()))
    assert [r["outcome"] for r in rows] == [te.OK, te.OOM_KILLED, te.TIMEOUT]
    assert rows[1] == {
        "case": "a.npz",
        "running_time_s": "0.300",
        "exit_code": "137",
        "outcome": te.OOM_KILLED,
        "detail": "x, y",
    }
    assert rows[2]["exit_code"] == ""


def test_outcomes_csv_names_host_and_worker_when_given(tmp_path):
    path = tmp_path / "t_outcomes.csv"
    te.write_outcomes_csv(path, RESULTS, [("m1", "tcp://10.0.0.1:4000"), ("m2", "tcp://10.0.0.2:4000")])
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == ["case", "running_time_s", "exit_code", "outcome", "detail", "host", "worker"]
    assert [(r["case"], r["host"], r["worker"]) for r in rows] == [
        ("b.npz", "m1", "tcp://10.0.0.1:4000"),
        ("a.npz", "m2", "tcp://10.0.0.2:4000"),
    ]


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    te.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["time-eval", *argv])


def test_parser_defaults_follow_the_organizers():
    args = _parse("-i", "cases", "-o", "out", "-d", "dockers")
    assert (args.memory, args.timeout, args.fresh_dirs, args.keep_image, args.image) == ("8G", None, False, False, None)
    assert args.run is te.main


def test_parser_takes_docker_args_and_an_image():
    args = _parse("-i", "c", "-o", "o", "--image", "x:latest", "--docker-args=--network none -u 1:2", "--timeout", "5")
    assert (args.image, args.docker_args, args.timeout) == ("x:latest", "--network none -u 1:2", 5.0)


def test_parser_wants_exactly_one_image_source():
    with pytest.raises(SystemExit):
        _parse("-i", "c", "-o", "o")
    with pytest.raises(SystemExit):
        _parse("-i", "c", "-o", "o", "-d", "d", "--image", "x")


def test_main_exits_2_without_an_engine_or_cases(tmp_path, monkeypatch, capsys):
    args = _parse("-i", str(tmp_path / "none"), "-o", str(tmp_path / "out"), "--image", "x")
    monkeypatch.setattr(te.engine, "available", lambda: False)
    assert te.main(args) == 2
    monkeypatch.setattr(te.engine, "available", lambda: True)
    assert te.main(args) == 2
    assert "nothing to run (0 case files" in capsys.readouterr().err


def test_folders_another_user_cannot_empty_are_found(tmp_path):
    require(os.getuid() == 0, "root, to hand a folder to another uid")
    outputs = tmp_path / "outputs"
    for name, mode in (("private", 0o755), ("shared", 0o777), ("empty", 0o755)):
        (outputs / name).mkdir(parents=True)
        if name != "empty":
            (outputs / name / "file").touch()
        os.chown(outputs / name, 4242, 4242)
        os.chmod(outputs / name, mode)
    assert te.undeletable_by_others(outputs) == ["outputs/private (uid 4242, mode 755)"]


def test_every_dockerfile_copy_source_is_in_the_build_context():
    """The .dockerignore is a whitelist: a COPY source it leaves out would fail the build."""
    allowed = [
        line[1:].rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines() if line.startswith("!")
    ]
    sources = []
    for line in (REPO / "Dockerfile").read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not words[1].startswith("--from"):
            sources += [w.rstrip("/") for w in words[1:-1]]
    assert sources
    assert [s for s in sources if not any(s == a or s.startswith(a + "/") for a in allowed)] == []
