"""Stage B: the decoder parts new in Swin-LiteMedSAM learn masks from box, point and scribble prompts.

Encoder from stage A, prompt encoder and shared decoder from LiteMedSAM; config["param_groups"] says
what trains. Targets: the ground-truth object where the slice has labels, else the LiteMedSAM teacher's
mask (logits > 0) for the item's random box, from its encoder run online or from its embeddings computed
once per item beforehand. Loss per prompt: Dice + BCE + IoU-head regression, weighted by
loss.pseudo_label_weight for teacher targets.
"""

from pathlib import Path

import torch

from ...inference.transforms import MODEL_SIZE
from ...modeling.sam import LiteMedSAM, SkipFeatureLiteMedSAM
from ..augment import Augmentation
from ..config import expand_path
from ..data import PromptDataset, PromptSampling
from ..loop import Batch, StepLosses, fit
from ..losses import bce_loss, dice_loss, iou_regression_loss
from ..models import build_student, load_teacher


@torch.no_grad()
def pseudo_labels(teacher: LiteMedSAM, embedding: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """The teacher's embeddings (B, 256, 64, 64), boxes (B, 4) in 256-space -> its masks (B, 256, 256) float {0, 1}."""
    logits, _ = teacher.decode(embedding, boxes)
    return (logits[:, 0] > 0).float()


def decode_batch(model: SkipFeatureLiteMedSAM, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Every item's prompt on its own image -> logits (B, 256, 256) and IoU predictions (B,).

    The encoder keeps no graph unless it trains; items prompted by the box alone and by box + points +
    scribble are decoded in two calls.
    """
    encoder_trains = any(p.requires_grad for p in model.image_encoder.parameters())
    with torch.set_grad_enabled(encoder_trains and torch.is_grad_enabled()):
        embedding, (fs0, fs1, fs2, fs3) = model.image_encoder(batch["image"])
    fused = model.mask_decoder.fuse_skips(fs1, fs2, fs3)
    b = batch["image"].shape[0]
    logits = torch.zeros(b, MODEL_SIZE, MODEL_SIZE, device=embedding.device)
    iou = torch.zeros(b, device=embedding.device)
    for with_prompts in (False, True):
        rows = (batch["with_prompts"] == with_prompts).nonzero()[:, 0]
        if len(rows) == 0:
            continue
        prompts = (batch["points"][rows], batch["scribble"][rows]) if with_prompts else (None, None)
        out, pred = model.decode(embedding[rows], fs0[rows], fused[rows], batch["box"][rows], *prompts)
        logits = logits.index_put((rows,), out[:, 0].float())
        iou = iou.index_put((rows,), pred[:, 0].float())
    return logits, iou


def finetune_losses(
    model: SkipFeatureLiteMedSAM, teacher: LiteMedSAM, loss_config: dict, t_embeddings: torch.Tensor | None = None
) -> StepLosses:
    """The step function of stage B: a PromptDataset batch -> {"loss", "dice", "bce", "iou", "pseudo"}.

    With t_embeddings (N, 256, 64, 64), the teacher's embeddings of the dataset's N items (`batch["index"]`),
    pseudo-labels run only the teacher's decoder."""

    def teacher_embedding(batch: Batch, rows: torch.Tensor) -> torch.Tensor:
        if t_embeddings is None:
            with torch.no_grad():
                return teacher.encode(batch["image"][rows])
        return t_embeddings[batch["index"][rows]]

    def step_losses(batch: Batch) -> dict[str, torch.Tensor]:
        labelled = batch["labelled"]
        target = batch["mask"]
        if not labelled.all():
            rows = (~labelled).nonzero()[:, 0]
            masks = pseudo_labels(teacher, teacher_embedding(batch, rows), batch["box"][rows])
            target = target.index_put((rows,), masks)
        logits, iou = decode_batch(model, batch)
        weight = torch.where(labelled, 1.0, loss_config["pseudo_label_weight"])
        weight = weight / weight.sum()
        parts = {
            "dice": dice_loss(logits, target),
            "bce": bce_loss(logits, target),
            "iou": iou_regression_loss(iou, logits, target),
        }
        losses = {name: (value * weight).sum() for name, value in parts.items()}
        loss = sum(loss_config[f"{name}_weight"] * value for name, value in losses.items())
        return {"loss": loss, **losses, "pseudo": (~labelled).float().mean()}

    return step_losses


def run(config: dict, device: torch.device, resume: Path | None) -> Path:
    """Stage B from a config (see configs/finetune.json); returns the path of the last checkpoint."""
    encoder = config["encoder_checkpoint"]
    model = build_student(config["teacher"], config["seed"], expand_path(encoder) if encoder else None)
    teacher = load_teacher(config["teacher"], device)
    sampling = config["prompts"]
    dataset = PromptDataset(
        expand_path(config["data_dir"]),
        Augmentation.from_config(config["augmentation"]),
        PromptSampling(sampling["with_prompts"], sampling["prior_box"], tuple(sampling["random_box_size"])),
    )
    step_losses = finetune_losses(model, teacher, config["loss"])
    return fit("finetune", model, dataset, step_losses, config, device, resume)
