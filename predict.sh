#!/bin/sh
# Container entry point. The organizers run `/bin/bash -c "sh predict.sh"` in the image's WORKDIR with one
# case in /workspace/inputs; any other folders may be given as arguments (used by the demo).
set -eu
# Outputs and the model cache must stay removable by whoever runs the harness after this container's
# user (the organizers' harness had hit folders it could not delete).
umask 0000
exec "${PYTHON:-python3}" -m medsam_laptop predict -i "${1:-/workspace/inputs}" -o "${2:-/workspace/outputs}"
