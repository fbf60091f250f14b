"""Command line of the training subcommands.

    python -m medsam_laptop.training distill  [--config CONFIG.json] [--resume CKPT] [overrides]
    python -m medsam_laptop.training finetune [--config CONFIG.json] [--resume CKPT] [overrides]
    python -m medsam_laptop.training finetune-decoder [--config CONFIG.json] [--resume CKPT] [overrides]
    python -m medsam_laptop.training evaluate CKPT [CKPT ...] [-o OUT] [--limit N] [--precision P]
    python -m medsam_laptop.training gpu-recipe [--config CONFIG.json] [--budget-seconds S] [--device D] [...]
    python -m medsam_laptop.training ship CKPT --name NAME --evaluation OUT [--weights-dir DIR]
    python -m medsam_laptop.training cache-features [--features F] [--data-dir DATA] [--cache-dir CACHE] [--no-flips]
        [--cases NAME ...]

Overrides: --steps, --batch-size, --device, --output-dir, --data-dir, --num-workers, --seed, and
--set KEY=VALUE for any (dotted) config key, VALUE as JSON (e.g. --set loss.match_stages=true).

As in `python -m evaluation`: each subcommand's parser sets `run`, a `(args) -> exit status` function that
imports what it needs (torch for most), does the work and turns the errors it expects into an `error:` line
and exit status 2.
"""

import argparse
import json
import sys
from pathlib import Path

from ..io.evaluation_guard import EvaluationSetError
from ..paths import evaluation_cases
from .config import ConfigError, config_from_options, default_config, expand_path

STAGE_HELP = {
    "distill": "Swin-LiteMedSAM stage A",
    "finetune": "Swin-LiteMedSAM stage B",
    "finetune-decoder": "a mask decoder on a feature cache, LiteMedSAM's encoder frozen (config model)",
}
DEFAULT_DATA_DIR = "${MEDSAM_SHARED}/data/cvpr24-train"
FEATURE_KINDS = ("embedding", "stages")


def default_cache_dir(data_dir: Path, features: str) -> Path:
    """build/features/<data folder name>-<features>: the folders the packaged configs train on."""
    return Path("build/features") / f"{data_dir.name}-{features}"


