"""Box-derived prompts for Swin-LiteMedSAM: 4 positive points and a scribble per box (numpy + cv2).

The rules are those of the authors' inference (RuochenGao/Swin_LiteMedSAM, infer.py), in 256-space, on
the padded model input; "foreground" is every pixel whose normalised intensity is > 0 in any channel:

- points: the box is shrunk on each side by a random amount (x by an integer in [int(w/5), int(w/2) - 1),
  y likewise with the height; no shrinking when that range is empty) and split into quadrants at the
  centre of the original box, in the order top-left, bottom-left, bottom-right, top-right. In each
  quadrant x is drawn from the columns and y from the rows of its foreground pixels (independently, as
  the authors draw them); a quadrant without foreground gives the box centre. All labels are positive.
- scribble: the box is shrunk by an integer in [int(w/8), int(w/6)) (and the height likewise) and
  intersected with the foreground. One free-form stroke (3-9 px brush) starts at a random pixel of that
  region; the largest 8-connected piece of stroke-within-region is kept once it has more than 5 pixels.
  Up to 6 tries, then an empty scribble.

Unlike the authors' single process-wide random stream, every box draws from its own generator, seeded by
a hash of a key such as "case.npz:3" (box index) or "case.npz:3:41" (3D: box index and slice), so a case
gives the same prompts alone or among others, in any order.
"""

import hashlib

import cv2
import numpy as np

from .transforms import MODEL_SIZE

NUM_POINTS = 4
SCRIBBLE_TRIES = 6
SCRIBBLE_MIN_PIXELS = 6


def rng_for(key: str) -> np.random.Generator:
    """A generator seeded by the first 8 bytes of sha256(key): stable across processes and platforms."""
    return np.random.default_rng(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little"))


def foreground(image: np.ndarray) -> np.ndarray:
    """(1, 3, 256, 256) float32 model input -> (256, 256) bool, pixels > 0 in any channel."""
    return (image[0] > 0).any(axis=0)


def _shift(low: int, high: int, rng: np.random.Generator) -> int:
    """Random integer in [low, high), or 0 when that range is empty."""
    return int(rng.integers(low, high)) if low < high else 0


def _clip(v: int) -> int:
    return min(max(v, 0), MODEL_SIZE)


def box_points(fg: np.ndarray, box: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """fg (256, 256) bool; box (4,) [x0, y0, x1, y1] in 256-space -> (4, 2) float32 (x, y) points."""
    x0, y0, x1, y1 = (int(v) for v in box)
    mid_x, mid_y = (x0 + x1) // 2, (y0 + y1) // 2
    w, h = x1 - x0, y1 - y0
    sx = _shift(int(w / 5), int(w / 2) - 1, rng)
    sy = _shift(int(h / 5), int(h / 2) - 1, rng)
    x0, x1, y0, y1 = x0 + sx, x1 - sx, y0 + sy, y1 - sy
    quadrants = ((y0, mid_y, x0, mid_x), (mid_y, y1, x0, mid_x), (mid_y, y1, mid_x, x1), (y0, mid_y, mid_x, x1))
    points = []
    for top, bottom, left, right in quadrants:
        top, bottom, left, right = _clip(top), _clip(bottom), _clip(left), _clip(right)
        ys, xs = np.nonzero(fg[top:bottom, left:right])
        if len(ys) == 0:
            points.append((mid_x, mid_y))
        else:
            points.append((left + rng.choice(xs), top + rng.choice(ys)))
    return np.asarray(points, dtype=np.float32)


def _stroke(start: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random free-form stroke from `start` (x, y): (256, 256) bool.

    10-29 vertices; the pen's speed (<= 20 px a step) and heading change by up to +-15 px and +-0.5 rad
    a step; the whole stroke then drifts a little and half of its vertices jitter by up to 3 px; brush
    3-9 px with round joints.
    """
    brush = int(rng.integers(3, 10))
    n = int(rng.integers(10, 30))
    angle, speed = rng.uniform(0, 2 * np.pi), rng.uniform(0, 20)
    vertices = [np.asarray(start, dtype=np.float64)]
    for _ in range(n):
        speed = float(np.clip(speed + rng.uniform(-15, 15), 0, 20))
        angle += rng.uniform(-0.5, 0.5)
        vertices.append(vertices[-1] + speed * np.array([np.sin(angle), np.cos(angle)]))
    xy = np.stack(vertices)
    drift, heading = abs(rng.normal(0, 3)), rng.uniform(0, 2 * np.pi)
    xy += np.trunc(drift * np.array([np.cos(heading), np.sin(heading)]))
    moved = rng.permutation(len(xy))[: len(xy) // 2]
    xy[moved] += rng.integers(-3, 3, size=(len(moved), 2))
    canvas = np.zeros((MODEL_SIZE, MODEL_SIZE), dtype=np.uint8)
    pts = np.round(xy).astype(np.int32)
    cv2.polylines(canvas, [pts.reshape(-1, 1, 2)], isClosed=False, color=1, thickness=brush)
    for x, y in pts:
        cv2.circle(canvas, (int(x), int(y)), max(brush // 2 - 1, 0), color=1, thickness=-1)
    return canvas.astype(bool)


def box_scribble(fg: np.ndarray, box: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """fg (256, 256) bool; box (4,) in 256-space -> (1, 256, 256) float32 scribble of {0, 1}."""
    x0, y0, x1, y1 = (int(v) for v in box)
    w, h = x1 - x0, y1 - y0
    sx = _shift(int(w / 8), int(w / 6), rng)
    sy = _shift(int(h / 8), int(h / 6), rng)
    region = np.zeros((MODEL_SIZE, MODEL_SIZE), dtype=bool)
    top, bottom, left, right = _clip(y0 + sy), _clip(y1 - sy), _clip(x0 + sx), _clip(x1 - sx)
    region[top:bottom, left:right] = fg[top:bottom, left:right]
    scribble = np.zeros((1, MODEL_SIZE, MODEL_SIZE), dtype=np.float32)
    ys, xs = np.nonzero(region)
    for _ in range(SCRIBBLE_TRIES if len(ys) else 0):
        i = rng.integers(len(ys))
        piece = _stroke(np.array([xs[i], ys[i]]), rng) & region
        if not piece.any():
            continue
        count, labels = cv2.connectedComponents(piece.astype(np.uint8), connectivity=8)
        largest = 1 + int(np.argmax(np.bincount(labels.ravel(), minlength=count)[1:]))
        piece = labels == largest
        if piece.sum() >= SCRIBBLE_MIN_PIXELS:
            scribble[0] = piece
            break
    return scribble


def box_prompts(fg: np.ndarray, boxes: np.ndarray, keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """fg (256, 256) bool; boxes (B, 4) in 256-space; one seed key per box.

    Returns points (B, 4, 2) float32 and scribbles (B, 1, 256, 256) float32.
    """
    points = np.zeros((len(boxes), NUM_POINTS, 2), dtype=np.float32)
    scribbles = np.zeros((len(boxes), 1, MODEL_SIZE, MODEL_SIZE), dtype=np.float32)
    for i, (box, key) in enumerate(zip(boxes, keys)):
        rng = rng_for(key)
        points[i] = box_points(fg, box, rng)
        scribbles[i] = box_scribble(fg, box, rng)
    return points, scribbles
