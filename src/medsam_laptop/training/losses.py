"""Losses. Segmentation losses return one value per prompt (B,) so pseudo-labels can be weighted."""

import torch
from torch.nn import functional as F

EPS = 1e-6


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft Dice loss: logits and target (B, H, W) ({0, 1} target) -> (B,) in [0, 1].

    0 when sigmoid(logits) equals the target, 1 when they do not overlap; 0 for two empty masks.
    """
    prob = torch.sigmoid(logits).flatten(1)
    target = target.flatten(1)
    overlap = (prob * target).sum(1)
    total = prob.sum(1) + target.sum(1)
    return 1 - (2 * overlap + EPS) / (total + EPS)


def bce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy averaged over pixels: (B, H, W) logits and {0, 1} target -> (B,)."""
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).mean(1)


def mask_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of the predicted mask (logits > 0) with the target: (B, H, W) -> (B,); 1 for two empty masks."""
    pred = (logits > 0).flatten(1)
    target = target.flatten(1) > 0.5
    inter = (pred & target).sum(1).float()
    union = (pred | target).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def iou_regression_loss(iou_pred: torch.Tensor, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error of the IoU head: iou_pred (B,) against the actual IoU of logits (B, H, W) -> (B,)."""
    return (iou_pred - mask_iou(logits.detach(), target)) ** 2


def feature_mse(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean squared error of two (B, C, H, W) feature maps, in float32 -> scalar."""
    return F.mse_loss(student.float(), teacher.float())