OVERRIDES = {  # option -> config key
    "steps": "steps",
    "batch_size": "batch_size",
    "device": "device",
    "output_dir": "output_dir",
    "data_dir": "data_dir",
    "num_workers": "num_workers",
    "seed": "seed",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m medsam_laptop.training", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for stage, help_text in STAGE_HELP.items():
        p = commands.add_parser(stage, help=help_text)
        p.add_argument("--config", type=Path, default=default_config(stage), help="default: the packaged config")
        p.add_argument("--resume", type=Path, help="checkpoint to continue from (model, optimizer, step, RNG)")
        p.add_argument("--steps", type=int)
        p.add_argument("--batch-size", type=int)
        p.add_argument("--device", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
        p.add_argument("--output-dir")
        p.add_argument("--data-dir")
        p.add_argument("--num-workers", type=int)
        p.add_argument("--seed", type=int)
        p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any config key")
        p.set_defaults(run=run_stage)
    ev = commands.add_parser(
        "evaluate", help="export checkpoints, segment evaluation cases with them and LiteMedSAM, score, judge"
    )
    ev.add_argument("checkpoints", type=Path, nargs="+", help="each named by its training folder")
    ev.add_argument("-o", "--output", type=Path, default=Path("build/training/evaluate"))
    ev.add_argument("--cases-dir", help="imgs/ and gts/ (default: the evaluation set under $MEDSAM_SHARED)")
    ev.add_argument("--limit", type=int, help="score only this many cases, spread over the set")
    ev.add_argument("--threads", type=int, default=0)
    ev.add_argument("--precision", default="f32", help="of every model (default: %(default)s)")
    ev.set_defaults(run=run_evaluate)
    cache = commands.add_parser("cache-features", help="LiteMedSAM's f32 encoder outputs of the training items")
    cache.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="imgs/ and gts/ (default: %(default)s)")
    cache.add_argument(
        "--features",
        choices=FEATURE_KINDS,
        default="embedding",
        help="the embedding (LiteMedSAM's decoder), or the embedding and TinyViT's stage outputs "
        "(litemedsam-skip's decoder) (default: %(default)s)",
    )
    cache.add_argument("--cache-dir", type=Path, help="default: build/features/<data folder name>-<features>")
    cache.add_argument("--weights-dir", type=Path, help="the folder holding litemedsam/ (default: the bundled one)")
    cache.add_argument("--no-flips", dest="flips", action="store_false", help="no left-right mirrored copies")
    cache.add_argument("--cases", nargs="+", help="only these case files (default: every labelled case)")
    cache.add_argument("--threads", type=int, default=0)
    cache.set_defaults(run=cache_features)
    ship = commands.add_parser("ship", help="a finetune-decoder checkpoint as weights/NAME (IR and manifest)")
    ship.add_argument("checkpoint", type=Path)
    ship.add_argument("--name", required=True, help="the model's folder name, e.g. litemedsam-ft")
    ship.add_argument("--evaluation", type=Path, required=True, help="the evaluate output folder that scored it")
    ship.add_argument("--weights-dir", type=Path, help="default: the bundled weights folder")
    ship.set_defaults(run=ship_main)
    recipe = commands.add_parser("gpu-recipe", help="stage A + stage B inside a wall-clock budget (one GPU)")
    recipe.add_argument("--config", type=Path, default=default_config("gpu-recipe"), help="default: the packaged one")
    recipe.add_argument("--budget-seconds", type=float, help="the whole run, from data loading to the last checkpoint")
    recipe.add_argument("--device", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    recipe.add_argument("--output-dir")
    recipe.add_argument("--data-dir")
    recipe.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    recipe.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any config key")
    recipe.set_defaults(run=run_recipe)
    return parser


def cache_features(args: argparse.Namespace) -> int:
    from ..paths import default_weights_dir
    from .decoder.feature_cache import CacheError, build_cache

    try:
        data_dir = expand_path(args.data_dir)
        weights = args.weights_dir or default_weights_dir()
        cache_dir = args.cache_dir or default_cache_dir(data_dir, args.features)
        build_cache(data_dir, cache_dir, weights, args.flips, args.cases, args.threads, args.features)
    except (CacheError, EvaluationSetError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def ship_main(args: argparse.Namespace) -> int:
    from ..export.ir import CheckpointError
    from ..paths import default_weights_dir
    from .release.package import ShipError, ship

    try:
        manifest = ship(args.checkpoint, args.name, args.evaluation, args.weights_dir or default_weights_dir())
    except (CheckpointError, ShipError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{manifest['name']}: {manifest['evaluation']['ship']['decision']}")
    return 0


def run_recipe(args: argparse.Namespace) -> int:
    from .swin.recipe import recipe_main

    return recipe_main(args)


def run_evaluate(args: argparse.Namespace) -> int:
    from .release.evaluate import EvaluateError, evaluate

    cases = expand_path(args.cases_dir) if args.cases_dir else evaluation_cases()
    try:
        result = evaluate(args.checkpoints, args.output, cases, args.limit, args.threads, args.precision)
    except EvaluateError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps({k: v for k, v in result.items() if k != "cases"}, indent=1))
    return 0


def run_stage(args: argparse.Namespace) -> int:
    """distill, finetune or finetune-decoder."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    options = {key: getattr(args, option) for option, key in OVERRIDES.items()}
    try:
        config = config_from_options(args.config, options, args.set, args.command)
    except (ConfigError, EvaluationSetError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from .decoder import finetune as decoder_finetune
    from .loop import pick_device
    from .swin import distill, finetune

    stage = {"distill": distill, "finetune": finetune, "finetune-decoder": decoder_finetune}[args.command]
    try:
        last = stage.run(config, pick_device(config["device"]), args.resume)
    except ConfigError as err:  # e.g. an output folder holding another run
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(last)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return args.run(args)
