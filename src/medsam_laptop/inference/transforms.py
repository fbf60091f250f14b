"""Every coordinate and intensity transform between an original image and the model's 256 x 256 input.

The rules are the organizers' (CVPR24_LiteMedSAM_infer.py): longest side resized to 256 with INTER_AREA
(size rounded as int(x + 0.5)), min-max normalisation of the whole resized image computed in float64,
zero padding at the bottom/right, boxes scaled by 256 / max(H, W) and truncated to integers, logits
cropped to the resized size and bilinearly upsampled (half-pixel centres) to the original size.
"""

import cv2
import numpy as np

from ..io.cases import label_dtype

MODEL_SIZE = 256
PRIOR_BOX_MARGIN = 3  # px in 256-space added around the previous slice's mask (the organizers' bbox_shift)


def resized_shape(height: int, width: int, target: int = MODEL_SIZE) -> tuple[int, int]:
    """(h, w) of an image whose longest side is scaled to `target`.

    At least 1 px each: the organizers' rounding gives 0 for images over 512 times longer than wide,
    on which their code crashes.
    """
    scale = target * 1.0 / max(height, width)
    return max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5))


def resize_longest_side(image: np.ndarray, target: int = MODEL_SIZE) -> np.ndarray:
    """(H, W) or (H, W, C) -> (h, w[, C]) with the same dtype, INTER_AREA."""
    h, w = resized_shape(image.shape[0], image.shape[1], target)
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)


def model_input(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) or (H, W) uint8 image -> (1, 3, 256, 256) float32 input.

    A 2D (grey) slice is resized once and replicated to three channels, which equals resizing its
    three-channel copy.
    """
    small = resize_longest_side(image).astype(np.float64)
    low, high = small.min(), small.max()
    normalised = ((small - low) / max(high - low, 1e-8)).astype(np.float32)
    h, w = normalised.shape[:2]
    padded = np.zeros((3, MODEL_SIZE, MODEL_SIZE), dtype=np.float32)
    if normalised.ndim == 2:
        padded[:, :h, :w] = normalised
    else:
        padded[:, :h, :w] = normalised.transpose(2, 0, 1)
    return padded[None]


def box_to_model(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, 4) [x0, y0, x1, y1] in original pixels -> (N, 4) float32 in 256-space, truncated toward zero."""
    ratio = MODEL_SIZE / max(height, width)
    return np.trunc(np.asarray(boxes, dtype=np.float64) * ratio).astype(np.float32)


def logits_to_mask(logits: np.ndarray, height: int, width: int) -> np.ndarray:
    """(256, 256) float32 logits -> (height, width) bool mask (sigmoid > 0.5, i.e. logit > 0)."""
    h, w = resized_shape(height, width)
    upsampled = cv2.resize(logits[:h, :w], (width, height), interpolation=cv2.INTER_LINEAR)
    return upsampled > 0


def prior_box(mask: np.ndarray, label: int) -> np.ndarray | None:
    """Box prompt in 256-space for the next slice, from this slice's (H, W) bool mask of object `label`.

    As the organizers do, the mask is resized holding the label value (not 1), so after INTER_AREA a
    pixel survives when its area fraction times `label` rounds to at least 1. Returns None when nothing
    survives, in which case the caller falls back to the original box.
    """
    dtype = label_dtype(label)
    small = resize_longest_side(mask.astype(dtype) * dtype(label))
    ys, xs = np.nonzero(small)
    if len(xs) == 0:
        return None
    m = PRIOR_BOX_MARGIN
    return np.array(
        [max(0, xs.min() - m), max(0, ys.min() - m), min(MODEL_SIZE, xs.max() + m), min(MODEL_SIZE, ys.max() + m)],
        dtype=np.float32,
    )
