"""Augmentation of the uint8 image before `transforms.model_input`, so the normalisation stays as at inference.

Flips apply to the image and its label map alike. The intensity changes (gamma, scaling, multiplicative
noise) keep zero pixels at zero, so the foreground (> 0) that the prompts are drawn from keeps its meaning.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Augmentation:
    """Probabilities and ranges; `Augmentation.off()` leaves every image unchanged."""

    hflip: float = 0.5  # probability of a left-right flip
    vflip: float = 0.5  # probability of an up-down flip
    intensity: float = 0.8  # probability of the intensity changes below
    gamma: tuple[float, float] = (0.7, 1.5)  # 255 * (x / 255) ** gamma
    scale: tuple[float, float] = (0.8, 1.25)  # x * scale, clipped at 255
    noise: float = 0.03  # x * (1 + N(0, noise))

    @classmethod
    def off(cls) -> "Augmentation":
        return cls(hflip=0.0, vflip=0.0, intensity=0.0)

    @classmethod
    def from_config(cls, config: dict) -> "Augmentation":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.items()})


def augment(
    image: np.ndarray, labels: np.ndarray | None, aug: Augmentation, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None]:
    """image (H, W) or (H, W, 3) uint8; labels (H, W) integer or None -> the same shapes and dtypes."""
    flip_axes = [axis for axis, p in ((1, aug.hflip), (0, aug.vflip)) if rng.random() < p]
    if flip_axes:
        image = np.ascontiguousarray(np.flip(image, axis=flip_axes))
        labels = None if labels is None else np.ascontiguousarray(np.flip(labels, axis=flip_axes))
    if rng.random() < aug.intensity:
        x = image.astype(np.float32) / 255.0
        x = x ** rng.uniform(*aug.gamma) * rng.uniform(*aug.scale)
        x *= 1.0 + rng.normal(0.0, aug.noise, size=x.shape).astype(np.float32)
        image = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    return image, labels
