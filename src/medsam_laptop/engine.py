"""OpenVINO inference: read the IR, compile it (with a persistent cache), run encoder and decoder.

The model folder's manifest.json says what the graphs take. LiteMedSAM: `encoder.xml` returns the
embedding, `decoder.xml` takes it and boxes. Swin-LiteMedSAM: the encoder also returns skip features, and
there is one decoder graph per prompt mode (`decoders` in the manifest): "box-points-scribble" takes
points and scribbles besides the boxes, "box" takes boxes only. A decoder whose manifest gives a fixed
box count (1 for "box-points-scribble") is run on the boxes in slices of that count.
"""
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import openvino as ov

if TYPE_CHECKING:  # segment imports OpenCV, which predict imports while the model compiles
    from .segment import Features

PRECISIONS = ("f32", "bf16", "f16", "int8")


def decoder_specs(model_dir: Path) -> dict[str, dict]:
    """Prompt mode -> {"file": ..., "inputs": {name: shape}} from the manifest, the model's default first.

    A manifest without `decoders` (LiteMedSAM's, or none at all) describes one box decoder, decoder.xml.
    """
    manifest_path = model_dir / "manifest.json"
    export = json.loads(manifest_path.read_text())["export"] if manifest_path.is_file() else {}
    if "decoders" in export:
        return export["decoders"]
    inputs = export.get("decoder", {}).get("inputs", {"image_embeddings": [1, 256, 64, 64], "boxes": ["B", 4]})
    return {"box": {"file": "decoder.xml", "inputs": inputs}}


def encoder_file_for(precision: str) -> str:
    return "encoder-int8.xml" if precision == "int8" else "encoder.xml"


class OpenVINOEngine:
    """Runs the encoder ((1, 3, 256, 256) -> image features) and the decoder of one prompt mode
    (image features + boxes (B, 4) in 256-space [+ points (B, 4, 2), scribbles (B, 1, 256, 256)] ->
    logits (B, 256, 256)) on the CPU.

    precision: "f32" gives results equal to PyTorch's; "bf16" and "f16" are OpenVINO's inference precision
    hint (used where the CPU supports it, f32 elsewhere); "int8" runs the quantized encoder
    (encoder-int8.xml, from the quantize command) with the f32 decoder.
    prompts: the prompt mode (a key of the manifest's decoders); None picks the model's default.
    """

    def __init__(
        self,
        model_dir: Path,
        precision: str = "f32",
        threads: int = 0,
        cache_dir: Path | None = None,
        prompts: str | None = None,
    ):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        specs = decoder_specs(model_dir)
        self.prompts = prompts or next(iter(specs))
        if self.prompts not in specs:
            raise ValueError(f"{model_dir.name} takes prompts {', '.join(specs)}, not {self.prompts!r}")
        spec = specs[self.prompts]
        core = ov.Core()
        if cache_dir is not None and _usable_dir(cache_dir):
            core.set_property({"CACHE_DIR": str(cache_dir)})
        encoder_file = encoder_file_for(precision)
        hint = "f32" if precision == "int8" else precision
        config = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}
        if threads > 0:
            config["INFERENCE_NUM_THREADS"] = threads
        # The two compilations overlap (OpenVINO releases the GIL), which shortens start-up.
        with ThreadPoolExecutor(max_workers=1) as pool:
            decoder = pool.submit(core.compile_model, model_dir / spec["file"], "CPU", config)
            encoder = core.compile_model(model_dir / encoder_file, "CPU", config)
            self._decoder = decoder.result().create_infer_request()
        self._n_features = len(encoder.outputs)
        self._encoder = encoder.create_infer_request()
        self._feature_names = list(spec["inputs"])[: self._n_features]
        self._boxes_per_call = spec["inputs"]["boxes"][0] if isinstance(spec["inputs"]["boxes"][0], int) else 0

    def encode(self, image: np.ndarray) -> "Features":
        """(1, 3, 256, 256) float32 -> the embedding (1, 256, 64, 64) float32, or a tuple of every encoder
        output when there are several (Swin-LiteMedSAM: embedding, fs0, fused skips); copies the caller
        may keep."""
        self._encoder.infer([image])
        outputs = tuple(self._encoder.get_output_tensor(i).data.copy() for i in range(self._n_features))
        return outputs[0] if self._n_features == 1 else outputs

    def decode(
        self,
        features: "Features",
        boxes: np.ndarray,
        points: np.ndarray | None = None,
        scribbles: np.ndarray | None = None,
    ) -> np.ndarray:
        """features from `encode`, boxes (B, 4) float32 [, points (B, 4, 2), scribbles (B, 1, 256, 256)
        float32, required by the "box-points-scribble" decoder] -> logits (B, 256, 256) float32."""
        arrays = (features,) if isinstance(features, np.ndarray) else features
        image = dict(zip(self._feature_names, arrays))
        step = self._boxes_per_call or max(len(boxes), 1)  # a graph of fixed box count gets slices
        logits = []
        for i in range(0, len(boxes), step):
            inputs = image | {"boxes": boxes[i : i + step]}
            if self.prompts != "box":
                inputs |= {"points": points[i : i + step], "scribbles": scribbles[i : i + step]}
            self._decoder.infer(inputs)
            logits.append(self._decoder.get_output_tensor(0).data.copy())
        return np.concatenate(logits) if len(logits) != 1 else logits[0]


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
