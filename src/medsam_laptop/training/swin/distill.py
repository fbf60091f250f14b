"""Stage A: the Swin encoder learns LiteMedSAM's TinyViT image embedding (teacher run online, or its
outputs computed once per input beforehand: `teacher_outputs`, `cached_distill_losses`).

Loss: MSE between the student's and the teacher's (B, 256, 64, 64) embeddings, plus, when
loss.match_stages is on, the MSE between the four stage outputs, whose shapes agree in both encoders:
(B, 128, 128, 128), (B, 160, 64, 64), (B, 320, 64, 64), (B, 320, 64, 64).
"""

from pathlib import Path

import torch
from torch import nn

from ...modeling.tiny_vit import TinyViT
from ..augment import Augmentation
from ..config import expand_path
from ..data import DistillDataset
from ..loop import Batch, StepLosses, fit
from ..losses import feature_mse
from ..models import build_student, load_teacher


def feature_losses(
    student: nn.Module, image: torch.Tensor, t_embedding: torch.Tensor, t_stages: list[torch.Tensor], loss_config: dict
) -> dict[str, torch.Tensor]:
    """The student on image (B, 3, 256, 256) against the teacher's outputs -> {"loss", "embedding"[, "stages"]}."""
    s_embedding, s_stages = student(image)
    losses = {"embedding": feature_mse(s_embedding, t_embedding)}
    loss = loss_config["embedding_weight"] * losses["embedding"]
    if loss_config["match_stages"]:
        losses["stages"] = torch.stack([feature_mse(s, t) for s, t in zip(s_stages, t_stages)]).mean()
        loss = loss + loss_config["stage_weight"] * losses["stages"]
    return {"loss": loss, **losses}


def distill_losses(student: nn.Module, teacher: TinyViT, loss_config: dict) -> StepLosses:
    """The step function of stage A: batch {"image": (B, 3, 256, 256)} -> {"loss", "embedding"[, "stages"]}."""

    def step_losses(batch: Batch) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            t_embedding, t_stages = teacher.forward_with_stages(batch["image"])
        return feature_losses(student, batch["image"], t_embedding, t_stages, loss_config)

    return step_losses


@torch.no_grad()
def teacher_outputs(
    teacher: TinyViT, inputs: torch.Tensor, batch_size: int, stages: bool, dtype: torch.dtype
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The teacher once over inputs (N, 3, 256, 256) on its device, in batches -> its embeddings (N, 256,
    64, 64) and, with `stages`, its four stage outputs (N, C, r, r) (else []), kept on the device in `dtype`.
    Runs under the caller's autocast."""
    embeddings = torch.empty((len(inputs), 256, 64, 64), dtype=dtype, device=inputs.device)
    kept: list[torch.Tensor] = []
    for begin in range(0, len(inputs), batch_size):
        rows = slice(begin, begin + batch_size)
        embedding, outputs = teacher.forward_with_stages(inputs[rows])
        embeddings[rows] = embedding
        if stages and not kept:
            kept = [torch.empty((len(inputs), *o.shape[1:]), dtype=dtype, device=inputs.device) for o in outputs]
        for store, output in zip(kept, outputs):
            store[rows] = output
    return embeddings, kept


def cached_distill_losses(
    student: nn.Module,
    inputs: torch.Tensor,
    t_embeddings: torch.Tensor,
    t_stages: list[torch.Tensor],
    loss_config: dict,
) -> StepLosses:
    """The step function of stage A on inputs and teacher outputs computed beforehand (`teacher_outputs`):
    batch {"index": (B,) int64} -> {"loss", "embedding"[, "stages"]}; the teacher does not run."""

    def step_losses(batch: Batch) -> dict[str, torch.Tensor]:
        rows = batch["index"]
        return feature_losses(student, inputs[rows], t_embeddings[rows], [s[rows] for s in t_stages], loss_config)

    return step_losses


def run(config: dict, device: torch.device, resume: Path | None) -> Path:
    """Stage A from a config (see configs/distill.json); returns the path of the last checkpoint."""
    model = build_student(config["teacher"], config["seed"])
    teacher = load_teacher(config["teacher"], device)
    dataset = DistillDataset(expand_path(config["data_dir"]), Augmentation.from_config(config["augmentation"]))
    step_losses = distill_losses(model.image_encoder, teacher.image_encoder, config["loss"])
    return fit("distill", model, dataset, step_losses, config, device, resume)
