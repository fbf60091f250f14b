"""Writes the demo cases: synthetic phantoms with known ground truth, free to redistribute.

2D: an RGB "endoscopy-like" image with two bright ellipses on a textured background.
3D: a "CT-like" volume with a bright ellipsoid and a darker sphere in a soft-tissue cylinder.
Boxes are the tight bounding boxes of the ground-truth labels (max inclusive), as in the challenge files.

    python demo/make_phantoms.py [OUT_DIR]   # default: demo/, writes OUT_DIR/inputs and OUT_DIR/gts
"""

import sys
from pathlib import Path

import numpy as np


def _boxes(labels: np.ndarray) -> np.ndarray:
    """Tight boxes of labels 1..max: (N, 4) [x0, y0, x1, y1] for 2D, (N, 6) [x0, y0, z0, x1, y1, z1] for 3D."""
    rows = []
    for k in range(1, int(labels.max()) + 1):
        idx = np.nonzero(labels == k)
        lo, hi = [int(i.min()) for i in idx][::-1], [int(i.max()) for i in idx][::-1]
        rows.append(lo + hi)
    return np.array(rows, dtype=np.int64)


def phantom_2d(rng: np.random.Generator, size: tuple[int, int] = (240, 320)) -> tuple[np.ndarray, np.ndarray]:
    h, w = size
    y, x = np.mgrid[:h, :w]
    labels = np.zeros(size, dtype=np.uint8)
    labels[((x - 100) / 55.0) ** 2 + ((y - 110) / 40.0) ** 2 <= 1] = 1
    labels[((x - 230) / 35.0) ** 2 + ((y - 150) / 50.0) ** 2 <= 1] = 2
    base = 70 + 25 * np.sin(x / 23.0) * np.cos(y / 31.0)
    image = np.stack([base + 30, base, base - 20], axis=-1)
    image[labels == 1] += (120, 90, 60)
    image[labels == 2] += (90, 110, 120)
    image += rng.normal(0, 8, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), labels


def phantom_3d(rng: np.random.Generator, size: tuple[int, int, int] = (24, 96, 112)) -> tuple[np.ndarray, np.ndarray]:
    d, h, w = size
    z, y, x = np.mgrid[:d, :h, :w]
    body = ((x - w / 2) / (w * 0.45)) ** 2 + ((y - h / 2) / (h * 0.45)) ** 2 <= 1
    labels = np.zeros(size, dtype=np.uint8)
    labels[((x - 40) / 18.0) ** 2 + ((y - 45) / 14.0) ** 2 + ((z - 11) / 8.0) ** 2 <= 1] = 1
    labels[((x - 75) / 12.0) ** 2 + ((y - 55) / 12.0) ** 2 + ((z - 13) / 7.0) ** 2 <= 1] = 2
    volume = np.where(body, 100.0, 10.0)
    volume[labels == 1] = 220
    volume[labels == 2] = 40
    volume += rng.normal(0, 6, size)
    return np.clip(volume, 0, 255).astype(np.uint8), labels


def main(out: Path) -> None:
    rng = np.random.default_rng(2024)
    (out / "inputs").mkdir(parents=True, exist_ok=True)
    (out / "gts").mkdir(parents=True, exist_ok=True)
    image, labels = phantom_2d(rng)
    name = "2DBox_Endoscopy_phantom_0001.npz"
    np.savez_compressed(out / "inputs" / name, imgs=image, boxes=_boxes(labels))
    np.savez_compressed(out / "gts" / name, gts=labels)
    volume, labels = phantom_3d(rng)
    name = "3DBox_CT_phantom_0001.npz"
    spacing = np.array([0.8, 0.8, 2.5])  # (x, y, z) as the challenge stores it
    np.savez_compressed(out / "inputs" / name, imgs=volume, boxes=_boxes(labels), spacing=spacing)
    np.savez_compressed(out / "gts" / name, gts=labels, spacing=spacing)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent)
