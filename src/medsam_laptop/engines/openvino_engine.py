"""OpenVINO inference: read the IR, compile it (with a persistent cache), run encoder and decoder.

The model folder's manifest.json says what the graphs take. LiteMedSAM: `encoder.xml` returns the
embedding, `decoder.xml` takes it and boxes. Skip-feature decoder models (Swin-LiteMedSAM,
litemedsam-skip): the encoder also returns skip features, and there is one decoder graph per prompt mode
(`decoders` in the manifest): "box-points-scribble" takes points and scribbles besides the boxes, "box"
takes boxes only. A decoder whose manifest gives a fixed box count (1 for "box-points-scribble") is run
on the boxes in slices of that count. A decoder with a `modality` input (litemedsam-modality) also takes
the case's modality one-hot (`modality.py`), over the groups its manifest lists: `for_case` chooses it.

Compiled graphs are cached under `cache_dir`, one namespace per graph and compile settings
(`compiled_cache.py`).
"""

import copy
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import openvino as ov

from ..modality import modality_one_hot
from .compiled_cache import cache_namespace, usable_cache_dir
from .contract import BOX_ONLY, EngineError, Features, feature_arrays, prompt_mode
from .manifest import MISSING_GRAPH_HINTS, decoder_specs, modality_groups
from .precision import FAST_START, Configuration


def compile_config(hint: str, threads: int = 0, options: dict | None = None) -> dict:
    """The CPU plugin's settings for one graph: precision hint, latency mode, the thread count (0:
    OpenVINO's choice) and any further options."""
    config: dict = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"} | (options or {})
    if threads > 0:
        config["INFERENCE_NUM_THREADS"] = threads
    return config


class OpenVINOEngine:
    """Runs the encoder and the decoder of one prompt mode on the CPU (see `contract.py` for the shapes).

    precision: the precision of each graph (a `precision.Configuration` or its name); f32 gives results
    equal to PyTorch's. prompts: the prompt mode (a key of the manifest's decoders); None picks the model's
    default.
    """

    def __init__(
        self,
        model_dir: Path,
        precision: Configuration | str = "f32",
        threads: int = 0,
        cache_dir: Path | None = None,
        prompts: str | None = None,
    ):
        configuration = precision if isinstance(precision, Configuration) else Configuration.parse(precision)
        specs = decoder_specs(model_dir)
        self.prompt_mode = prompt_mode(model_dir.name, prompts, list(specs))
        spec = specs[self.prompt_mode]
        for graph in (configuration.encoder_file, spec["file"]):
            if not (model_dir / graph).is_file():
                raise EngineError(f"no {graph} for {model_dir.name} in {model_dir}{MISSING_GRAPH_HINTS.get(graph, '')}")
        if cache_dir is not None and not usable_cache_dir(cache_dir):
            cache_dir = None
        core = ov.Core()

        def compile_graph(graph: str, hint: str) -> ov.CompiledModel:
            config = compile_config(hint, threads, configuration.compile_options)
            if cache_dir is not None:
                settings = f"{hint}-{FAST_START}" if configuration.fast_start else hint
                config["CACHE_DIR"] = str(cache_dir / cache_namespace(model_dir, graph, settings))
            return core.compile_model(model_dir / graph, "CPU", config)

        # The two compilations overlap (OpenVINO releases the GIL), which shortens start-up.
        with ThreadPoolExecutor(max_workers=1) as pool:
            decoder = pool.submit(compile_graph, spec["file"], configuration.decoder_hint)
            encoder = compile_graph(configuration.encoder_file, configuration.encoder_hint)
            self._decoder = decoder.result().create_infer_request()
        self._n_features = len(encoder.outputs)
        self._encoder = encoder.create_infer_request()
        self._feature_names = list(spec["inputs"])[: self._n_features]
        self._boxes_per_call = spec["inputs"]["boxes"][0] if isinstance(spec["inputs"]["boxes"][0], int) else 0
        self._modality_groups = modality_groups(model_dir)
        self._modality = None if self._modality_groups is None else modality_one_hot("", self._modality_groups)

    def for_case(self, case: str) -> "OpenVINOEngine":
        """This engine, or for a modality-aware decoder a view of it (sharing the compiled graphs) that gives
        the decoder the case's modality token; a name of no known group gets the generic token."""
        if self._modality_groups is None:
            return self
        view = copy.copy(self)
        view._modality = modality_one_hot(case, self._modality_groups)
        return view

    def encode(self, image: np.ndarray) -> Features:
        """Copies of the encoder's outputs, which the caller may keep."""
        self._encoder.infer([image])
        outputs = tuple(self._encoder.get_output_tensor(i).data.copy() for i in range(self._n_features))
        return outputs[0] if self._n_features == 1 else outputs

    def decode(
        self,
        features: Features,
        boxes: np.ndarray,
        points: np.ndarray | None = None,
        scribbles: np.ndarray | None = None,
    ) -> np.ndarray:
        image = dict(zip(self._feature_names, feature_arrays(features)))
        step = self._boxes_per_call or max(len(boxes), 1)  # a graph of fixed box count gets slices
        logits = []
        for i in range(0, len(boxes), step):
            inputs = image | {"boxes": boxes[i : i + step]}
            if self.prompt_mode != BOX_ONLY:
                inputs |= {"points": points[i : i + step], "scribbles": scribbles[i : i + step]}
            if self._modality is not None:
                inputs["modality"] = self._modality
            self._decoder.infer(inputs)
            logits.append(self._decoder.get_output_tensor(0).data.copy())
        return np.concatenate(logits) if len(logits) != 1 else logits[0]
