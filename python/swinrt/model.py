"""PyTorch reference of Swin-Unet (Cao et al. 2021), the model swinrt runs.

Module tree, parameter and buffer names follow the public Swin-Unet code
(networks/swin_transformer_unet_skip_expand_decoder_sys.py and the SwinUnet
wrapper of networks/vision_transformer.py), so a state_dict saved by the
original training code loads here with strict=True. Written for inference:
dropout and drop-path are identities, as in eval mode, and hold no parameters.

As in the original, the decoder ends with a fixed x4 expansion of the patch
grid, so the logits are [B, num_classes, 4 * img_size / patch_size, ...]:
[B, num_classes, img_size, img_size] for the usual patch_size 4. The decoder
takes the skip of encoder stage L-1-i at layers_up.i (the original writes 3-i,
its L being 4).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from .config import ModelConfig


def window_partition(x: torch.Tensor, w: int) -> torch.Tensor:
    """[B, H, W, C] -> [B * H/w * W/w, w, w, C], windows in row-major order."""
    B, H, W, C = x.shape
    x = x.view(B, H // w, w, W // w, w, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, w, w, C)


def window_reverse(windows: torch.Tensor, w: int, H: int, W: int) -> torch.Tensor:
    """Inverse of window_partition."""
    B = windows.shape[0] // ((H // w) * (W // w))
    x = windows.view(B, H // w, W // w, w, w, -1).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(B, H, W, -1)


def relative_position_index(w: int) -> torch.Tensor:
    """[w*w, w*w] index into the (2w-1)^2 relative position bias table."""
    ys, xs = torch.meshgrid(torch.arange(w), torch.arange(w), indexing="ij")
    coords = torch.stack([ys.flatten(), xs.flatten()])  # 2, N
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (w - 1)
    return rel[:, :, 0] * (2 * w - 1) + rel[:, :, 1]


def shift_attention_mask(H: int, W: int, w: int, shift: int) -> torch.Tensor:
    """[nW, N, N]: 0 within a region of the cyclically shifted image, -100 across."""
    img = torch.zeros(1, H, W, 1)
    bands = (slice(0, -w), slice(-w, -shift), slice(-shift, None))
    region = 0
    for hs in bands:
        for ws in bands:
            img[:, hs, ws, :] = region
            region += 1
    ids = window_partition(img, w).view(-1, w * w)
    diff = ids.unsqueeze(1) - ids.unsqueeze(2)
    return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class WindowAttention(nn.Module):
    """W-MSA with relative position bias; the shift mask is passed in."""

    def __init__(self, dim: int, window: int, num_heads: int, qkv_bias: bool, qk_scale):
        super().__init__()
        self.dim, self.window_size, self.num_heads = dim, (window, window), num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, num_heads))
        self.register_buffer("relative_position_index", relative_position_index(window))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x, mask=None):
        Bw, N, C = x.shape
        h = self.num_heads
        qkv = self.qkv(x).reshape(Bw, N, 3, h, C // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = q @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(N, N, -1)
        attn = attn + bias.permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            nW = mask.shape[0]
            attn = attn.view(Bw // nW, nW, h, N, N) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, h, N, N)
        attn = attn.softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(Bw, N, C))


class SwinTransformerBlock(nn.Module):
    def __init__(self, dim, input_resolution, num_heads, window_size, shift_size, mlp_ratio, qkv_bias, qk_scale):
        super().__init__()
        self.dim, self.input_resolution = dim, input_resolution
        self.window_size, self.shift_size = window_size, shift_size
        if min(input_resolution) <= window_size:  # the grid fits one window: no shift
            self.shift_size, self.window_size = 0, min(input_resolution)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, self.window_size, num_heads, qkv_bias, qk_scale)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        mask = None
        if self.shift_size > 0:
            mask = shift_attention_mask(*input_resolution, self.window_size, self.shift_size)
        self.register_buffer("attn_mask", mask)

    def forward(self, x):
        H, W = self.input_resolution
        B, L, C = x.shape
        s, w = self.shift_size, self.window_size
        y = self.norm1(x).view(B, H, W, C)
        if s > 0:
            y = torch.roll(y, shifts=(-s, -s), dims=(1, 2))
        y = self.attn(window_partition(y, w).view(-1, w * w, C), mask=self.attn_mask)
        y = window_reverse(y.view(-1, w, w, C), w, H, W)
        if s > 0:
            y = torch.roll(y, shifts=(s, s), dims=(1, 2))
        x = x + y.reshape(B, L, C)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    def __init__(self, input_resolution, dim):
        super().__init__()
        self.input_resolution, self.dim = input_resolution, dim
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x):
        H, W = self.input_resolution
        B, L, C = x.shape
        x = x.view(B, H, W, C)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x.view(B, -1, 4 * C)))


def pixel_shuffle_tokens(x: torch.Tensor, H: int, W: int, f: int) -> torch.Tensor:
    """'b h w (p1 p2 c) -> b (h p1) (w p2) c' on [B, H*W, f*f*c] tokens."""
    B, L, C = x.shape
    c = C // (f * f)
    x = x.view(B, H, W, f, f, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(B, H * f * W * f, c)


class PatchExpand(nn.Module):
    def __init__(self, input_resolution, dim, dim_scale=2):
        super().__init__()
        self.input_resolution, self.dim = input_resolution, dim
        self.expand = nn.Linear(dim, 2 * dim, bias=False) if dim_scale == 2 else nn.Identity()
        self.norm = nn.LayerNorm(dim // dim_scale)

    def forward(self, x):
        H, W = self.input_resolution
        return self.norm(pixel_shuffle_tokens(self.expand(x), H, W, 2))


class FinalPatchExpand_X4(nn.Module):
    def __init__(self, input_resolution, dim, dim_scale=4):
        super().__init__()
        self.input_resolution, self.dim, self.dim_scale = input_resolution, dim, dim_scale
        self.expand = nn.Linear(dim, 16 * dim, bias=False)
        self.output_dim = dim
        self.norm = nn.LayerNorm(self.output_dim)

    def forward(self, x):
        H, W = self.input_resolution
        return self.norm(pixel_shuffle_tokens(self.expand(x), H, W, self.dim_scale))


class BasicLayer(nn.Module):
    """Encoder stage: Swin blocks (alternating W-MSA / SW-MSA), then PatchMerging."""

    def __init__(self, dim, input_resolution, depth, num_heads, window_size, mlp_ratio, qkv_bias, qk_scale,
                 downsample: bool):
        super().__init__()
        self.blocks = nn.ModuleList([
            SwinTransformerBlock(dim, input_resolution, num_heads, window_size, 0 if i % 2 == 0 else window_size // 2,
                                 mlp_ratio, qkv_bias, qk_scale) for i in range(depth)])
        self.downsample = PatchMerging(input_resolution, dim) if downsample else None

    def forward(self, x):
        for blk in self.blocks:
            x = blk(x)
        return self.downsample(x) if self.downsample is not None else x


class BasicLayer_up(nn.Module):
    """Decoder stage: Swin blocks, then PatchExpand."""

    def __init__(self, dim, input_resolution, depth, num_heads, window_size, mlp_ratio, qkv_bias, qk_scale,
                 upsample: bool):
        super().__init__()
        self.blocks = nn.ModuleList([
            SwinTransformerBlock(dim, input_resolution, num_heads, window_size, 0 if i % 2 == 0 else window_size // 2,
                                 mlp_ratio, qkv_bias, qk_scale) for i in range(depth)])
        self.upsample = PatchExpand(input_resolution, dim) if upsample else None

    def forward(self, x):
        for blk in self.blocks:
            x = blk(x)
        return self.upsample(x) if self.upsample is not None else x


class PatchEmbed(nn.Module):
    def __init__(self, img_size, patch_size, in_chans, embed_dim, norm: bool):
        super().__init__()
        self.img_size = img_size
        self.patches_resolution = [img_size // patch_size] * 2
        self.num_patches = self.patches_resolution[0] ** 2
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim) if norm else None

    def forward(self, x):
        if tuple(x.shape[2:]) != (self.img_size, self.img_size):
            raise ValueError(f"input of {tuple(x.shape[2:])} pixels; the model expects "
                             f"{self.img_size}x{self.img_size}")
        x = self.proj(x).flatten(2).transpose(1, 2)
        return self.norm(x) if self.norm is not None else x


class SwinTransformerSys(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        c = cfg
        L = c.num_layers
        self.num_classes, self.num_layers, self.embed_dim, self.ape = c.num_classes, L, c.embed_dim, c.ape
        self.patch_embed = PatchEmbed(c.img_size, c.patch_size, c.in_chans, c.embed_dim, c.patch_norm)
        P = c.patches_resolution
        self.patches_resolution = [P, P]
        if c.ape:
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, P * P, c.embed_dim))
            nn.init.trunc_normal_(self.absolute_pos_embed, std=0.02)
        res = lambda s: (P // 2 ** s, P // 2 ** s)  # noqa: E731
        self.layers = nn.ModuleList([
            BasicLayer(c.dim(s), res(s), c.depths[s], c.num_heads[s], c.window_size, c.mlp_ratio, c.qkv_bias,
                       c.qk_scale, downsample=s < L - 1) for s in range(L)])
        self.layers_up = nn.ModuleList()
        self.concat_back_dim = nn.ModuleList()
        for i in range(L):
            s = L - 1 - i
            self.concat_back_dim.append(nn.Linear(2 * c.dim(s), c.dim(s)) if i > 0 else nn.Identity())
            if i == 0:
                self.layers_up.append(PatchExpand(res(s), c.dim(s)))
            else:
                self.layers_up.append(BasicLayer_up(c.dim(s), res(s), c.depths[s], c.num_heads[s], c.window_size,
                                                    c.mlp_ratio, c.qkv_bias, c.qk_scale, upsample=i < L - 1))
        self.norm = nn.LayerNorm(c.dim(L - 1))
        self.norm_up = nn.LayerNorm(c.embed_dim)
        self.up = FinalPatchExpand_X4((P, P), c.embed_dim)
        self.output = nn.Conv2d(c.embed_dim, c.num_classes, kernel_size=1, bias=False)

    def forward_features(self, x):
        """Encoder and bottleneck; each stage's input is kept as a skip."""
        x = self.patch_embed(x)
        if self.ape:
            x = x + self.absolute_pos_embed
        skips = []
        for layer in self.layers:
            skips.append(x)
            x = layer(x)
        return self.norm(x), skips

    def forward_up_features(self, x, skips):
        """Decoder: layers_up.i (i > 0) takes [x, skip of stage L-1-i] through concat_back_dim.i."""
        for i, layer_up in enumerate(self.layers_up):
            if i > 0:
                x = self.concat_back_dim[i](torch.cat([x, skips[self.num_layers - 1 - i]], -1))
            x = layer_up(x)
        return self.norm_up(x)

    def up_x4(self, x):
        """Tokens of the patch grid -> x4 expansion -> 1x1 conv head, [B, classes, 4P, 4P]."""
        P = self.patches_resolution[0]
        x = self.up(x)
        x = x.view(x.shape[0], 4 * P, 4 * P, -1).permute(0, 3, 1, 2)
        return self.output(x)

    def forward(self, x):
        x, skips = self.forward_features(x)
        return self.up_x4(self.forward_up_features(x, skips))


