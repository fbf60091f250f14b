"""The compositions: LiteMedSAM (TinyViT + SAM prompt encoder + SAM mask decoder, box prompts only) and
Swin-LiteMedSAM (an encoder with skip features + the same prompt encoder + a skip-feature decoder). The
second composition also holds litemedsam-skip, whose encoder is TinyViT with its stage outputs."""

import torch
from torch import nn

from .mask_decoder import MaskDecoder, SkipFeatureMaskDecoder
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
        """embedding: (1, 256, 64, 64), shared by the boxes, or (B, 256, 64, 64), one per box (training on
        cached embeddings); boxes: (B, 4) float [x0, y0, x1, y1] in 256-space.

        Returns low-resolution mask logits (B, 1, 256, 256) and predicted IoU (B, 1).
        """
        sparse, dense = self.prompt_encoder(points=None, boxes=boxes, masks=None)
        return self.mask_decoder(
            image_embeddings=embedding,
            image_pe=self.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense[:1],  # without mask prompts every box's dense prompt is the same
            multimask_output=False,
        )


class ModalityLiteMedSAM(LiteMedSAM):
    """LiteMedSAM with a learned modality token per group (MCP-MedSAM's modality prompt): the token chosen
    by a one-hot vector (`modality.modality_one_hot`) is added to every sparse prompt token. Column 0 of the
    one-hot picks the generic token, a constant zero, so that a case of no known group runs LiteMedSAM's
    decoder path; `modality_tokens` (G, 256) holds the learned tokens of the G known groups.
    """

    def __init__(
        self, image_encoder: nn.Module, prompt_encoder: PromptEncoder, mask_decoder: MaskDecoder, groups: int
    ) -> None:
        super().__init__(image_encoder, prompt_encoder, mask_decoder)
        self.modality_tokens = nn.Parameter(torch.zeros(groups, prompt_encoder.embed_dim))  # starts as LiteMedSAM

    def decode(
        self, embedding: torch.Tensor, boxes: torch.Tensor, modality: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`LiteMedSAM.decode` with modality (1 or B, G + 1) float one-hot; None is the generic token."""
        sparse, dense = self.prompt_encoder(points=None, boxes=boxes, masks=None)
        if modality is not None:
            table = torch.cat([torch.zeros_like(self.modality_tokens[:1]), self.modality_tokens])
            sparse = sparse + (modality @ table)[:, None, :]
        return self.mask_decoder(
            image_embeddings=embedding,
            image_pe=self.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense[:1],
            multimask_output=False,
        )


class SkipFeatureLiteMedSAM(nn.Module):
    """An encoder with skip features + SAM prompt encoder + skip-feature mask decoder: Swin-LiteMedSAM with
    the Swin encoder, litemedsam-skip with `TinyViTWithSkips`.

    Prompts per box: the box, and optionally 4 positive points and a scribble mask (all in 256-space).
    """

    def __init__(
        self, image_encoder: nn.Module, prompt_encoder: PromptEncoder, mask_decoder: SkipFeatureMaskDecoder
    ) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder

    def encode(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """image: (N, 3, 256, 256) float32, min-max normalised, zero-padded.

        Returns the embedding (N, 256, 64, 64), fs0 (N, 128, 128, 128) and the fused skip features
        (N, 256, 64, 64): everything the decoder needs from the image.
        """
        embedding, (fs0, fs1, fs2, fs3) = self.image_encoder(image)
        return embedding, fs0, self.mask_decoder.fuse_skips(fs1, fs2, fs3)

    def decode(
        self,
        embedding: torch.Tensor,
        fine_skip: torch.Tensor,
        fused_skips: torch.Tensor,
        boxes: torch.Tensor,
        points: torch.Tensor | None = None,
        scribbles: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Image features of batch 1 (or B) from `encode`; boxes (B, 4) float [x0, y0, x1, y1]; points
        (B, P, 2) float (x, y), all positive; scribbles (B, 1, 256, 256) float {0, 1}. Without points and
        scribbles the box alone prompts the decoder.

        Returns mask logits (B, 1, 256, 256) and predicted IoU (B, 1).
        """
        point_prompt = None if points is None else (points, torch.ones_like(points[..., 0]))
        sparse, dense = self.prompt_encoder(points=point_prompt, boxes=boxes, masks=scribbles)
        return self.mask_decoder(
            image_embeddings=embedding,
            fine_skip=fine_skip,
            fused_skips=fused_skips,
            image_pe=self.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=False,
        )
