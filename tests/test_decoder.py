"""LiteMedSAM's decoder computes the image side of its first layer once for all boxes (batch 1, broadcast);
that must equal running it per box, as the organizers' code does."""

from conftest import require_torch

torch = require_torch()

from medsam_laptop.modeling import model_registry  # noqa: E402


@torch.inference_mode()
def test_shared_image_side_equals_per_box_image_side(official_checkpoint):
    model = model_registry["litemedsam"](official_checkpoint)
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 256, 256, generator=generator)
    embedding = model.encode(image)
    corners = torch.rand(12, 2, generator=generator) * 180
    boxes = torch.cat([corners, corners + 20 + torch.rand(12, 2, generator=generator) * 60], dim=1)

    shared_logits, shared_iou = model.decode(embedding, boxes)
    sparse, dense = model.prompt_encoder(points=None, boxes=boxes, masks=None)
    per_box_logits, per_box_iou = model.mask_decoder(
        image_embeddings=embedding.expand(len(boxes), -1, -1, -1),
        image_pe=model.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=False,
    )
    assert shared_logits.shape == per_box_logits.shape == (12, 1, 256, 256)
    torch.testing.assert_close(shared_logits, per_box_logits, rtol=0, atol=1e-4)
    torch.testing.assert_close(shared_iou, per_box_iou, rtol=0, atol=1e-5)
    # the masks (logits > 0) agree except where a logit sits at the zero crossing
    flips = ((shared_logits > 0) != (per_box_logits > 0)) & (per_box_logits.abs() > 1e-4)
    assert not flips.any()
    # each box's logits are its own: decoding one box alone gives the same
    alone, _ = model.decode(embedding, boxes[3:4])
    torch.testing.assert_close(alone, shared_logits[3:4], rtol=0, atol=1e-4)
