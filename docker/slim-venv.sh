#!/bin/sh
# Remove from an installed run-time venv what a CPU-only OpenVINO IR pipeline never loads.
#
# Usage (inside the image build): sh docker/slim-venv.sh VENV_DIR SITE_PACKAGES_DIR
# What goes, and why it is safe (docker/smoke_test.py checks the result in the same build):
#   openvino: the GPU and NPU plugins (+ the GPU kernel cache.json), every front end but IR
#     (ONNX, TensorFlow, TF Lite, PaddlePaddle, PyTorch, JAX, GGUF: the image reads .xml/.bin
#     only), C headers, CMake files, the C API library, the model-conversion tools and the
#     torch.compile backend (and the ovc / benchmark_app commands that need them). CPU, AUTO, HETERO and BATCH plugins and the IR front end stay.
#   numpy: its own test suites (numpy.testing stays) and the C headers / static libs for
#     building extensions.
set -eu

VENV=${1:?usage: slim-venv.sh VENV_DIR SITE_PACKAGES_DIR}
SP=${2:?usage: slim-venv.sh VENV_DIR SITE_PACKAGES_DIR}
[ -d "$SP/openvino/libs" ] || { echo "slim-venv.sh: error: no openvino under $SP" >&2; exit 1; }
[ -d "$SP/numpy" ] || { echo "slim-venv.sh: error: no numpy under $SP" >&2; exit 1; }

OV=$SP/openvino
rm -f "$OV"/libs/libopenvino_intel_gpu_plugin.so "$OV"/libs/libopenvino_intel_npu_plugin.so \
    "$OV"/libs/cache.json "$OV"/libs/libopenvino_c.so*
for fe in onnx tensorflow tensorflow_lite paddle pytorch jax gguf; do
    rm -f "$OV"/libs/libopenvino_"$fe"_frontend.so*
    rm -rf "$OV/frontend/$fe"
done
rm -rf "$OV/include" "$OV/cmake" "$OV/tools" "$OV/torch"
rm -f "$VENV/bin/ovc" "$VENV/bin/benchmark_app"

find "$SP/numpy" -type d -name tests -prune -exec rm -rf {} +
rm -rf "$SP/numpy/_core/include" "$SP/numpy/_core/lib"
