"""LiteMedSAM: TinyViT image encoder + SAM prompt encoder + SAM mask decoder, box prompts only."""
import torch
from torch import nn

from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder


class LiteMedSAM(nn.Module):
    def __init__(self, image_encoder: nn.Module, prompt_encoder: PromptEncoder, mask_decoder: MaskDecoder) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """image: (B, 3, 256, 256) float32, min-max normalised, zero-padded -> (B, 256, 64, 64)."""
        return self.image_encoder(image)

    def decode(self, embedding: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """embedding: (1, 256, 64, 64); boxes: (B, 4) float [x0, y0, x1, y1] in 256-space.

        Returns low-resolution mask logits (B, 1, 256, 256) and predicted IoU (B, 1).
        """
        sparse, dense = self.prompt_encoder(points=None, boxes=boxes, masks=None)
        return self.mask_decoder(
            image_embeddings=embedding,
            image_pe=self.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=False,
        )
