"""SAM's prompt encoder: boxes, points and a dense mask into sparse and dense embeddings.

Written with arithmetic instead of boolean-index assignment so that it traces into an OpenVINO graph
with a dynamic number of prompts; the results are bit-identical to the index-assignment form.
"""

import math

import torch
from torch import nn

from .common import LayerNorm2d


class PositionEmbeddingRandom(nn.Module):
    """Fourier features of (x, y) coordinates in [0, 1] with a fixed random Gaussian matrix."""

    def __init__(self, num_pos_feats: int = 64) -> None:
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn((2, num_pos_feats)))

    def _encode(self, coords: torch.Tensor) -> torch.Tensor:
        """coords: (..., 2) in [0, 1] -> (..., 2 * num_pos_feats)."""
        coords = 2 * coords - 1
        coords = coords @ self.positional_encoding_gaussian_matrix
        coords = 2 * math.pi * coords
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)

    def forward(self, size: tuple[int, int]) -> torch.Tensor:
        """Dense encoding of an (h, w) grid of pixel centres: (C, h, w)."""
        h, w = size
        grid = torch.ones((h, w), device=self.positional_encoding_gaussian_matrix.device)
        y = (grid.cumsum(dim=0) - 0.5) / h
        x = (grid.cumsum(dim=1) - 0.5) / w
        return self._encode(torch.stack([x, y], dim=-1)).permute(2, 0, 1)

    def forward_with_coords(self, coords: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        """coords: (B, N, 2) pixel (x, y) in an image of `image_size` (h, w) -> (B, N, C)."""
        scale = torch.tensor([image_size[1], image_size[0]], dtype=coords.dtype, device=coords.device)
        return self._encode((coords / scale).to(torch.float))


class PromptEncoder(nn.Module):
    def __init__(
        self,
        embed_dim: int,
        image_embedding_size: tuple[int, int],
        input_image_size: tuple[int, int],
        mask_in_chans: int,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.input_image_size = input_image_size
        self.image_embedding_size = image_embedding_size
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        # 0: negative point, 1: positive point, 2: box top-left, 3: box bottom-right.
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def get_dense_pe(self) -> torch.Tensor:
        """Positional encoding of the image embedding grid: (1, C, 64, 64)."""
        return self.pe_layer(self.image_embedding_size).unsqueeze(0)

    def _embed_points(self, points: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
        """points: (B, N, 2) pixel (x, y) in input space; labels: (B, N), 1 positive, 0 negative, -1 padding."""
        points = points + 0.5  # pixel centres
        if pad:
            points = torch.cat([points, torch.zeros_like(points[:, :1])], dim=1)
            labels = torch.cat([labels, -torch.ones_like(labels[:, :1])], dim=1)
        pe = self.pe_layer.forward_with_coords(points, self.input_image_size)
        labels = labels[..., None]
        padding = (labels == -1).to(pe.dtype)
        return (
            pe * (1 - padding)
            + self.not_a_point_embed.weight * padding
            + self.point_embeddings[0].weight * (labels == 0).to(pe.dtype)
            + self.point_embeddings[1].weight * (labels == 1).to(pe.dtype)
        )

    def _embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        """boxes: (B, 4) or (B, 1, 4) pixel [x0, y0, x1, y1] in input space -> (B, 2, C)."""
        corners = (boxes + 0.5).reshape(-1, 2, 2)
        pe = self.pe_layer.forward_with_coords(corners, self.input_image_size)
        corner_embed = torch.cat([self.point_embeddings[2].weight, self.point_embeddings[3].weight])
        return pe + corner_embed

    def forward(
        self, points: tuple[torch.Tensor, torch.Tensor] | None, boxes: torch.Tensor | None, masks: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns sparse embeddings (B, N, C) and dense embeddings (B, C, 64, 64).

        masks: (B, 1, 256, 256) in input space; without masks the learned no-mask embedding is used.
        """
        if points is not None:
            bs = points[0].shape[0]
        elif boxes is not None:
            bs = boxes.shape[0]
        else:
            bs = masks.shape[0]
        device = self.not_a_point_embed.weight.device
        sparse = torch.empty((bs, 0, self.embed_dim), device=device)
        if points is not None:
            sparse = torch.cat([sparse, self._embed_points(*points, pad=boxes is None)], dim=1)
        if boxes is not None:
            sparse = torch.cat([sparse, self._embed_boxes(boxes)], dim=1)
        if masks is not None:
            dense = self.mask_downscaling(masks)
        else:
            h, w = self.image_embedding_size
            dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(bs, -1, h, w)
        return sparse, dense
