"""SAM's mask decoder as LiteMedSAM uses it (logits at 4x the embedding resolution, 256 x 256), and
Swin-LiteMedSAM's, which upsamples with the encoder's skip features. Both share the two-way transformer,
the output tokens, the hypernetwork MLPs and the IoU head (`TokenMaskDecoder`).
"""

import torch
from torch import nn
from torch.nn import functional as F

from .common import MLP, LayerNorm2d, conv_neck
from .transformer import TwoWayTransformer


class TokenMaskDecoder(nn.Module):
    """The part SAM-style decoders share: [iou token, mask tokens, prompts] through the two-way
    transformer, then one hypernetwork MLP per mask token and an IoU head. Subclasses add the upscaling."""

    def __init__(
        self,
        transformer_dim: int,
        transformer: TwoWayTransformer,
        num_multimask_outputs: int,
        iou_head_depth: int,
        iou_head_hidden_dim: int,
    ) -> None:
        super().__init__()
        self.transformer = transformer
        self.num_mask_tokens = num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
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

        image_embeddings: (1 or B, C, h, w); image_pe: (1, C, h, w); sparse: (B, N, C); dense: (1 or B, C,
        h, w). Returns the output tokens (B, 1 + num_mask_tokens + N, C) and image features (B, C, h, w).

        When the image embedding and the dense prompt both have batch 1 (box prompts only), the image side
        stays batch 1 until the first image-to-token attention mixes in the prompts: the first layer's
        image projections then run once for all B boxes, by broadcasting, instead of once per box.
        """
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        batch = sparse_prompt_embeddings.shape[0]
        tokens = torch.cat([output_tokens.unsqueeze(0).expand(batch, -1, -1), sparse_prompt_embeddings], dim=1)
        if image_embeddings.shape[0] == 1 and dense_prompt_embeddings.shape[0] == 1:
            src, pos_src = image_embeddings + dense_prompt_embeddings, image_pe
        else:
            if image_embeddings.shape[0] != batch:
                image_embeddings = torch.repeat_interleave(image_embeddings, batch, dim=0)
            src = image_embeddings + dense_prompt_embeddings
            pos_src = image_pe.expand(batch, -1, -1, -1)
        _, c, h, w = src.shape
        hs, src = self.transformer(src, pos_src, tokens)
        return hs, src.transpose(1, 2).reshape(-1, c, h, w)

    def hypernetwork_masks(self, mask_tokens_out: torch.Tensor, upscaled: torch.Tensor) -> torch.Tensor:
        """mask_tokens_out: (B, M, C); upscaled: (B, C', H, W) -> masks (B, M, H, W)."""
        hyper_in = torch.stack(
            [mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1
        )
        b, c, h, w = upscaled.shape
        return (hyper_in @ upscaled.reshape(b, c, h * w)).reshape(b, -1, h, w)

    @staticmethod
    def select_outputs(
        masks: torch.Tensor, iou_pred: torch.Tensor, multimask_output: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, M, H, W), (B, M) -> the single-mask output (B, 1, ...) or the three multimask ones (B, 3, ...)."""
        picked = slice(1, None) if multimask_output else slice(0, 1)
        return masks[:, picked], iou_pred[:, picked]


class MaskDecoder(TokenMaskDecoder):
    """LiteMedSAM's decoder: two transposed convolutions take the 64 x 64 features to 256 x 256."""

    def __init__(
        self,
        transformer_dim: int,
        transformer: TwoWayTransformer,
        num_multimask_outputs: int,
        iou_head_depth: int,
        iou_head_hidden_dim: int,
    ) -> None:
        super().__init__(transformer_dim, transformer, num_multimask_outputs, iou_head_depth, iou_head_hidden_dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )

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
        return self.select_outputs(masks, iou_pred, multimask_output)


class SkipFeatureMaskDecoder(TokenMaskDecoder):
    """The skip-feature decoder: Swin-LiteMedSAM's (the authors' `MaskDecoder_Prompt`, the part it runs),
    which litemedsam-skip also uses.

    `neck` fuses the encoder's 64 x 64 skip features cat(fs1, fs2, fs3) (800 channels) into 256 channels;
    it does not depend on the prompts, so `fuse_skips` runs it once per image. `output_upscaling1` takes
    cat(transformer features, fused) to 128 x 128, `output_upscaling2` takes cat(that, fs0) to 256 x 256.
    The authors' module also builds `prompt1` / `prompt2`, which it never calls; they are not built here
    (`build.strip_unused_swin_keys` drops their keys).
    """

    def __init__(
        self,
        transformer_dim: int,
        transformer: TwoWayTransformer,
        num_multimask_outputs: int,
        iou_head_depth: int,
        iou_head_hidden_dim: int,
        skip_chans: tuple[int, int, int, int],
    ) -> None:
        super().__init__(transformer_dim, transformer, num_multimask_outputs, iou_head_depth, iou_head_hidden_dim)
        self.neck = conv_neck(sum(skip_chans[1:]), transformer_dim)
        self.output_upscaling1 = nn.Sequential(
            nn.Conv2d(2 * transformer_dim, transformer_dim, kernel_size=1),
            LayerNorm2d(transformer_dim),
            nn.GELU(),
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 2, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.output_upscaling2 = nn.Sequential(
            nn.Conv2d(transformer_dim // 2 + skip_chans[0], transformer_dim // 4, kernel_size=1),
            LayerNorm2d(transformer_dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )

    def fuse_skips(self, fs1: torch.Tensor, fs2: torch.Tensor, fs3: torch.Tensor) -> torch.Tensor:
        """(N, 160 / 320 / 320, 64, 64) -> (N, 256, 64, 64)."""
        return self.neck(torch.cat([fs1, fs2, fs3], dim=1))

    @staticmethod
    def _upscale(stage: nn.Sequential, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """stage(cat(x, skip)) with the leading 1x1 conv split by input channels: x (B, ...) and skip
        (1 or B, ...) are convolved apart and added, so a batch-1 skip is convolved once and broadcast."""
        conv = stage[0]
        split = x.shape[1]
        y = F.conv2d(x, conv.weight[:, :split]) + F.conv2d(skip, conv.weight[:, split:], conv.bias)
        return stage[1:](y)

    def forward(
        self,
        image_embeddings: torch.Tensor,
        fine_skip: torch.Tensor,
        fused_skips: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """image_embeddings (1 or B, 256, 64, 64); fine_skip = fs0 (1 or B, 128, 128, 128); fused_skips
        (1 or B, 256, 64, 64) from `fuse_skips`; image_pe (1, 256, 64, 64); sparse (B, N, 256); dense
        (B, 256, 64, 64).

        Image features of batch 1 are shared by all B prompts by broadcasting (the authors' code fails on
        more than one box). No `expand` to B: OpenVINO's CPU plugin mis-sizes the batch of such a graph
        when the dense prompt comes from a scribble.

        Returns mask logits (B, 1 or 3, 256, 256) and predicted IoU (B, 1 or 3).
        """
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        batch = sparse_prompt_embeddings.shape[0]
        tokens = torch.cat([output_tokens.unsqueeze(0).expand(batch, -1, -1), sparse_prompt_embeddings], dim=1)
        h, w = dense_prompt_embeddings.shape[2:]
        hs, src = self.transformer(image_embeddings + dense_prompt_embeddings, image_pe, tokens)
        src = src.transpose(1, 2).unflatten(2, (h, w))
        x = self._upscale(self.output_upscaling2, self._upscale(self.output_upscaling1, src, fused_skips), fine_skip)
        iou_pred = self.iou_prediction_head(hs[:, 0, :])
        masks = self.hypernetwork_masks(hs[:, 1 : 1 + self.num_mask_tokens, :], x)
        return self.select_outputs(masks, iou_pred, multimask_output)
