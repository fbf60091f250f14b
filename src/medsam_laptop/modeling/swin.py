"""Swin-LiteMedSAM's image encoder: 3x256x256 image -> 256x64x64 embedding and four skip features.

Checkpoint-compatible with the authors' `SwinTransformer()` (RuochenGao/Swin_LiteMedSAM): the module
tree reproduces their state-dict keys, the shift masks included. Windows are formed with
reshape/permute and attention with matmul, and the shift masks are applied with `torch.where`, so the
module traces into an OpenVINO graph.

Layout: patch embedding (two 1x1 Conv-BN, 64 channels at 256^2), then four stages of (regular, shifted)
window-attention block pairs, each stage starting with a patch merging:

    stage  width  blocks  merge  heads  resolution
    1      128    2       2      2      128
    2      160    2       2      4      64
    3      320    6       1      5      64
    4      320    2       1      10     64

Heads have a fixed width of 32; windows are 8x8, the shift is 4; one 15x15 relative-position bias
table is shared by all heads of a block.
"""

import torch
from torch import nn

from .common import Conv2dBN, PatchEmbed, conv_neck


class Residual(nn.Module):
    """x + fn(x) (key `fn`)."""

    def __init__(self, fn: nn.Module) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fn(x)


class PreNorm(nn.Module):
    """fn(LayerNorm(x)) over the last axis (keys `norm`, `fn`)."""

    def __init__(self, dim: int, fn: nn.Module) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.norm(x))


class FeedForward(nn.Module):
    """Linear, GELU, Linear (keys `net.0`, `net.2`): (..., dim) -> (..., dim)."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def shift_masks(window_size: int, shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Additive (-inf / 0) masks, (ws^2, ws^2), for windows that straddle the wrap-around of a cyclic shift.

    upper_lower: for windows of the last window row, a query in the last `shift` rows of the window may
    not see keys in the other rows, and vice versa. left_right: the same for columns, in the last window
    column. Token index inside a window is row * ws + column.
    """
    pos = torch.arange(window_size)
    row_part = (pos >= window_size - shift).repeat_interleave(window_size)  # by token: row in the wrapped part
    col_part = (pos >= window_size - shift).repeat(window_size)  # by token: column in the wrapped part
    inf = torch.tensor(float("-inf"))
    upper_lower = torch.where(row_part[:, None] != row_part[None, :], inf, 0.0)
    left_right = torch.where(col_part[:, None] != col_part[None, :], inf, 0.0)
    return upper_lower, left_right


def relative_position_index(window_size: int) -> torch.Tensor:
    """(ws^2, ws^2) index into a flattened (2ws-1, 2ws-1) table: query i, key j -> offset of j from i."""
    rows = torch.arange(window_size).repeat_interleave(window_size)
    cols = torch.arange(window_size).repeat(window_size)
    d_row = rows[None, :] - rows[:, None] + window_size - 1
    d_col = cols[None, :] - cols[:, None] + window_size - 1
    return d_row * (2 * window_size - 1) + d_col


class WindowAttention(nn.Module):
    """Multi-head self-attention inside non-overlapping windows, optionally cyclically shifted.

    (B, H, W, dim) -> (B, H, W, dim); H and W are multiples of the window size.
    """

    def __init__(self, dim: int, heads: int, head_dim: int, window_size: int, shifted: bool) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = head_dim
        self.scale = head_dim**-0.5
        self.window_size = window_size
        self.shift = window_size // 2 if shifted else 0
        if shifted:
            upper_lower, left_right = shift_masks(window_size, self.shift)
            self.register_buffer("upper_lower_mask", upper_lower)
            self.register_buffer("left_right_mask", left_right)
        self.to_qkv = nn.Linear(dim, heads * head_dim * 3, bias=False)
        self.pos_embedding = nn.Parameter(torch.randn(2 * window_size - 1, 2 * window_size - 1))
        self.register_buffer("relative_index", relative_position_index(window_size), persistent=False)
        self.to_out = nn.Linear(heads * head_dim, dim)

    def _shift_mask(self, nw_h: int, nw_w: int) -> torch.Tensor:
        """(nw_h * nw_w, ws^2, ws^2) additive mask: windows of the last row / column get theirs."""
        window = torch.arange(nw_h * nw_w, device=self.upper_lower_mask.device)
        last_row = (window >= (nw_h - 1) * nw_w)[:, None, None]
        last_col = (window % nw_w == nw_w - 1)[:, None, None]
        zero = torch.zeros((), device=window.device)
        return torch.where(last_row, self.upper_lower_mask, zero) + torch.where(last_col, self.left_right_mask, zero)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.shift:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
        b, h, w, _ = x.shape
        ws, heads, d = self.window_size, self.heads, self.head_dim
        nw_h, nw_w = h // ws, w // ws
        # (B, H, W, 3*heads*d) -> (3, B, heads, windows, ws*ws, d); channels are ordered (q|k|v, head, d).
        qkv = self.to_qkv(x).reshape(b, nw_h, ws, nw_w, ws, 3, heads, d)
        qkv = qkv.permute(5, 0, 6, 1, 3, 2, 4, 7).reshape(3, b, heads, nw_h * nw_w, ws * ws, d)
        q, k, v = qkv[0], qkv[1], qkv[2]
        dots = (q @ k.transpose(-2, -1)) * self.scale
        dots = dots + self.pos_embedding.flatten()[self.relative_index]
        if self.shift:
            dots = dots + self._shift_mask(nw_h, nw_w)
        out = dots.softmax(dim=-1) @ v  # (B, heads, windows, ws*ws, d)
        out = out.reshape(b, heads, nw_h, nw_w, ws, ws, d).permute(0, 2, 4, 3, 5, 1, 6).reshape(b, h, w, heads * d)
        out = self.to_out(out)
        if self.shift:
            out = torch.roll(out, shifts=(self.shift, self.shift), dims=(1, 2))
        return out


