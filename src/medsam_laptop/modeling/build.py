"""Builders with the hyper-parameters written out, and a registry that builds models by name."""
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder
from .sam import LiteMedSAM
from .tiny_vit import TinyViT
from .transformer import TwoWayTransformer


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Reads a checkpoint without unpickling code: a bare state_dict or {"model": state_dict}."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("model"), dict):
        return checkpoint["model"]
    return checkpoint


def _prompt_encoder() -> PromptEncoder:
    return PromptEncoder(embed_dim=256, image_embedding_size=(64, 64), input_image_size=(256, 256), mask_in_chans=16)


def build_litemedsam(checkpoint: str | Path | None = None) -> LiteMedSAM:
    model = LiteMedSAM(
        image_encoder=TinyViT(
            img_size=256,
            embed_dims=(64, 128, 160, 320),
            depths=(2, 2, 6, 2),
            num_heads=(2, 4, 5, 10),
            window_sizes=(7, 7, 14, 7),
            mlp_ratio=4.0,
            mbconv_expand_ratio=4.0,
        ),
        prompt_encoder=_prompt_encoder(),
        mask_decoder=MaskDecoder(
            transformer_dim=256,
            transformer=TwoWayTransformer(depth=2, embedding_dim=256, num_heads=8, mlp_dim=2048),
            num_multimask_outputs=3,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
        ),
    )
    if checkpoint is not None:
        model.load_state_dict(load_state_dict(checkpoint), strict=True)
    return model.eval()


model_registry: dict[str, Callable[..., nn.Module]] = {
    "litemedsam": build_litemedsam,
}
