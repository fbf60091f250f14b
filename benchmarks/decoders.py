"""Encoder time and per-box decoder time of several models side by side, in one process, on this CPU.

    python benchmarks/decoders.py MODEL_DIR [MODEL_DIR ...] [--precision f32] [--boxes 8] [--rounds 20]

Each MODEL_DIR is a weights folder of one model (e.g. weights/litemedsam, or the weights/litemedsam a
`training evaluate` run exported). Every engine is compiled first; then each round encodes one real
evaluation image per engine and decodes the same --boxes boxes on it, engines alternating, so a slower
stretch of the machine hits every model alike. Prints the CPU and, per model, the median seconds of the
encoder call and per box of the decoder call (a skip-feature model's encoder graph also fuses its skips).
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO)]

import numpy as np  # noqa: E402

from medsam_laptop.engines.cpu import cpu_flags, describe_cpu, openvino_capabilities  # noqa: E402
from medsam_laptop.engines.openvino_engine import OpenVINOEngine  # noqa: E402
from medsam_laptop.inference.transforms import box_to_model, model_input  # noqa: E402
from medsam_laptop.io.cases import read_case  # noqa: E402
from medsam_laptop.paths import evaluation_cases  # noqa: E402

CASE = "2DBox_Endoscopy"  # the first case of this group is the image every round uses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model_dirs", type=Path, nargs="+")
    parser.add_argument("--precision", default="f32")
    parser.add_argument("--boxes", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--cases-dir", type=Path, default=evaluation_cases())
    args = parser.parse_args()
    case = read_case(sorted((args.cases_dir / "imgs").glob(f"{CASE}_*.npz"))[0])
    height, width = case.image.shape[:2]
    x = model_input(case.image)
    boxes = np.resize(box_to_model(case.boxes, height, width), (args.boxes, 4))
    engines = [OpenVINOEngine(d, args.precision) for d in args.model_dirs]
    encoder_seconds: list[list[float]] = [[] for _ in engines]
    seconds: list[list[float]] = [[] for _ in engines]
    for _ in range(args.rounds):
        for engine, encoder_times, times in zip(engines, encoder_seconds, seconds):
            began = time.perf_counter()
            features = engine.encode(x)
            encoded = time.perf_counter()
            engine.decode(features, boxes)
            encoder_times.append(encoded - began)
            times.append((time.perf_counter() - encoded) / args.boxes)
    print(describe_cpu(openvino_capabilities(), cpu_flags()))
    rounds = f"median of {args.rounds} rounds"
    print(f"{args.precision}: encoder per call, decoder per box at {args.boxes} boxes a call; {rounds}")
    for model_dir, encoder_times, times in zip(args.model_dirs, encoder_seconds, seconds):
        encoder, decoder = statistics.median(encoder_times), statistics.median(times)
        print(f"{model_dir}: encoder {encoder:.3f} s, decoder {decoder:.4f} s/box")
    return 0


if __name__ == "__main__":
    sys.exit(main())
