"""Builders with the hyper-parameters written out, and a registry that builds models by name."""

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..modality import MODALITY_GROUPS
from .mask_decoder import MaskDecoder, SkipFeatureMaskDecoder
from .prompt_encoder import PromptEncoder
from .sam import LiteMedSAM, ModalityLiteMedSAM, SkipFeatureLiteMedSAM
from .swin import SwinEncoder
from .tiny_vit import TinyViT, TinyViTWithSkips
from .transformer import TwoWayTransformer


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Reads a checkpoint without unpickling code: a bare state_dict or {"model": state_dict}."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("model"), dict):
        return checkpoint["model"]
    return checkpoint


# Built by the authors' MaskDecoder_Prompt but never called: accepted in a checkpoint and dropped.
SWIN_UNUSED_PREFIXES = ("mask_decoder.prompt1.", "mask_decoder.prompt2.")


def strip_unused_swin_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The authors' Swin-LiteMedSAM state_dict without the keys of the modules their decoder never runs."""
    return {k: v for k, v in state_dict.items() if not k.startswith(SWIN_UNUSED_PREFIXES)}


def _prompt_encoder() -> PromptEncoder:
    return PromptEncoder(embed_dim=256, image_embedding_size=(64, 64), input_image_size=(256, 256), mask_in_chans=16)


def _sam_decoder_args() -> dict:
    """SAM's mask-decoder settings, which both models keep (so their shared decoder weights have one shape)."""
    return dict(
        transformer_dim=256,
        transformer=TwoWayTransformer(depth=2, embedding_dim=256, num_heads=8, mlp_dim=2048),
        num_multimask_outputs=3,
        iou_head_depth=3,
        iou_head_hidden_dim=256,
    )


def _tiny_vit_args() -> dict:
    """LiteMedSAM's TinyViT-5M settings."""
    return dict(
        img_size=256,
        embed_dims=(64, 128, 160, 320),
        depths=(2, 2, 6, 2),
        num_heads=(2, 4, 5, 10),
        window_sizes=(7, 7, 14, 7),
        mlp_ratio=4.0,
        mbconv_expand_ratio=4.0,
    )


# Channels of the four encoder stage outputs, which the skip-feature decoder takes: the same in the Swin
# encoder and in TinyViT-5M.
SKIP_CHANNELS = (128, 160, 320, 320)


def build_litemedsam(checkpoint: str | Path | None = None) -> LiteMedSAM:
    model = LiteMedSAM(
        image_encoder=TinyViT(**_tiny_vit_args()),
        prompt_encoder=_prompt_encoder(),
        mask_decoder=MaskDecoder(**_sam_decoder_args()),
    )
    if checkpoint is not None:
        model.load_state_dict(load_state_dict(checkpoint), strict=True)
    return model.eval()


def build_litemedsam_modality(checkpoint: str | Path | None = None) -> ModalityLiteMedSAM:
    """LiteMedSAM with a modality token per group of `modality.MODALITY_GROUPS`; `checkpoint`: a state_dict
    of this model (finetune-decoder)."""
    model = ModalityLiteMedSAM(
        image_encoder=TinyViT(**_tiny_vit_args()),
        prompt_encoder=_prompt_encoder(),
        mask_decoder=MaskDecoder(**_sam_decoder_args()),
        groups=len(MODALITY_GROUPS),
    )
    if checkpoint is not None:
        model.load_state_dict(load_state_dict(checkpoint), strict=True)
    return model.eval()


def build_swin_litemedsam(checkpoint: str | Path | None = None) -> SkipFeatureLiteMedSAM:
    """Swin-LiteMedSAM as the authors build it; `checkpoint`: their .pth (bare or {"model": ...}),
    loaded strictly after dropping the `prompt1` / `prompt2` keys."""
    model = SkipFeatureLiteMedSAM(
        image_encoder=SwinEncoder(
            dims=(64, 128, 160, 320),
            depths=(2, 2, 6, 2),
            heads=(2, 4, 5, 10),
            factors=(2, 2, 1, 1),
            head_dim=32,
            window_size=8,
        ),
        prompt_encoder=_prompt_encoder(),
        mask_decoder=SkipFeatureMaskDecoder(**_sam_decoder_args(), skip_chans=SKIP_CHANNELS),
    )
    if checkpoint is not None:
        model.load_state_dict(strip_unused_swin_keys(load_state_dict(checkpoint)), strict=True)
    return model.eval()


def build_litemedsam_skip(checkpoint: str | Path | None = None) -> SkipFeatureLiteMedSAM:
    """LiteMedSAM's TinyViT encoder with Swin-LiteMedSAM's skip-feature decoder: TinyViT's four stage
    outputs have the shapes of the Swin encoder's skips. `checkpoint`: a state_dict of this model."""
    model = SkipFeatureLiteMedSAM(
        image_encoder=TinyViTWithSkips(**_tiny_vit_args()),
        prompt_encoder=_prompt_encoder(),
        mask_decoder=SkipFeatureMaskDecoder(**_sam_decoder_args(), skip_chans=SKIP_CHANNELS),
    )
    if checkpoint is not None:
        model.load_state_dict(load_state_dict(checkpoint), strict=True)
    return model.eval()


def init_from_litemedsam(model: str, lite_state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state_dict of the registry's `model` that starts from LiteMedSAM's weights.

    Every key with the same name and shape in both models is copied; every other tensor keeps a fresh
    initialisation (seeded by the caller's torch RNG). Swin-LiteMedSAM takes the prompt encoder, the shared
    decoder parts and the encoder's patch_embed and neck (149 keys); litemedsam-skip takes everything but
    the decoder's `neck` and `output_upscaling1/2`.
    """
    state = model_registry[model]().state_dict()
    for key, value in lite_state_dict.items():
        if key in state and state[key].shape == value.shape:
            state[key] = value.detach().clone()
    return state


model_registry: dict[str, Callable[..., nn.Module]] = {
    "litemedsam": build_litemedsam,
    "swin-litemedsam": build_swin_litemedsam,
    "litemedsam-skip": build_litemedsam_skip,
    "litemedsam-modality": build_litemedsam_modality,
}
