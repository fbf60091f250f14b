"""The PyTorch engine: the same encode/decode contract as the OpenVINO engine, for reference and parity."""

from pathlib import Path

import numpy as np
import torch

from ..architectures import ARCHITECTURES
from ..io.checkpoints import official_litemedsam_checkpoint
from ..modeling import model_registry
from .contract import BOX_ONLY, Features, feature_arrays, prompt_mode


class TorchEngine:
    """model: a registry name. LiteMedSAM defaults to the official weights; the others need a checkpoint.
    prompts: "box" or, for Swin-LiteMedSAM, "box-points-scribble" (its default; `architectures.ARCHITECTURES`)."""

    def __init__(
        self, model: str = "litemedsam", checkpoint: Path | None = None, threads: int = 0, prompts: str | None = None
    ) -> None:
        if threads > 0:
            torch.set_num_threads(threads)
        if checkpoint is None and model == "litemedsam":
            checkpoint = official_litemedsam_checkpoint()
        if checkpoint is None:
            raise ValueError(f"{model} has no bundled weights: pass its checkpoint")
        self.model = model_registry[model](checkpoint)
        self.prompt_mode = prompt_mode(model, prompts, ARCHITECTURES[model].prompts)

    def for_case(self, case: str) -> "TorchEngine":
        return self  # the torch backend runs the bundled LiteMedSAM, which knows no modality

    @torch.inference_mode()
    def encode(self, image: np.ndarray) -> Features:
        out = self.model.encode(torch.from_numpy(image))
        return out.numpy() if isinstance(out, torch.Tensor) else tuple(t.numpy() for t in out)

    @torch.inference_mode()
    def decode(
        self,
        features: Features,
        boxes: np.ndarray,
        points: np.ndarray | None = None,
        scribbles: np.ndarray | None = None,
    ) -> np.ndarray:
        tensors = [torch.from_numpy(f) for f in feature_arrays(features)]
        cues = [] if self.prompt_mode == BOX_ONLY else [torch.from_numpy(points), torch.from_numpy(scribbles)]
        logits, _ = self.model.decode(*tensors, torch.from_numpy(boxes), *cues)
        return logits[:, 0].numpy()