class SwinBlock(nn.Module):
    """x + Attn(LN(x)); depthwise 3x3 Conv-BN (no residual); x + MLP(LN(x)). (B, H, W, dim) -> same."""

    def __init__(self, dim: int, heads: int, head_dim: int, window_size: int, shifted: bool) -> None:
        super().__init__()
        self.attention_block = Residual(PreNorm(dim, WindowAttention(dim, heads, head_dim, window_size, shifted)))
        self.local_conv = Conv2dBN(dim, dim, 3, 1, 1, groups=dim)
        self.mlp_block = Residual(PreNorm(dim, FeedForward(dim, dim * 4)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attention_block(x)
        x = self.local_conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return self.mlp_block(x)


class PatchMerging(nn.Module):
    """Concatenates each f x f patch's channels and projects them: (B, C, H, W) -> (B, H/f, W/f, out).

    Channel order inside a patch is (c, row, column), as `nn.Unfold` lays it out (key `linear`).
    """

    def __init__(self, in_channels: int, out_channels: int, factor: int) -> None:
        super().__init__()
        self.factor = factor
        self.linear = nn.Linear(in_channels * factor**2, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        f = self.factor
        x = x.reshape(b, c, h // f, f, w // f, f).permute(0, 2, 4, 1, 3, 5).reshape(b, h // f, w // f, c * f * f)
        return self.linear(x)


class SwinStage(nn.Module):
    """Patch merging, then `depth // 2` (regular, shifted) block pairs: (B, C, H, W) -> (B, dim, H/f, W/f)."""

    def __init__(
        self, in_channels: int, dim: int, depth: int, factor: int, heads: int, head_dim: int, window_size: int
    ) -> None:
        super().__init__()
        self.downsample = PatchMerging(in_channels, dim, factor)
        self.blocks = nn.ModuleList(
            nn.ModuleList(SwinBlock(dim, heads, head_dim, window_size, shifted) for shifted in (False, True))
            for _ in range(depth // 2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        for pair in self.blocks:
            for block in pair:
                x = block(x)
        return x.permute(0, 3, 1, 2)


class SwinEncoder(nn.Module):
    """(B, 3, 256, 256) float image in [0, 1] -> embedding (B, 256, 64, 64) and skip features
    [fs0 (B, 128, 128, 128), fs1 (B, 160, 64, 64), fs2 (B, 320, 64, 64), fs3 (B, 320, 64, 64)]."""

    def __init__(
        self,
        dims: tuple[int, ...],
        depths: tuple[int, ...],
        heads: tuple[int, ...],
        factors: tuple[int, ...],
        head_dim: int,
        window_size: int,
        in_chans: int = 3,
        out_chans: int = 256,
    ) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(in_chans, dims[0])
        widths = (*dims[1:], dims[-1])  # the last stage keeps the width of the third
        in_widths = (dims[0], *widths[:-1])
        for i in range(4):
            stage = SwinStage(in_widths[i], widths[i], depths[i], factors[i], heads[i], head_dim, window_size)
            self.add_module(f"stage{i + 1}", stage)
        self.neck = conv_neck(widths[-1], out_chans)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = self.patch_embed(image)
        skips = []
        for stage in (self.stage1, self.stage2, self.stage3, self.stage4):
            x = stage(x)
            skips.append(x)
        return self.neck(x), skips
