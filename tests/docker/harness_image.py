"""The throwaway HARNESS TEST image of the time-eval tests (not a submission), built on demand.

It is built from the local base image (docker/build-base.sh; override with MEDSAM_BASE_IMAGE) and
its predict.sh acts by case-name prefix: copies the case to outputs/, fails, writes nothing,
misnames, runs out of memory, sleeps, naps for a few seconds then copies, deletes its input, leaves
a folder other users cannot empty, or writes only when a marker from an earlier case is still in
outputs/. Without an engine or the base image the caller is skipped; under CI=true it fails
(conftest.require).
"""

import os
import subprocess
from pathlib import Path

from conftest import require
from evaluation import docker_engine

BASE_IMAGE = os.environ.get("MEDSAM_BASE_IMAGE", "medsam-base:bookworm")
TEST_IMAGE = "medsam-harness-test:latest"

PREDICT_SH = """\
umask 0000
for f in /workspace/inputs/*.npz; do
    name=$(basename "$f")
    case "$name" in
        fail_*) exit 3 ;;
        missing_*) ;;
        misnamed_*) cp "$f" "/workspace/outputs/seg_$name" ;;
        oom_*) python3 -c "b = bytearray(400 * 2**20); b[::4096] = b'x' * len(b[::4096])" ;;
        slow_*) sleep 60 ;;
        nap_*) sleep 5; cp "$f" /workspace/outputs/ ;;
        eat_*) rm "$f"; cp /dev/null "/workspace/outputs/$name" ;;
        lock_*) (umask 022; mkdir -p /workspace/outputs/cache && : > /workspace/outputs/cache/blob); \\
                cp "$f" /workspace/outputs/ ;;
        persist_*) if [ -e /workspace/outputs/marker ]; then cp "$f" /workspace/outputs/; \\
                   else : > /workspace/outputs/marker; fi ;;
        *) cp "$f" /workspace/outputs/ ;;
    esac
done
"""

DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN useradd --uid 1000 --user-group --no-create-home --no-log-init --home-dir /tmp harness
WORKDIR /workspace
COPY predict.sh /workspace/predict.sh
USER harness
"""


def docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True)


def build_test_image(context: Path) -> str:
    """Builds the test image in the empty folder `context`; returns its tag."""
    require(docker_engine.available(), "a Docker engine (docker/start-engine.sh installs and starts one)")
    require(
        docker("image", "inspect", BASE_IMAGE).returncode == 0,
        f"the base image {BASE_IMAGE} (build it with docker/build-base.sh)",
    )
    (context / "Dockerfile").write_text(DOCKERFILE)
    (context / "predict.sh").write_text(PREDICT_SH)
    built = docker(
        "build", "--network", "none", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "-t", TEST_IMAGE, str(context)
    )
    assert built.returncode == 0, built.stderr
    return TEST_IMAGE


def fake_cases(folder: Path, *names: str) -> Path:
    """A new cases folder of files with these names; the harness image acts by name, never reads them."""
    folder.mkdir()
    for name in names:
        (folder / name).write_bytes(b"not really an npz")
    return folder


def run_time_eval(*argv: str) -> int:
    """`python -m evaluation time-eval ARGV` in this process; its exit status."""
    from evaluation.cli import main

    return main(["time-eval", *argv])
