"""The PyTorch reference model: the original's parameter count, state_dict
names and shifted-window semantics (checked against a naive computation)."""
import torch

from helpers import config, random_model
from swinrt.config import ModelConfig
from swinrt.model import SwinUnet, relative_position_index, shift_attention_mask

# Keys of a checkpoint saved by the original Swin-Unet training code.
ORIGINAL_KEYS = [
    "swin_unet.patch_embed.proj.weight",
    "swin_unet.patch_embed.proj.bias",
    "swin_unet.patch_embed.norm.weight",
    "swin_unet.layers.0.blocks.1.attn.relative_position_bias_table",
    "swin_unet.layers.0.blocks.1.attn.relative_position_index",
    "swin_unet.layers.0.blocks.1.attn_mask",
    "swin_unet.layers.0.blocks.0.attn.qkv.weight",
    "swin_unet.layers.2.downsample.reduction.weight",
    "swin_unet.layers.2.downsample.norm.bias",
    "swin_unet.norm.weight",
    "swin_unet.layers_up.0.expand.weight",
    "swin_unet.layers_up.0.norm.weight",
    "swin_unet.layers_up.1.blocks.0.mlp.fc1.weight",
    "swin_unet.layers_up.1.upsample.expand.weight",
    "swin_unet.layers_up.3.blocks.1.attn_mask",
    "swin_unet.concat_back_dim.1.weight",
    "swin_unet.concat_back_dim.3.bias",
    "swin_unet.norm_up.weight",
    "swin_unet.up.expand.weight",
    "swin_unet.up.norm.weight",
    "swin_unet.output.weight",
]


def test_swin_unet_t_has_the_published_parameter_count():
    n = sum(p.numel() for p in SwinUnet(ModelConfig()).parameters())
    assert n == 27_168_900  # the paper's 27.17 M
    assert round(n / 1e6, 2) == 27.17


def test_state_dict_names_match_the_original():
    sd = SwinUnet(ModelConfig()).state_dict()
    for k in ORIGINAL_KEYS:
        assert k in sd, k
    # The deepest stage (7x7 grid, window 7) has no shift, hence no mask buffer,
    # and layers_up.3 (the last decoder stage) has no upsample.
    assert not any(k.startswith("swin_unet.layers.3.") and "attn_mask" in k for k in sd)
    assert not any(k.startswith("swin_unet.layers_up.3.upsample") for k in sd)
    assert "swin_unet.concat_back_dim.0.weight" not in sd
    assert sd["swin_unet.output.weight"].shape == (9, 96, 1, 1)


def naive_shifted_block_attention(block, x):
    """One SwinTransformerBlock's attention branch, token by token from the
    definitions: roll, windows, bias from coordinates, mask from regions."""
    H, W = block.input_resolution
    B, L, C = x.shape
    s, w, h = block.shift_size, block.window_size, block.attn.num_heads
    d = C // h
    y = block.norm1(x).view(B, H, W, C)
    rolled = torch.roll(y, shifts=(-s, -s), dims=(1, 2))
    out = torch.zeros_like(rolled)
    table = block.attn.relative_position_bias_table

    def region(v, n):
        return 0 if v < n - w else (1 if v < n - s else 2)

    for b in range(B):
        for wy in range(H // w):
            for wx in range(W // w):
                coords = [(wy * w + i, wx * w + j) for i in range(w) for j in range(w)]
                t = torch.stack([rolled[b, yy, xx] for yy, xx in coords])  # N, C
                qkv = block.attn.qkv(t).view(len(coords), 3, h, d)
                res = torch.zeros(len(coords), C)
                for head in range(h):
                    q = qkv[:, 0, head] * block.attn.scale
                    k, v = qkv[:, 1, head], qkv[:, 2, head]
                    att = q @ k.T
                    for i, (yi, xi) in enumerate(coords):
                        for j, (yj, xj) in enumerate(coords):
                            dy, dx = (yi - yj) + w - 1, (xi - xj) + w - 1
                            att[i, j] += table[dy * (2 * w - 1) + dx, head]
                            if s > 0 and (region(yi, H), region(xi, W)) != (region(yj, H), region(xj, W)):
                                att[i, j] += -100.0
                    res[:, head * d:(head + 1) * d] = att.softmax(-1) @ v
                res = block.attn.proj(res)
                for n, (yy, xx) in enumerate(coords):
                    out[b, yy, xx] = res[n]
    return torch.roll(out, shifts=(s, s), dims=(1, 2)).reshape(B, L, C)


@torch.no_grad()
def test_shifted_window_block_matches_a_naive_computation():
    cfg = config("tiny")
    model = random_model(cfg, 3)
    block = model.swin_unet.layers[0].blocks[1]  # 16x16 grid, window 4, shift 2
    assert block.shift_size == 2
    x = torch.randn(2, 16 * 16, cfg.embed_dim)
    mid = x + naive_shifted_block_attention(block, x)
    expected = mid + block.mlp(block.norm2(mid))
    torch.testing.assert_close(block(x), expected, atol=1e-5, rtol=1e-5)


def test_relative_position_index_and_mask_buffers():
    idx = relative_position_index(3)
    assert idx.shape == (9, 9) and idx.min() == 0 and idx.max() == 24
    assert idx[0, 0] == 12  # zero offset: the table's centre
    mask = shift_attention_mask(8, 8, 4, 2)
    assert mask.shape == (4, 16, 16)
    assert (mask[0] == 0).all()  # the top-left window is one region
    assert set(mask.unique().tolist()) == {0.0, -100.0}