class SwinUnet(nn.Module):
    """The original wrapper: a 1-channel slice is repeated to 3 channels."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.swin_unet = SwinTransformerSys(cfg)

    def forward(self, x):
        if x.size(1) == 1:
            x = x.repeat(1, 3, 1, 1)
        return self.swin_unet(x)


@torch.no_grad()
def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Fills every parameter of `model` (a SwinUnet or any of its parts) with
    seeded random values at scales that keep the activations O(1), so that a
    test exercises each of them: Linear/Conv2d weights N(0, 1/fan_in) (std
    1/sqrt(fan_in)), their biases N(0, 0.1^2); LayerNorm gains 1 + N(0, 0.1^2)
    and biases N(0, 0.1^2); relative position bias tables N(0, 0.5^2); the
    absolute position embedding N(0, 0.1^2). The C++ random models
    (src/model/random.cpp) use the same scales."""
    g = torch.Generator().manual_seed(seed)

    def normal(p, std, mean=0.0):
        p.copy_(torch.randn(p.shape, generator=g) * std + mean)

    for m in model.modules():
        for name, p in m.named_parameters(recurse=False):
            if isinstance(m, nn.LayerNorm) and name == "weight":
                normal(p, 0.1, 1.0)
            elif isinstance(m, (nn.Linear, nn.Conv2d)) and name == "weight":
                normal(p, 1 / math.sqrt(p[0].numel()))
            elif name == "relative_position_bias_table":
                normal(p, 0.5)
            else:  # biases, absolute_pos_embed
                normal(p, 0.1)
    return model
