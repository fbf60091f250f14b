"""TinyViT is written in the order OpenVINO runs fastest (q, k and v as three projections, tokens to and from
channels-last maps); on a real image every attention, block and patch merging must give exactly what the
organizers' formulation gives."""

import numpy as np
import pytest

from conftest import require_torch

torch = require_torch()

from medsam_laptop.inference.transforms import model_input  # noqa: E402
from medsam_laptop.modeling import model_registry  # noqa: E402
from medsam_laptop.modeling.tiny_vit import PatchMerging, TinyViTBlock, WindowAttention  # noqa: E402


def organizers_attention(attn: WindowAttention, x: torch.Tensor) -> torch.Tensor:
    """One qkv projection, split per head."""
    b, n, _ = x.shape
    qkv = attn.qkv(attn.norm(x)).view(b, n, attn.num_heads, -1)
    q, k, v = (t.permute(0, 2, 1, 3) for t in qkv.split([attn.key_dim] * 3, dim=3))
    scores = (q @ k.transpose(-2, -1)) * attn.scale + attn.attention_biases[:, attn.attention_bias_idxs]
    return attn.proj((scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, -1))


def organizers_block(block: TinyViTBlock, x: torch.Tensor) -> torch.Tensor:
    """Tokens to an NCHW map by transposing (B, N, C), and back."""
    h, w = block.input_resolution
    b, n, c = x.shape
    x = x + block._windowed_attention(x)
    x = block.local_conv(x.transpose(1, 2).reshape(b, c, h, w)).view(b, c, n).transpose(1, 2)
    return x + block.mlp(x)


def organizers_patch_merging(merging: PatchMerging, x: torch.Tensor) -> torch.Tensor:
    if x.ndim == 3:
        h, w = merging.input_resolution
        x = x.reshape(x.shape[0], h, w, -1).permute(0, 3, 1, 2)
    x = merging.conv3(merging.act(merging.conv2(merging.act(merging.conv1(x)))))
    return x.flatten(2).transpose(1, 2)


REFERENCES = {
    WindowAttention: organizers_attention,
    TinyViTBlock: organizers_block,
    PatchMerging: organizers_patch_merging,
}


@pytest.fixture(scope="module")
def encoder_calls(official_checkpoint, cases_dir):
    """(module, input, output) of every attention, block and patch merging while encoding a real image."""
    encoder = model_registry["litemedsam"](official_checkpoint).image_encoder
    image = np.load(sorted((cases_dir / "imgs").glob("2DBox_Endoscopy_*.npz"))[0])["imgs"]
    calls = []
    hooks = [
        module.register_forward_hook(lambda m, args, out: calls.append((m, args[0], out)))
        for module in encoder.modules()
        if type(module) in REFERENCES
    ]
    with torch.inference_mode():
        encoder(torch.from_numpy(model_input(image)))
    for hook in hooks:
        hook.remove()
    return calls


def test_every_layer_equals_the_organizers_formulation(encoder_calls):
    counts = {kind: sum(type(m) is kind for m, _, _ in encoder_calls) for kind in REFERENCES}
    assert counts == {WindowAttention: 10, TinyViTBlock: 10, PatchMerging: 3}
    with torch.inference_mode():
        for module, x, out in encoder_calls:
            assert torch.equal(out, REFERENCES[type(module)](module, x)), type(module).__name__
