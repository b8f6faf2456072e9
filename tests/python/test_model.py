"""The PyTorch reference model: the original's parameter count, state_dict
names and shifted-window semantics (checked against a naive computation)."""
import pytest
import torch

from helpers import config, random_model
from swinrt.config import ModelConfig
from swinrt.model import (PatchExpand, PatchMerging, SwinUnet, randomize_, relative_position_index,
                          shift_attention_mask)

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
    print(f"Swin-Unet-T: {n} parameters")
    assert n == 27_168_900  # the paper's 27.17 M; the original code builds the same
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
    assert not any(k.startswith("swin_unet.layers_up.0.blocks") for k in sd)  # layers_up.0 is a PatchExpand
    assert sd["swin_unet.output.weight"].shape == (9, 96, 1, 1)
    assert sd["swin_unet.concat_back_dim.1.weight"].shape == (384, 768)
    assert sd["swin_unet.layers_up.1.upsample.expand.weight"].shape == (768, 384)
    assert sd["swin_unet.up.expand.weight"].shape == (1536, 96)
    assert sd["swin_unet.layers.0.blocks.1.attn.relative_position_bias_table"].shape == (169, 3)
    assert sd["swin_unet.layers.0.blocks.1.attn_mask"].shape == (64, 49, 49)
    # Shifted blocks are the odd ones, and only where the grid exceeds the window.
    masks = sorted(k for k in sd if k.endswith("attn_mask"))
    assert masks == [f"swin_unet.{p}.blocks.1.attn_mask" for p in
                     ("layers.0", "layers.1", "layers.2", "layers_up.1", "layers_up.2", "layers_up.3")]
    params = dict(SwinUnet(ModelConfig(ape=True, patch_norm=False, qkv_bias=False)).named_parameters())
    assert params["swin_unet.absolute_pos_embed"].shape == (1, 56 * 56, 96)
    assert "swin_unet.patch_embed.norm.weight" not in params
    assert "swin_unet.layers.0.blocks.0.attn.qkv.bias" not in params


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


def test_randomize_sets_every_parameter():
    model = SwinUnet(config("ape"))
    before = {k: p.clone() for k, p in model.named_parameters()}
    randomize_(model, 1)
    for k, p in model.named_parameters():
        assert not torch.equal(p, before[k]), k
        assert torch.isfinite(p).all() and p.std() > 0, k
    ln = model.swin_unet.layers[0].blocks[0].norm1.weight
    assert abs(ln.mean().item() - 1) < 0.1
    again = randomize_(SwinUnet(config("ape")), 1)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), again.parameters()))  # seeded


@torch.no_grad()
def test_one_channel_input_is_repeated_and_output_shape():
    cfg = config("tiny")
    model = random_model(cfg, 2)
    x = torch.randn(2, 1, 64, 64)
    y = model(x)
    assert y.shape == (2, cfg.num_classes, 64, 64)
    torch.testing.assert_close(y, model(x.repeat(1, 3, 1, 1)), rtol=0, atol=0)
    with pytest.raises(ValueError, match="64x64"):
        model(torch.randn(1, 3, 32, 32))


@pytest.mark.parametrize("depths,heads", [([2, 2], [2, 4]), ([1, 2, 1], [1, 2, 4]), ([2, 2, 2, 2], [1, 2, 4, 8])])
@torch.no_grad()
def test_decoder_takes_the_mirrored_skip(depths, heads):
    """concat_back_dim.i gets [x, input of encoder stage L-1-i] for any number of stages."""
    cfg = ModelConfig(img_size=64, embed_dim=24, depths=depths, num_heads=heads, window_size=4, num_classes=3)
    net = random_model(cfg, 4).swin_unet
    L = cfg.num_layers
    seen = {}
    hooks = [net.layers[s].register_forward_pre_hook(lambda m, a, s=s: seen.__setitem__(("enc", s), a[0]))
             for s in range(L)]
    hooks += [net.concat_back_dim[i].register_forward_pre_hook(lambda m, a, i=i: seen.__setitem__(("cat", i), a[0]))
              for i in range(1, L)]
    net(torch.randn(1, 3, 64, 64))
    for h in hooks:
        h.remove()
    for i in range(1, L):
        d = cfg.dim(L - 1 - i)
        cat = seen[("cat", i)]
        assert cat.shape[-1] == 2 * d
        torch.testing.assert_close(cat[..., d:], seen[("enc", L - 1 - i)], rtol=0, atol=0)


@torch.no_grad()
def test_patch_merging_and_expand_token_order():
    """PatchMerging concatenates (0,0), (1,0), (0,1), (1,1) neighbours (row, col);
    PatchExpand puts channel group p1*2+p2 at (2h+p1, 2w+p2)."""
    H = W = 4
    C = 3
    x = torch.randn(1, H * W, C)
    pm = PatchMerging((H, W), C)
    pm.norm, pm.reduction = torch.nn.Identity(), torch.nn.Identity()
    y = pm(x).view(H // 2, W // 2, 4 * C)
    grid = x.view(H, W, C)
    for i in range(H // 2):
        for j in range(W // 2):
            want = torch.cat([grid[2 * i, 2 * j], grid[2 * i + 1, 2 * j], grid[2 * i, 2 * j + 1],
                              grid[2 * i + 1, 2 * j + 1]])
            assert torch.equal(y[i, j], want)
    pe = PatchExpand((H, W), 2 * C)
    pe.expand, pe.norm = torch.nn.Identity(), torch.nn.Identity()
    x = torch.randn(1, H * W, 4 * C)
    y = pe(x).view(2 * H, 2 * W, C)
    grid = x.view(H, W, 2, 2, C)
    for h in range(H):
        for w in range(W):
            for p1 in range(2):
                for p2 in range(2):
                    assert torch.equal(y[2 * h + p1, 2 * w + p2], grid[h, w, p1, p2])


def test_block_windows_and_shifts_follow_the_config():
    for cfg in (ModelConfig(), config("tiny"), ModelConfig(window_size=14)):
        net = SwinUnet(cfg).swin_unet
        L = cfg.num_layers
        stages = [(s, net.layers[s]) for s in range(L)] + [(L - 1 - i, net.layers_up[i]) for i in range(1, L)]
        for s, layer in stages:
            for j, blk in enumerate(layer.blocks):
                assert (blk.window_size, blk.shift_size) == (cfg.window(s), cfg.shift(s, j)), (cfg, s, j)
                assert (blk.attn_mask is not None) == (cfg.shift(s, j) > 0)
