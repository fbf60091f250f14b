"""Training (torch only; never imported by the run time). docs/training.md describes it.

Swin-LiteMedSAM (`swin/`; needs a GPU):
- `distill` (stage A): the Swin encoder learns LiteMedSAM's TinyViT embedding, teacher run online;
- `finetune` (stage B): the new decoder parts learn masks from box / point / scribble prompts, with
  ground truth where present and LiteMedSAM's predictions (pseudo-labels) elsewhere;
- `gpu-recipe`: stage A then stage B in one command, inside a wall-clock budget.

A mask decoder on LiteMedSAM's frozen encoder (`decoder/`; on the CPU):
- `cache-features`: LiteMedSAM's f32 encoder outputs of the training items, one cache per data folder;
- `finetune-decoder`: a decoder trained on those caches, chosen on held-out validation cases.

`release/`, for either kind: `evaluate` exports checkpoints, segments the evaluation cases with them and
LiteMedSAM, scores them and applies the shipping rule (`rule.py`); `ship` packages a finetune-decoder
checkpoint that `evaluate` judged shippable as weights/NAME (`package.py`).

What both kinds share: the training items (`items.py`), data, augmentation, targets, losses, the loop.

    python -m medsam_laptop.training {distill,finetune,finetune-decoder} [--config CONFIG.json] [--resume CKPT]
        [overrides]
    python -m medsam_laptop.training gpu-recipe [--config CONFIG.json] [--budget-seconds S] [--device D] [...]
    python -m medsam_laptop.training cache-features [--data-dir DATA] [--features F] [--no-flips] [...]
    python -m medsam_laptop.training evaluate CKPT [CKPT ...] [-o OUT] [--limit N] [--precision P]
    python -m medsam_laptop.training ship CKPT --name NAME --evaluation OUT
"""
