"""Command line: argument parsing only.

    python -m medsam_laptop.training distill  [--config CONFIG.json] [--resume CKPT] [overrides]
    python -m medsam_laptop.training finetune [--config CONFIG.json] [--resume CKPT] [overrides]
    python -m medsam_laptop.training finetune-decoder [--config CONFIG.json] [--resume CKPT] [overrides]
    python -m medsam_laptop.training evaluate CKPT [-o OUT] [--limit N] [--baseline] [--model M] [--precision P]
    python -m medsam_laptop.training gpu-recipe [--config CONFIG.json] [--budget-seconds S] [--device D] [...]
    python -m medsam_laptop.training ship CKPT --name NAME --evaluation OUT [--weights-dir DIR]
    python -m medsam_laptop.training cache-features [--features F] [--data-dir DATA] [--cache-dir CACHE] [--no-flips]

Overrides: --steps, --batch-size, --device, --output-dir, --data-dir, --num-workers, --seed, and
--set KEY=VALUE for any (dotted) config key, VALUE as JSON (e.g. --set loss.match_stages=true).
"""

import argparse
import sys
from pathlib import Path

from ..contract import MODEL_PROMPT_MODES
from ..evaluation_guard import EvaluationSetError
from ..paths import evaluation_cases
from .config import ConfigError, config_from_options, default_config, expand_path

STAGE_HELP = {
    "distill": "Swin-LiteMedSAM stage A",
    "finetune": "Swin-LiteMedSAM stage B",
    "finetune-decoder": "a mask decoder on a feature cache, LiteMedSAM's encoder frozen (config model)",
}
DEFAULT_DATA_DIR = "${MEDSAM_SHARED}/data/cvpr24-train"
DEFAULT_CACHE_DIRS = {
    "embedding": Path("build/features/litemedsam-f32"),
    "stages": Path("build/features/litemedsam-stages-f32"),
}
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
    ev = commands.add_parser("evaluate", help="export a checkpoint, segment evaluation cases, score them")
    ev.add_argument("checkpoint", type=Path)
    ev.add_argument("-o", "--output", type=Path, help="default: build/training/evaluate/<checkpoint name>")
    ev.add_argument("--cases-dir", help="imgs/ and gts/ (default: the evaluation set under $MEDSAM_SHARED)")
    ev.add_argument("--limit", type=int, help="score only this many cases, spread over the set")
    ev.add_argument("--threads", type=int, default=0)
    ev.add_argument("--baseline", action="store_true", help="also score LiteMedSAM; report the shipping bar")
    ev.add_argument(
        "--model",
        choices=tuple(MODEL_PROMPT_MODES),
        default="swin-litemedsam",
        help="the checkpoint's architecture (litemedsam or litemedsam-skip: a finetune-decoder checkpoint)",
    )
    ev.add_argument("--precision", default="f32", help="of both models (default: %(default)s)")
    cache = commands.add_parser("cache-features", help="LiteMedSAM's f32 encoder outputs of the training items")
    cache.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="imgs/ and gts/ (default: %(default)s)")
    cache.add_argument(
        "--features",
        choices=tuple(DEFAULT_CACHE_DIRS),
        default="embedding",
        help="the embedding (LiteMedSAM's decoder), or the embedding and TinyViT's stage outputs "
        "(litemedsam-skip's decoder) (default: %(default)s)",
    )
    cache.add_argument(
        "--cache-dir",
        type=Path,
        help="default: " + ", ".join(f"{path} ({kind})" for kind, path in DEFAULT_CACHE_DIRS.items()),
    )
    cache.add_argument("--weights-dir", type=Path, help="the folder holding litemedsam/ (default: the bundled one)")
    cache.add_argument("--no-flips", dest="flips", action="store_false", help="no left-right mirrored copies")
    cache.add_argument("--cases", nargs="+", help="only these case files (default: every labelled case)")
    cache.add_argument("--threads", type=int, default=0)
    ship = commands.add_parser("ship", help="a finetune-decoder checkpoint as weights/NAME (IR and manifest)")
    ship.add_argument("checkpoint", type=Path)
    ship.add_argument("--name", required=True, help="the model's folder name, e.g. litemedsam-ft")
    ship.add_argument("--evaluation", type=Path, required=True, help="the evaluate --baseline output folder")
    ship.add_argument("--weights-dir", type=Path, help="default: the bundled weights folder")
    from .recipe import add_recipe_parser  # torch, like every stage

    add_recipe_parser(commands)
    return parser


def cache_features(args: argparse.Namespace) -> int:
    from ..paths import default_weights_dir
    from .feature_cache import CacheError, build_cache

    try:
        data_dir = expand_path(args.data_dir)
        weights = args.weights_dir or default_weights_dir()
        cache_dir = args.cache_dir or DEFAULT_CACHE_DIRS[args.features]
        build_cache(data_dir, cache_dir, weights, args.flips, args.cases, args.threads, args.features)
    except (CacheError, EvaluationSetError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def ship_main(args: argparse.Namespace) -> int:
    from ..paths import default_weights_dir
    from .ship import ship

    try:
        manifest = ship(args.checkpoint, args.name, args.evaluation, args.weights_dir or default_weights_dir())
    except (OSError, KeyError, ValueError) as err:  # ShipError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{manifest['name']}: {manifest['evaluation']['ship']['decision']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "cache-features":
        return cache_features(args)
    if args.command == "ship":
        return ship_main(args)
    if args.command == "gpu-recipe":
        from .recipe import recipe_main

        return recipe_main(args)
    if args.command == "evaluate":
        from .evaluate import evaluate

        out = args.output or Path("build/training/evaluate") / args.checkpoint.stem
        cases = expand_path(args.cases_dir) if args.cases_dir else evaluation_cases()
        try:
            result = evaluate(
                args.checkpoint, out, cases, args.limit, args.threads, args.baseline, args.model, args.precision
            )
        except RuntimeError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print({k: v for k, v in result.items() if k != "cases"})
        return 0

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    options = {key: getattr(args, option) for option, key in OVERRIDES.items()}
    try:
        config = config_from_options(args.config, options, args.set, args.command)
    except (ConfigError, EvaluationSetError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from . import decoder_finetune, distill, finetune
    from .loop import pick_device

    stage = {"distill": distill, "finetune": finetune, "finetune-decoder": decoder_finetune}[args.command]
    try:
        last = stage.run(config, pick_device(config["device"]), args.resume)
    except ConfigError as err:  # e.g. an output folder holding another run
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(last)
    return 0
