"""Start-up in the scored setting: container images taking turns on one case under the organizers' harness.

    python benchmarks/startup.py --image BASE:latest --image VARIANT:latest [...] [--case NAME] [--rounds 12]

Each round runs every image once on the same case (`evaluation.time_eval.run_case`: the organizers'
`docker container run` command line, one container per case, the work folders and the compiled-model
cache kept between runs, as in their loop). The order rotates from round to round, so that no image
always runs straight after another. One warm-up run per image fills its cache first and is not counted.
Prints, per image, the median and the spread of the wall seconds, the median's difference from the
first image's, and the median over rounds of the difference from the first image in the same round (the
paired figure, which a slow stretch of the machine moves less), in seconds and in percent of the first
image's median. How each variant image was made is for the caller to
record: this script only times images.
"""

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO)]

from benchmarks.pipeline import ContainerVariant  # noqa: E402
from medsam_laptop.engines.cpu import cpu_class, cpu_flags, describe_cpu, openvino_capabilities  # noqa: E402
from medsam_laptop.paths import evaluation_cases  # noqa: E402

DEFAULT_CASE = "2DBox_Endoscopy_kvasirseg_cju160wshltz10993i1gmqxbe.npz"  # one box, 530 x 607 x 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", action="append", required=True, help="an image to time; the first is the base")
    parser.add_argument("--cases-dir", type=Path, default=evaluation_cases())
    parser.add_argument("--case", default=DEFAULT_CASE)
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args()
    case = args.cases_dir / "imgs" / args.case
    if not case.is_file():
        parser.error(f"no case {case}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    seconds: dict[str, list[float]] = {image: [] for image in args.image}
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        runners = {image: ContainerVariant(Path(tmp, str(i)), image) for i, image in enumerate(args.image)}
        try:
            for image, runner in runners.items():
                _check(image, runner.run(case))
            for round_ in range(args.rounds):
                shift = round_ % len(args.image)
                for image in args.image[shift:] + args.image[:shift]:
                    run = runners[image].run(case)
                    _check(image, run)
                    seconds[image].append(run.seconds)
                    print(f"  round {round_ + 1} {image}: {run.seconds:.3f} s", flush=True)
        finally:
            for runner in runners.values():
                runner.close()

    capabilities = openvino_capabilities()
    print(f"\nCPU: {describe_cpu(capabilities, cpu_flags())} (class {cpu_class(capabilities, cpu_flags())})")
    print(f"case: {args.case}; {args.rounds} rounds, after one warm-up run each\n")
    print("| image | median s | min-max s | median - base | paired median - base |")
    print("|---|---|---|---|---|")
    base_runs = seconds[args.image[0]]
    base = statistics.median(base_runs)
    for image, values in seconds.items():
        delta = statistics.median(values) - base
        paired = statistics.median(v - b for v, b in zip(values, base_runs))
        print(
            f"| {image} | {statistics.median(values):.3f} | {min(values):.3f}-{max(values):.3f} | "
            f"{delta:+.3f} s ({100 * delta / base:+.1f} %) | {paired:+.3f} s ({100 * paired / base:+.1f} %) |"
        )


def _check(image: str, run) -> None:
    if not run.ok:
        raise SystemExit(f"{image}: {run.outcome}")


if __name__ == "__main__":
    main()
