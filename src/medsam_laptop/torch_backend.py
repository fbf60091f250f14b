"""The PyTorch engine: the same encode/decode contract as the OpenVINO engine, for reference and parity."""
from pathlib import Path

import numpy as np
import torch

from .checkpoints import official_litemedsam_checkpoint
from .modeling import model_registry


class TorchEngine:
    def __init__(self, model: str = "litemedsam", checkpoint: Path | None = None, threads: int = 0) -> None:
        if threads > 0:
            torch.set_num_threads(threads)
        if checkpoint is None and model == "litemedsam":
            checkpoint = official_litemedsam_checkpoint()
        self.model = model_registry[model](checkpoint)

    @torch.inference_mode()
    def encode(self, image: np.ndarray) -> np.ndarray:
        return self.model.encode(torch.from_numpy(image)).numpy()

    @torch.inference_mode()
    def decode(self, embedding: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        logits, _ = self.model.decode(torch.from_numpy(embedding), torch.from_numpy(boxes))
        return logits[:, 0].numpy()
