"""Box prompts and target masks for training, in the model's 256-space, as inference makes them.

A labelled object gets the box inference would get: its tight box scaled by `transforms.box_to_model`
(2D cases, and the middle slice of a 3D box), or on 3D slices, with some probability, the propagation box
`transforms.prior_box` (the mask's box plus 3 px, the organizers' label-value quirk included). A slice
without labels gets a random box around a foreground pixel, and its target comes from the teacher.
"""

import cv2
import numpy as np

from ..inference.transforms import MODEL_SIZE, box_to_model, prior_box, resized_shape


def model_mask(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool -> (256, 256) float32 {0, 1}: longest side to 256 (nearest), zero-padded like the image."""
    h, w = resized_shape(*mask.shape)
    small = cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    target = np.zeros((MODEL_SIZE, MODEL_SIZE), dtype=np.float32)
    target[:h, :w] = small
    return target


def tight_box(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool, not empty -> (4,) [x_min, y_min, x_max, y_max], max inclusive (the challenge's boxes)."""
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()], dtype=np.float64)


def object_box(mask: np.ndarray, label: int, is_3d: bool, prior_prob: float, rng: np.random.Generator) -> np.ndarray:
    """(H, W) bool mask of object `label` -> (4,) float32 box in 256-space (see the module docstring)."""
    if is_3d and rng.random() < prior_prob:
        prior = prior_box(mask, label)
        if prior is not None:
            return prior
    return box_to_model(tight_box(mask)[None], *mask.shape)[0]


def random_box(
    fg: np.ndarray, height: int, width: int, size_range: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    """A random (4,) float32 integer box in 256-space inside the resized image of an (height, width) slice.

    Centred on a random foreground pixel of fg (256, 256) bool (anywhere in the image when there is none);
    each side is a uniform fraction in `size_range` of the resized image's side; at least 2 px wide and high.
    """
    h, w = resized_shape(height, width)
    ys, xs = np.nonzero(fg[:h, :w])
    if len(xs):
        i = rng.integers(len(xs))
        cx, cy = float(xs[i]), float(ys[i])
    else:
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    half_w = rng.uniform(*size_range) * w / 2
    half_h = rng.uniform(*size_range) * h / 2
    x0 = int(np.clip(cx - half_w, 0, max(w - 2, 0)))
    y0 = int(np.clip(cy - half_h, 0, max(h - 2, 0)))
    x1 = int(np.clip(cx + half_w, x0 + 1, max(w - 1, x0 + 1)))
    y1 = int(np.clip(cy + half_h, y0 + 1, max(h - 1, y0 + 1)))
    return np.array([x0, y0, x1, y1], dtype=np.float32)
