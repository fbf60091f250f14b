"""Training Swin-LiteMedSAM weights (torch only; never imported by the run time).

Stage A (`distill`): the Swin encoder learns LiteMedSAM's TinyViT embedding, teacher run online.
Stage B (`finetune`): the new decoder parts learn masks from box / point / scribble prompts, with
ground truth where present and LiteMedSAM's predictions (pseudo-labels) elsewhere.
`evaluate`: exports a checkpoint, segments the evaluation cases and scores them.

    python -m medsam_laptop.training {distill,finetune} --config CONFIG.json [--resume CKPT] [overrides]
    python -m medsam_laptop.training evaluate CKPT [-o OUT] [--limit N]
"""
