# Submission image: `sh predict.sh` in /workspace reads /workspace/inputs, writes /workspace/outputs.
#
# Build with docker/build.sh TEAM (it downloads the wheelhouse on the host first; the build itself
# needs no network: `docker build --network none`). Works with the classic builder and BuildKit.
# BASE_IMAGE: any Debian-like image with python3 >= 3.10 and useradd, e.g. the default or the
# local one from docker/build-base.sh (no registry needed).
ARG BASE_IMAGE=python:3.11-slim

# ---- build stage: the venv, from wheels only, slimmed and smoke-tested -------------------------
FROM ${BASE_IMAGE} AS build
COPY build/wheelhouse/ /tmp/wheelhouse/
COPY requirements.txt docker/slim-venv.sh docker/smoke_test.py /tmp/
# pip runs from its wheel, so neither pip nor setuptools ends up in the venv; pip byte-compiles
# what it installs. The .pth file puts /workspace/src (the package, below) on the venv's path.
RUN set -eu; \
    python3 -m venv --without-pip /opt/venv; \
    pip_wheel=$(ls /tmp/wheelhouse/pip-*.whl); \
    /opt/venv/bin/python "$pip_wheel/pip" install --no-index --find-links /tmp/wheelhouse \
        --no-cache-dir --disable-pip-version-check --no-warn-script-location -r /tmp/requirements.txt; \
    site=$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))'); \
    sh /tmp/slim-venv.sh /opt/venv "$site"; \
    echo /workspace/src > "$site/medsam-laptop.pth"; \
    PYTHONDONTWRITEBYTECODE=1 /opt/venv/bin/python /tmp/smoke_test.py; \
    chmod -R a+rX /opt/venv

# The repo's layout is kept (/workspace/src beside /workspace/weights), so weights found relative to
# the package's own location are found in the image too.
COPY src/medsam_laptop/ /workspace/src/medsam_laptop/
# unchecked-hash: the .pyc files are used without stat-ing their sources at every start.
RUN /opt/venv/bin/python -m compileall -q --invalidation-mode unchecked-hash /workspace/src \
    && chmod -R a+rX /workspace/src

# ---- run-time image --------------------------------------------------------------------------
FROM ${BASE_IMAGE}
# A non-root user; HOME=/tmp so that any uid given with `docker run -u` has a writable home.
RUN useradd --uid 1000 --user-group --no-create-home --no-log-init --home-dir /tmp \
        --shell /bin/bash medsam
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/venv/ /opt/venv/
WORKDIR /workspace
# Every model under weights/: the default litemedsam-wide, the organizers' litemedsam, and Swin-LiteMedSAM once a user has run
# `python -m medsam_laptop import-checkpoint` on the host. MODEL and PRECISION pick the defaults
# (`docker run -e MEDSAM_MODEL=... -e MEDSAM_PRECISION=...` override them per run).
ARG MODEL=litemedsam-wide
ARG PRECISION=auto
ENV MEDSAM_MODEL=${MODEL} \
    MEDSAM_PRECISION=${PRECISION}
COPY weights/ /workspace/weights/
COPY --from=build /workspace/src/ /workspace/src/
COPY predict.sh /workspace/predict.sh
USER medsam
CMD ["/bin/bash", "-c", "sh predict.sh"]
