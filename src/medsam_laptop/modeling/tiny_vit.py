"""TinyViT-5M image encoder as LiteMedSAM configures it: 3x256x256 image -> 256x64x64 embedding.

LiteMedSAM's variant embeds patches with two 1x1 convolutions (stride 1), so stage 0 runs at 256 x 256;
stages 1-3 run at 128, 64 and 64 (the last patch merging keeps the resolution when it widens to 320).

The layers are written in the order OpenVINO runs fastest, which gives the same numbers as the
organizers' order (`tests/test_tiny_vit.py`).
"""

import itertools

import torch
from torch import nn
from torch.nn import functional as F

from .common import Conv2dBN, PatchEmbed, conv_neck


def channels_last_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> tokens (B, H*W, C), as `flatten(2).transpose(1, 2)` but through (B, H, W, C): OpenVINO
    runs convolutions channels-last, so this order is a free view there, where the other is a transpose."""
    return x.permute(0, 2, 3, 1).flatten(1, 2)


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand, 3x3 depthwise, 1x1 project, residual. (B, C, H, W) -> same."""

    def __init__(self, dim: int, expand_ratio: float) -> None:
        super().__init__()
        hidden = int(dim * expand_ratio)
        self.conv1 = Conv2dBN(dim, hidden)
        self.act1 = nn.GELU()
        self.conv2 = Conv2dBN(hidden, hidden, 3, 1, 1, groups=hidden)
        self.act2 = nn.GELU()
        self.conv3 = Conv2dBN(hidden, dim)
        self.act3 = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act2(self.conv2(self.act1(self.conv1(x))))
        return self.act3(self.conv3(y) + x)


class PatchMerging(nn.Module):
    """Widens to `out_dim` and halves the resolution (unless `out_dim` is 320, as in SAM's TinyViT).

    Takes (B, C, H, W) or tokens (B, H*W, C) at `input_resolution`; returns tokens (B, H'*W', out_dim).
    """

    def __init__(self, input_resolution: tuple[int, int], dim: int, out_dim: int) -> None:
        super().__init__()
        self.input_resolution = input_resolution
        stride = 1 if out_dim in (320, 448, 576) else 2
        self.conv1 = Conv2dBN(dim, out_dim)
        self.conv2 = Conv2dBN(out_dim, out_dim, 3, stride, 1, groups=out_dim)
        self.conv3 = Conv2dBN(out_dim, out_dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:
            h, w = self.input_resolution
            x = x.reshape(x.shape[0], h, w, -1).permute(0, 3, 1, 2)
        x = self.conv3(self.act(self.conv2(self.act(self.conv1(x)))))
        return channels_last_tokens(x)


class WindowAttention(nn.Module):
    """Attention inside one window of `resolution` tokens, with a learned bias per head and relative offset.

    (B, N, C) -> (B, N, C), N = resolution[0] * resolution[1]; LayerNorm is applied first.
    """

    def __init__(self, dim: int, key_dim: int, num_heads: int, resolution: tuple[int, int]) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.scale = key_dim**-0.5
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * key_dim * num_heads)
        self.proj = nn.Linear(key_dim * num_heads, dim)
        points = list(itertools.product(range(resolution[0]), range(resolution[1])))
        offsets: dict[tuple[int, int], int] = {}
        idxs = []
        for p1 in points:
            for p2 in points:
                off = (abs(p1[0] - p2[0]), abs(p1[1] - p2[1]))
                idxs.append(offsets.setdefault(off, len(offsets)))
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, len(offsets)))
        self.register_buffer(
            "attention_bias_idxs", torch.tensor(idxs, dtype=torch.long).view(len(points), len(points)), persistent=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        x = self.norm(x)
        # The checkpoint's qkv rows interleave q, k and v per head. Projecting with each one's rows gives
        # the numbers that splitting one projection gives, and spares OpenVINO that strided split, which
        # its CPU plugin runs with a reference kernel (benchmarks/notes/2026-12-02-encoder.md, "TinyViT's layout").
        weight = self.qkv.weight.view(self.num_heads, 3, self.key_dim, -1)
        bias = self.qkv.bias.view(self.num_heads, 3, self.key_dim)
        q, k, v = (
            F.linear(x, weight[:, i].flatten(0, 1), bias[:, i].flatten()).view(b, n, self.num_heads, -1).transpose(1, 2)
            for i in range(3)
        )
        attn = (q @ k.transpose(-2, -1)) * self.scale + self.attention_biases[:, self.attention_bias_idxs]
        x = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, -1)
        return self.proj(x)


