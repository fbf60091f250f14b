"""Command line: ``python -m evaluation <subcommand>``. Argument parsing only.

A subcommand is one ``_add_<name>(subparsers)`` function that declares its parser and sets
``run`` to a ``_run_<name>(args) -> int`` function, plus one entry in ``SUBCOMMANDS``. The
heavy imports happen inside the run functions, so each subcommand needs only its own extras.
"""

import argparse
import sys
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path


def _add_compute_metrics(subparsers) -> None:
    p = subparsers.add_parser(
        "compute-metrics",
        help="score a folder of segs against a folder of gts (DSC, NSD, per-modality summary)",
        description="Per-case DSC/NSD as the organizers compute them, quirks included by default; "
        "the options marked 'correction' change the organizers' behaviour.",
        epilog="Exit status: 0 every case scored; 1 some case's seg was missing or could not be scored "
        "(all outputs are still written); 2 usage error (bad arguments, no such folder, no cases, "
        "no Dask scheduler or worker at --scheduler).",
    )
    p.add_argument("-s", "--seg-dir", type=Path, required=True, help="folder of <case>.npz with key 'segs'")
    p.add_argument(
        "-g", "--gt-dir", type=Path, required=True, help="folder of <case>.npz with 'gts' (+ 'spacing' in 3D)"
    )
    p.add_argument(
        "-o", "--out-dir", type=Path, required=True, help="writes metrics.csv, summary.csv, summary.md, summary.png"
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("-j", "--workers", type=int, default=1, help="parallel processes (default 1)")
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="score each case as a task on a Dask cluster, e.g. tcp://10.0.0.5:8786 (needs the cluster extra; "
        "the workers must see SEG_DIR and GT_DIR at the same paths)",
    )
    p.add_argument("--tolerance", type=float, default=2.0, help="NSD tolerance in mm (default 2.0)")
    p.add_argument("--always-nsd", action="store_true", help="correction: compute NSD even when the case DSC is <= 0.2")
    p.add_argument(
        "--spacing-zyx",
        action="store_true",
        help="correction: reverse the stored (x, y, z) spacing to match the (z, y, x) array axes",
    )
    p.add_argument(
        "--nsd-2d",
        choices=("volume", "contour"),
        default="volume",
        help="2D NSD on (H, W, 1) volumes (organizers, default) or on contours (correction)",
    )
    p.add_argument(
        "--skip-absent-classes",
        action="store_true",
        help="correction: leave classes absent from both gts and segs out instead of NaN",
    )
    p.add_argument("--no-round", action="store_true", help="correction: keep per-case values unrounded")
    p.add_argument("--max-seg-mb", type=float, default=1024.0, help="size limit of a seg file (default 1024)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_compute_metrics)


def _run_compute_metrics(args: argparse.Namespace) -> int:
    from .compute_metrics import OK, score_folder, write_outputs
    from .metrics import MetricOptions

    for folder in (args.gt_dir, args.seg_dir):
        if not folder.is_dir():
            print(f"compute-metrics: {folder} is not a folder", file=sys.stderr)
            return 2
    if not any(args.gt_dir.glob("*.npz")):
        print(f"compute-metrics: no *.npz cases in {args.gt_dir}", file=sys.stderr)
        return 2
    options = MetricOptions(
        tolerance_mm=args.tolerance,
        nsd_min_dsc=None if args.always_nsd else 0.2,
        spacing="zyx" if args.spacing_zyx else "as-stored",
        nsd_2d=args.nsd_2d,
        absent_classes="skip" if args.skip_absent_classes else "nan",
        decimals=None if args.no_round else 4,
    )
    client = None
    if args.scheduler:
        from .cluster import ClusterError, connect

        try:
            client = connect(args.scheduler)
        except ClusterError as error:
            print(f"compute-metrics: {error}", file=sys.stderr)
            return 2
    with nullcontext() if client is None else client:
        results = score_folder(
            args.seg_dir,
            args.gt_dir,
            options,
            workers=args.workers,
            max_seg_bytes=int(args.max_seg_mb * 2**20),
            progress=not args.quiet,
            client=client,
        )
    paths = write_outputs(results, args.out_dir)
    print(paths["summary_md"].read_text())
    failed = [r for r in results if r.status != OK]
    if failed:
        print(f"{len(failed)} of {len(results)} cases scored 0 (see status in {paths['cases']})", file=sys.stderr)
    return 1 if failed else 0


def _add_convert(subparsers) -> None:
    p = subparsers.add_parser("convert", help="NIfTI <-> challenge npz (needs nibabel)")
    kinds = p.add_subparsers(dest="kind", required=True)

    to_npz = kinds.add_parser("nifti-to-npz", help="a 3D image + label map -> imgs/<case>.npz and gts/<case>.npz")
    to_npz.add_argument("--image", type=Path, required=True, help="NIfTI image")
    to_npz.add_argument("--labels", type=Path, required=True, help="NIfTI label map, same grid")
    to_npz.add_argument("--modality", choices=("CT", "MR", "PET"), required=True)
    to_npz.add_argument("--case", required=True, help="file name becomes 3DBox_<modality>_<case>.npz")
    to_npz.add_argument("-o", "--out-dir", type=Path, required=True)
    to_npz.add_argument(
        "--window",
        type=float,
        nargs=2,
        default=(40.0, 400.0),
        metavar=("LEVEL", "WIDTH"),
        help="CT window (default 40 400)",
    )
    to_npz.add_argument("--min-voxels", type=int, default=30, help="drop labels smaller than this (default 30)")
    to_npz.set_defaults(run=_run_nifti_to_npz)

    to_nifti = kinds.add_parser("segs-to-nifti", help="an npz with 'segs' -> NIfTI label map")
    to_nifti.add_argument("--segs", type=Path, required=True, help="npz with key 'segs' (D, H, W)")
    to_nifti.add_argument("-o", "--out", type=Path, required=True, help=".nii.gz to write")
    source = to_nifti.add_mutually_exclusive_group(required=True)
    source.add_argument("--reference", type=Path, help="source NIfTI of the case (affine taken from it)")
    source.add_argument("--spacing-from", type=Path, help="npz with 'spacing' (affine = diag(spacing))")
    to_nifti.set_defaults(run=_run_segs_to_nifti)


def _run_nifti_to_npz(args: argparse.Namespace) -> int:
    from .convert import nifti_to_npz

    imgs, gts = nifti_to_npz(
        args.image,
        args.labels,
        args.out_dir,
        args.case,
        args.modality,
        window=tuple(args.window),
        min_voxels=args.min_voxels,
    )
    print(f"wrote {imgs} and {gts}")
    return 0


def _run_segs_to_nifti(args: argparse.Namespace) -> int:
    from .convert import segs_to_nifti

    print(f"wrote {segs_to_nifti(args.segs, args.out, args.reference, args.spacing_from)}")
    return 0


def _add_time_eval(subparsers) -> None:
    from .time_eval import add_parser

    add_parser(subparsers)


def _add_report(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="one self-contained HTML page about a scored run (leaderboard, worst-case overlays, all cases)",
        description="Writes OUT_DIR/index.html from the metrics.csv of compute-metrics: leaderboard, DSC per "
        "case by group, overlays of the worst cases, unscored cases, optional timing and a second run.",
        epilog="Exit status: 0 the page was written; 2 usage error (bad arguments, a folder missing, no "
        "metrics.csv, a timing CSV of neither kind).",
    )
    p.add_argument("-m", "--metrics-dir", type=Path, required=True, help="folder with metrics.csv (compute-metrics)")
    p.add_argument("-s", "--seg-dir", type=Path, required=True, help="folder of <case>.npz with key 'segs'")
    p.add_argument("-g", "--gt-dir", type=Path, required=True, help="folder of <case>.npz with key 'gts'")
    p.add_argument("-i", "--img-dir", type=Path, required=True, help="folder of <case>.npz with key 'imgs'")
    p.add_argument("-o", "--out-dir", type=Path, required=True, help="writes index.html")
    p.add_argument("--timing", type=Path, metavar="CSV", help="efficiency_timer.csv or <team>_running_time.csv")
    p.add_argument("--compare", type=Path, metavar="OTHER_METRICS_DIR", help="a second run's metrics, side by side")
    p.add_argument("--worst", type=int, default=3, metavar="N", help="overlays of the N worst per group (default 3)")
    p.set_defaults(run=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    from .report import ReportError, build_report

    try:
        folders = (args.metrics_dir, args.seg_dir, args.gt_dir, args.img_dir, args.out_dir)
        path = build_report(*folders, timing=args.timing, compare=args.compare, worst=args.worst)
    except ReportError as error:
        print(f"report: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


SUBCOMMANDS: tuple[Callable, ...] = (_add_compute_metrics, _add_time_eval, _add_convert, _add_report)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evaluation", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)
