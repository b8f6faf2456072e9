"""Shared helpers of the Python tests: named configs (the same as the C++
named_config) and random-weight reference models saved as swinrt files."""
import dataclasses

import torch

from swinrt.config import ModelConfig
from swinrt.model import SwinUnet, randomize_
from swinrt.weights import save_safetensors

CONFIGS = {
    # Swin-Unet-T as trained on Synapse.
    "swin-t": ModelConfig(),
    # embed 48, window 8 at 256x256, 4 classes.
    "w8": ModelConfig(img_size=256, embed_dim=48, window_size=8, num_classes=4),
    # ape=True, no qkv bias, an explicit qk_scale, uneven depths.
    "ape": ModelConfig(img_size=64, embed_dim=24, num_heads=[1, 2, 4, 8], window_size=4, num_classes=5, ape=True,
                       qkv_bias=False, qk_scale=0.25, depths=[2, 1, 2, 2]),
    "tiny": ModelConfig(img_size=64, embed_dim=24, num_heads=[1, 2, 4, 8], window_size=4, num_classes=5),
}


def config(name, **changes):
    return dataclasses.replace(CONFIGS[name], **changes)


def random_model(cfg, seed=0):
    torch.manual_seed(seed)
    return randomize_(SwinUnet(cfg), seed).eval()


def saved_model(tmp_path, cfg, seed=0, dtype="fp32", name="model.safetensors"):
    model = random_model(cfg, seed)
    path = tmp_path / name
    save_safetensors(model, cfg, str(path), dtype)
    return model, path