class FeedForward(nn.Module):
    """LayerNorm, then a GELU MLP: (B, N, C) -> (B, N, C)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


class TinyViTBlock(nn.Module):
    """Windowed attention (zero-padded to whole windows), depthwise 3x3 conv, MLP. Tokens (B, H*W, C)."""

    def __init__(
        self, dim: int, input_resolution: tuple[int, int], num_heads: int, window_size: int, mlp_ratio: float
    ) -> None:
        super().__init__()
        self.input_resolution = input_resolution
        self.window_size = window_size
        self.attn = WindowAttention(dim, dim // num_heads, num_heads, (window_size, window_size))
        self.mlp = FeedForward(dim, int(dim * mlp_ratio))
        self.local_conv = Conv2dBN(dim, dim, 3, 1, 1, groups=dim)

    def _windowed_attention(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.input_resolution
        ws = self.window_size
        b, n, c = x.shape
        if h == ws and w == ws:
            return self.attn(x)
        pad_b, pad_r = (ws - h % ws) % ws, (ws - w % ws) % ws
        x = x.view(b, h, w, c)
        if pad_b or pad_r:
            x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        ph, pw = h + pad_b, w + pad_r
        nh, nw = ph // ws, pw // ws
        x = x.view(b, nh, ws, nw, ws, c).transpose(2, 3).reshape(b * nh * nw, ws * ws, c)
        x = self.attn(x)
        x = x.view(b, nh, nw, ws, ws, c).transpose(2, 3).reshape(b, ph, pw, c)
        return x[:, :h, :w].reshape(b, n, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.input_resolution
        b, n, c = x.shape
        x = x + self._windowed_attention(x)
        x = self.local_conv(x.view(b, h, w, c).permute(0, 3, 1, 2))
        x = channels_last_tokens(x)
        return x + self.mlp(x)


class ConvStage(nn.Module):
    """Stage 0: MBConv blocks on (B, C, H, W), then patch merging to tokens."""

    def __init__(self, dim: int, out_dim: int, resolution: tuple[int, int], depth: int, expand_ratio: float):
        super().__init__()
        self.blocks = nn.ModuleList(MBConv(dim, expand_ratio) for _ in range(depth))
        self.downsample = PatchMerging(resolution, dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.downsample(x)


class AttentionStage(nn.Module):
    """Stages 1-3: TinyViT blocks on tokens, then (except the last stage) patch merging."""

    def __init__(
        self,
        dim: int,
        out_dim: int | None,
        resolution: tuple[int, int],
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            TinyViTBlock(dim, resolution, num_heads, window_size, mlp_ratio) for _ in range(depth)
        )
        self.downsample = PatchMerging(resolution, dim, out_dim) if out_dim else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.downsample(x) if self.downsample is not None else x


class TinyViT(nn.Module):
    """(B, 3, 256, 256) float image in [0, 1] -> (B, 256, 64, 64) embedding."""

    def __init__(
        self,
        img_size: int,
        embed_dims: tuple[int, ...],
        depths: tuple[int, ...],
        num_heads: tuple[int, ...],
        window_sizes: tuple[int, ...],
        mlp_ratio: float,
        mbconv_expand_ratio: float,
        in_chans: int = 3,
        out_chans: int = 256,
    ) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(in_chans, embed_dims[0])
        res = img_size
        layers: list[nn.Module] = [ConvStage(embed_dims[0], embed_dims[1], (res, res), depths[0], mbconv_expand_ratio)]
        resolutions = []  # of each stage's input after the first: the previous stage's output
        for i in range(1, len(depths)):
            res = res // 2 if embed_dims[i] not in (320, 448, 576) else res
            resolutions.append(res)
            out_dim = embed_dims[i + 1] if i + 1 < len(depths) else None
            layers.append(
                AttentionStage(embed_dims[i], out_dim, (res, res), depths[i], num_heads[i], window_sizes[i], mlp_ratio)
            )
        self.layers = nn.ModuleList(layers)
        self.out_resolution = res
        self.stage_resolutions = (*resolutions, res)
        self.neck = conv_neck(embed_dims[-1], out_chans)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        b, _, c = x.shape
        x = x.view(b, self.out_resolution, self.out_resolution, c).permute(0, 3, 1, 2)
        return self.neck(x)

    def forward_with_stages(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, 3, 256, 256) -> the embedding (B, 256, 64, 64) and the four stage outputs as (B, C, r, r) maps:
        (B, 128, 128, 128), (B, 160, 64, 64), (B, 320, 64, 64), (B, 320, 64, 64)."""
        x = self.patch_embed(x)
        stages = []
        for layer, r in zip(self.layers, self.stage_resolutions):
            x = layer(x)
            b, _, c = x.shape
            stages.append(x.view(b, r, r, c).permute(0, 3, 1, 2))
        return self.neck(stages[-1]), stages


class TinyViTWithSkips(TinyViT):
    """TinyViT as the image encoder of a skip-feature decoder: (B, 3, 256, 256) -> (embedding, [fs0, fs1,
    fs2, fs3]), the shapes `forward_with_stages` gives, which are those of the Swin encoder's skips."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:  # type: ignore[override]
        return self.forward_with_stages(x)
