"""OpenVINO inference: read the IR, compile it (with a persistent cache), run encoder and decoder."""
import sys
from pathlib import Path

import numpy as np
import openvino as ov

PRECISIONS = ("f32", "bf16", "f16")


class OpenVINOEngine:
    """Runs `encoder.xml` ((1, 3, 256, 256) -> (1, 256, 64, 64)) and `decoder.xml`
    (embedding + boxes (B, 4) in 256-space -> logits (B, 256, 256)) on the CPU.

    precision: the inference precision hint; "f32" gives results equal to PyTorch's, "bf16" is faster on
    CPUs that support it (elsewhere OpenVINO runs f32 anyway).
    """

    def __init__(self, model_dir: Path, precision: str = "f32", threads: int = 0, cache_dir: Path | None = None):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        core = ov.Core()
        if cache_dir is not None and _usable_dir(cache_dir):
            core.set_property({"CACHE_DIR": str(cache_dir)})
        config = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}
        if threads > 0:
            config["INFERENCE_NUM_THREADS"] = threads
        self._encoder = core.compile_model(model_dir / "encoder.xml", "CPU", config).create_infer_request()
        self._decoder = core.compile_model(model_dir / "decoder.xml", "CPU", config).create_infer_request()

    def encode(self, image: np.ndarray) -> np.ndarray:
        """(1, 3, 256, 256) float32 -> (1, 256, 64, 64) float32 (a copy the caller may keep)."""
        self._encoder.infer([image])
        return self._encoder.get_output_tensor(0).data.copy()

    def decode(self, embedding: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """embedding (1, 256, 64, 64), boxes (B, 4) float32 -> logits (B, 256, 256) float32."""
        self._decoder.infer([embedding, boxes])
        return self._decoder.get_output_tensor(0).data.copy()


def _usable_dir(path: Path) -> bool:
    """Creates the cache folder if needed; a folder that cannot be written makes OpenVINO crash, so skip it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.touch()
        probe.unlink()
        return True
    except OSError as err:
        print(f"warning: model cache {path} is not writable ({err}); compiling without a cache", file=sys.stderr)
        return False
