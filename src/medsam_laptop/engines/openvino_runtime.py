"""OpenVINO's inference runtime, imported without its model converter.

`import openvino` also imports the converter (`openvino.tools.ovc`) and starts its telemetry, for nothing
inference uses (what that costs a start-up: docs/startup.md). Images built by docker/ have no converter to
skip: docker/slim-venv.sh deletes it.
openvino's `__init__` skips the converter when importing it raises ImportError, so the first import here
marks it absent in `sys.modules` for that moment. Code that converts models imports `openvino.tools.ovc`
itself, which still works afterwards.
"""

import sys

if "openvino" in sys.modules:
    import openvino as ov
else:
    sys.modules["openvino.tools.ovc"] = None  # a None entry makes that import raise ImportError
    try:
        import openvino as ov
    finally:
        del sys.modules["openvino.tools.ovc"]

__all__ = ["ov"]
