#!/usr/bin/env python3
"""Writes the reference cases of tests/cpp/ops_test.cpp: each op of the CPU
backend on small inputs, with its expected output computed by the PyTorch
reference modules (python/swinrt/model.py). One folder per case:
meta.json (the case's parameters) and one .npy per tensor.

    python tests/gen_op_cases.py OUT_DIR
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

from swinrt.model import (FinalPatchExpand_X4, PatchEmbed, PatchExpand, PatchMerging,  # noqa: E402
                          SwinTransformerBlock, randomize_)


class Zero(torch.nn.Module):
    def forward(self, x):
        return torch.zeros_like(x)


def save(out, name, meta, **tensors):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f)
    for k, v in tensors.items():
        np.save(os.path.join(d, k + ".npy"), v.detach().float().contiguous().numpy())


@torch.no_grad()
def main(out):
    torch.manual_seed(0)
    # LayerNorm over rows of several widths.
    for C in (24, 96, 100):
        ln = randomize_(torch.nn.LayerNorm(C))
        x = torch.randn(7, C) * 3 + 1
        save(out, f"layernorm_C{C}", {"C": C}, x=x, weight=ln.weight, bias=ln.bias, expected=ln(x))
    # Linear with each epilogue.
    lin = randomize_(torch.nn.Linear(24, 40))
    x, y0 = torch.randn(13, 24), torch.randn(13, 40)
    save(out, "linear_M13_K24_N40", {"M": 13, "K": 24, "N": 40}, x=x, y0=y0, weight=lin.weight, bias=lin.bias,
         store=lin(x), gelu=torch.nn.functional.gelu(lin(x)), accumulate=y0 + lin(x))
    # Swin blocks: W-MSA and SW-MSA, square windows of 4, 7 and 8, odd heads.
    for res, dim, heads, window, shift, B in ((8, 24, 2, 4, 0, 2), (8, 24, 2, 4, 2, 2), (7, 96, 3, 7, 0, 1),
                                              (14, 48, 3, 7, 3, 1), (16, 32, 2, 8, 4, 1)):
        blk = SwinTransformerBlock(dim, (res, res), heads, window, shift, 4.0, True, None)
        randomize_(blk, res + shift)
        x = torch.randn(B, res * res, dim)
        qkv = blk.attn.qkv(blk.norm1(x))
        # The attention core alone (between qkv and proj, back in token order):
        # the block with proj as identity and the MLP branch silenced.
        proj, mlp = blk.attn.proj, blk.mlp
        blk.attn.proj, blk.mlp = torch.nn.Identity(), Zero()
        core = blk(x) - x
        blk.attn.proj, blk.mlp = proj, mlp
        params = {n.replace(".", "_"): p for n, p in blk.named_parameters()}
        meta = {"B": B, "res": res, "dim": dim, "heads": heads, "window": blk.window_size, "shift": blk.shift_size,
                "scale": blk.attn.scale, "hidden": blk.mlp.fc1.out_features}
        save(out, f"swinblock_r{res}_c{dim}_h{heads}_w{window}_s{shift}", meta, x=x, qkv=qkv, core=core,
             expected=blk(x), **params)
    # PatchMerging, PatchExpand, FinalPatchExpand_X4 + the 1x1 head, PatchEmbed.
    pm = randomize_(PatchMerging((8, 8), 24), 1)
    x = torch.randn(2, 64, 24)
    save(out, "patch_merging_r8_c24", {"B": 2, "res": 8, "dim": 24}, x=x, norm_weight=pm.norm.weight,
         norm_bias=pm.norm.bias, reduction_weight=pm.reduction.weight, expected=pm(x))
    pe = randomize_(PatchExpand((4, 4), 48), 2)
    x = torch.randn(2, 16, 48)
    save(out, "patch_expand_r4_c48", {"B": 2, "res": 4, "dim": 48}, x=x, expand_weight=pe.expand.weight,
         norm_weight=pe.norm.weight, norm_bias=pe.norm.bias, expected=pe(x))
    fe = randomize_(FinalPatchExpand_X4((4, 4), 24), 3)
    head = randomize_(torch.nn.Conv2d(24, 5, 1, bias=False), 4)
    x = torch.randn(1, 16, 24)
    logits = head(fe(x).view(1, 16, 16, 24).permute(0, 3, 1, 2))
    save(out, "final_expand_r4_c24_k5", {"res": 4, "dim": 24, "classes": 5}, x=x, expand_weight=fe.expand.weight,
         norm_weight=fe.norm.weight, norm_bias=fe.norm.bias, head_weight=head.weight.view(5, 24), expected=logits)
    emb = randomize_(PatchEmbed(32, 4, 3, 24, True), 5)
    img = torch.rand(2, 1, 32, 32)
    save(out, "patch_embed_s32_p4_c24", {"B": 2, "img": 32, "patch": 4, "dim": 24}, img=img,
         folded_weight=emb.proj.weight.sum(1).view(24, 16), proj_bias=emb.proj.bias, norm_weight=emb.norm.weight,
         norm_bias=emb.norm.bias, expected=emb(img.repeat(1, 3, 1, 1)))
    print(f"wrote op cases to {out}")


if __name__ == "__main__":
    main(sys.argv[1])
