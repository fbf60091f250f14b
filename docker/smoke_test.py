"""Build-time check that the slimmed run-time venv still does what the pipeline needs.

Run by the Dockerfile with the image's venv python, with no network: imports numpy, cv2 and
openvino, writes a tiny model as OpenVINO IR, reads it back through the IR front end, compiles it
for the CPU in f32 and checks one inference. Exits non-zero (failing the build) on any error.
"""

import tempfile
from pathlib import Path

import cv2
import numpy as np
import openvino as ov
import openvino.opset13 as ops


def check_opencv() -> None:
    """INTER_AREA resize, as the pre-processing uses it, gives the expected mean."""
    image = np.full((8, 8, 3), 200, np.uint8)
    small = cv2.resize(image, (4, 4), interpolation=cv2.INTER_AREA)
    assert small.shape == (4, 4, 3) and int(small.mean()) == 200, small


def check_openvino_ir(folder: Path) -> None:
    """Save a relu model as IR, read it back, compile it on the CPU and run it once."""
    x = ops.parameter([1, 4], np.float32, name="x")
    ov.save_model(ov.Model([ops.relu(x)], [x], "smoke"), folder / "smoke.xml")
    core = ov.Core()
    assert "CPU" in core.available_devices, core.available_devices
    model = core.read_model(folder / "smoke.xml")
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    out = compiled(np.array([[-1.0, 0.0, 2.0, -3.0]], np.float32))[0]
    np.testing.assert_array_equal(out, [[0.0, 0.0, 2.0, 0.0]])


def main() -> None:
    check_opencv()
    with tempfile.TemporaryDirectory() as tmp:
        check_openvino_ir(Path(tmp))
    print(f"smoke test passed: numpy {np.__version__}, opencv {cv2.__version__}, openvino {ov.__version__}")


if __name__ == "__main__":
    main()
