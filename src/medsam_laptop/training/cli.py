"""Command line: argument parsing only.

    python -m medsam_laptop.training distill  [--config CONFIG.json] [--resume CKPT] [overrides]
    python -m medsam_laptop.training finetune [--config CONFIG.json] [--resume CKPT] [overrides]
    python -m medsam_laptop.training evaluate CKPT [-o OUT] [--limit N] [--baseline]

Overrides: --steps, --batch-size, --device, --output-dir, --data-dir, --num-workers, --seed, and
--set KEY=VALUE for any (dotted) config key, VALUE as JSON (e.g. --set loss.match_stages=true).
"""

import argparse
import sys
from pathlib import Path

from ..evaluation_guard import EvaluationSetError
from ..paths import evaluation_cases
from .config import ConfigError, default_config, expand_path, load_config, parse_assignment

STAGES = ("distill", "finetune")
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
    for stage in STAGES:
        p = commands.add_parser(stage, help=f"stage {'A' if stage == 'distill' else 'B'}")
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "evaluate":
        from .evaluate import evaluate

        out = args.output or Path("build/training/evaluate") / args.checkpoint.stem
        cases = expand_path(args.cases_dir) if args.cases_dir else evaluation_cases()
        try:
            result = evaluate(args.checkpoint, out, cases, args.limit, args.threads, args.baseline)
        except RuntimeError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print({k: v for k, v in result.items() if k != "cases"})
        return 0

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {key: getattr(args, option) for option, key in OVERRIDES.items()}
    try:
        overrides |= dict(parse_assignment(text) for text in args.set)
        config = load_config(args.config, overrides)
    except (ConfigError, EvaluationSetError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if config["stage"] != args.command:
        print(f"error: {args.config} is a {config['stage']} config, not {args.command}", file=sys.stderr)
        return 2
    from . import distill, finetune
    from .loop import pick_device

    stage = distill if args.command == "distill" else finetune
    last = stage.run(config, pick_device(config["device"]), args.resume)
    print(last)
    return 0
