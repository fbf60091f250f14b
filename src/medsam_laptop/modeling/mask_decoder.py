"""SAM's mask decoder as LiteMedSAM uses it: logits at 4x the embedding resolution (256 x 256)."""
import torch
from torch import nn

from .common import MLP, LayerNorm2d
from .transformer import TwoWayTransformer


class MaskDecoder(nn.Module):
    def __init__(
        self,
        transformer_dim: int,
        transformer: TwoWayTransformer,
        num_multimask_outputs: int = 3,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
    ) -> None:
        super().__init__()
        self.transformer = transformer
        self.num_mask_tokens = num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3) for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(transformer_dim, iou_head_hidden_dim, self.num_mask_tokens, iou_head_depth)

    def run_transformer(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Runs the two-way transformer on [iou token, mask tokens, prompts].

        image_embeddings: (1 or B, C, h, w); image_pe: (1, C, h, w); sparse: (B, N, C); dense: (B, C, h, w).
        Returns the output tokens (B, 1 + num_mask_tokens + N, C) and image features (B, C, h, w).
        """
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        batch = sparse_prompt_embeddings.shape[0]
        tokens = torch.cat([output_tokens.unsqueeze(0).expand(batch, -1, -1), sparse_prompt_embeddings], dim=1)
        if image_embeddings.shape[0] != batch:
            image_embeddings = torch.repeat_interleave(image_embeddings, batch, dim=0)
        src = image_embeddings + dense_prompt_embeddings
        pos_src = image_pe.expand(batch, -1, -1, -1)
        b, c, h, w = src.shape
        hs, src = self.transformer(src, pos_src, tokens)
        return hs, src.transpose(1, 2).reshape(b, c, h, w)

    def hypernetwork_masks(self, mask_tokens_out: torch.Tensor, upscaled: torch.Tensor) -> torch.Tensor:
        """mask_tokens_out: (B, M, C); upscaled: (B, C', H, W) -> masks (B, M, H, W)."""
        hyper_in = torch.stack(
            [mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1
        )
        b, c, h, w = upscaled.shape
        return (hyper_in @ upscaled.reshape(b, c, h * w)).reshape(b, -1, h, w)

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns mask logits (B, 1 or 3, 4h, 4w) and predicted IoU (B, 1 or 3)."""
        hs, src = self.run_transformer(image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings)
        iou_pred = self.iou_prediction_head(hs[:, 0, :])
        masks = self.hypernetwork_masks(hs[:, 1 : 1 + self.num_mask_tokens, :], self.output_upscaling(src))
        picked = slice(1, None) if multimask_output else slice(0, 1)
        return masks[:, picked], iou_pred[:, picked]
