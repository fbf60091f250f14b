"""Peak memory of the largest plausible 3D case: a synthetic 1000 x 512 x 512 volume with 20 objects.

    python benchmarks/peak_memory.py [--depth 1000] [--boxes 20] [--image TEAM:latest]

Without --image the pipeline runs as a local process and the peak resident set size is reported.
With --image it runs in the container under the organizers' `-m 8G`, and the container's own cgroup
peak is reported (memory.peak under cgroup v2, memory.max_usage_in_bytes under v1).
"""

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def make_case(folder: Path, depth: int, size: int, n_boxes: int, half_depth: int, seed: int = 0) -> Path:
    """Writes 3DBox_CT_large.npz: soft tissue with `n_boxes` bright ellipsoids (z semi-axis up to
    `half_depth` slices), boxes tight around them."""
    rng = np.random.default_rng(seed)
    volume = np.full((depth, size, size), 60, dtype=np.uint8)
    boxes = []
    for _ in range(n_boxes):
        rz, ry, rx = rng.integers(5, half_depth + 1), rng.integers(10, size // 8), rng.integers(10, size // 8)
        cz, cy, cx = rng.integers(rz, depth - rz), rng.integers(ry, size - ry), rng.integers(rx, size - rx)
        z, y, x = np.ogrid[cz - rz : cz + rz + 1, cy - ry : cy + ry + 1, cx - rx : cx + rx + 1]
        inside = ((z - cz) / rz) ** 2 + ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1
        volume[cz - rz : cz + rz + 1, cy - ry : cy + ry + 1, cx - rx : cx + rx + 1][inside] = 200
        boxes.append([cx - rx, cy - ry, cz - rz, cx + rx, cy + ry, cz + rz])
    path = folder / "3DBox_CT_large.npz"
    np.savez_compressed(path, imgs=volume, boxes=np.array(boxes), spacing=np.array([0.8, 0.8, 1.0]))
    return path


def run_local(inputs: Path, outputs: Path) -> tuple[float, float]:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "medsam_laptop", "predict", "-i", str(inputs), "-o", str(outputs)], cwd=REPO, check=True
    )
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return time.perf_counter() - start, peak_kib / 2**20


def run_container(image: str, inputs: Path, outputs: Path) -> tuple[float, float]:
    outputs.chmod(0o777)
    start = time.perf_counter()
    result = subprocess.run(
        [
            "docker",
            "container",
            "run",
            "-m",
            "8G",
            "--rm",
            "-v",
            f"{inputs}/:/workspace/inputs/",
            "-v",
            f"{outputs}/:/workspace/outputs/",
            image,
            "/bin/bash",
            "-c",
            "sh predict.sh && { cat /sys/fs/cgroup/memory.peak 2>/dev/null"
            " || cat /sys/fs/cgroup/memory/memory.max_usage_in_bytes; }",
        ],
        capture_output=True,
        text=True,
    )
    sys.stderr.write(result.stderr)
    if result.returncode != 0:
        raise SystemExit(f"the container exited with {result.returncode}")
    return time.perf_counter() - start, int(result.stdout.split()[-1]) / 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=1000)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--boxes", type=int, default=20)
    parser.add_argument("--half-depth", type=int, default=20, help="largest z semi-axis of an object, in slices")
    parser.add_argument("--image", help="run in this container image under -m 8G")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        inputs, outputs = Path(tmp, "inputs"), Path(tmp, "outputs")
        inputs.mkdir()
        outputs.mkdir()
        case = make_case(inputs, args.depth, args.size, args.boxes, args.half_depth)
        print(
            f"case: {args.depth} x {args.size} x {args.size} uint8, {args.boxes} boxes, "
            f"{len({z for b in np.load(case)['boxes'] for z in range(b[2], b[5] + 1)})} slices to segment, "
            f"{case.stat().st_size / 2**20:.1f} MiB on disk"
        )
        seconds, peak = run_container(args.image, inputs, outputs) if args.image else run_local(inputs, outputs)
        segs = np.load(outputs / case.name)["segs"]
        where = f"container {args.image} (-m 8G, cgroup peak)" if args.image else "local process (max RSS)"
        print(
            f"{where}: peak {peak:.2f} GiB, {seconds:.0f} s, {len(set(np.unique(segs).tolist()) - {0})} labels present"
        )


if __name__ == "__main__":
    main()
