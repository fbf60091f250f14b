"""Metric time of the largest 3D case with and without cropping to the masks' bounding box.

    python benchmarks/metrics_crop.py [--segs DIR] [--gts DIR] [--case NAME] [--repeat N]

Defaults: the reference LiteMedSAM predictions and the cvpr24-format gts under ../shared (or
MEDSAM_SHARED). The largest 3D case (most voxels) that has a prediction, or --case, is scored with
MetricOptions(crop=True) and (crop=False), both in this run; the scores must be identical. A case
without a prediction (the 40-class TotalSegmentator CT) is scored against its gts shifted by one
voxel along axis 1.
Run it on a quiet machine with OMP_NUM_THREADS=1 for figures worth quoting.
"""

import argparse
import time
from pathlib import Path

import numpy as np

from evaluation.metrics import MetricOptions, case_scores
from medsam_laptop.paths import evaluation_cases, reference_dir


def largest_3d_case(seg_dir: Path, gt_dir: Path) -> str:
    sizes = {}
    for path in gt_dir.glob("3D*.npz"):
        if (seg_dir / path.name).is_file():
            with np.load(path) as gt:
                sizes[path.name] = gt["gts"].size
    return max(sizes, key=sizes.get)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segs", type=Path, default=reference_dir() / "litemedsam-torch-segs")
    parser.add_argument("--gts", type=Path, default=evaluation_cases() / "gts")
    parser.add_argument("--case", help="a gts file name (default: the largest 3D case with a prediction)")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs per variant")
    args = parser.parse_args()

    case = args.case or largest_3d_case(args.segs, args.gts)
    with np.load(args.gts / case) as gt:
        gts, spacing = gt["gts"], gt["spacing"]
    if (args.segs / case).is_file():
        with np.load(args.segs / case) as seg:
            segs, source = seg["segs"], "reference prediction"
    else:
        segs, source = np.roll(gts, 1, axis=1), "gts shifted one voxel along axis 1"
    print(f"case {case}: shape {gts.shape}, {int(gts.max())} classes, spacing {spacing.tolist()}, segs: {source}")
    # NSD always computed, so that both variants do the surface work whatever the DSC.
    scores = {}
    for crop in (True, False):
        options = MetricOptions(nsd_min_dsc=None, crop=crop)
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            scores[crop] = case_scores(gts, segs, spacing, options)
            times.append(time.perf_counter() - start)
        print(f"crop={crop!s:5}  best {min(times):.3f} s  (of {args.repeat})  dsc, nsd = {scores[crop]}")
    assert scores[True] == scores[False], "cropping changed the scores"
    print("scores identical with and without cropping")


if __name__ == "__main__":
    main()
