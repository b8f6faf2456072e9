"""A random-weight Swin-Unet-T in swinrt's format and one generated 224x224
CT-like slice (smooth organ-like blobs over a body ellipse, intensities in
[0, 1] as the Synapse preprocessing leaves them), for benchmarks and plan
checks (scripts/gpu-check.sh). The README's main job is swinrt.demo.

    python -m swinrt.demo_inputs --out DIR
"""
import argparse
import os

import numpy as np

from .config import ModelConfig
from .model import SwinUnet, randomize_
from .weights import save_safetensors


def ct_like_slice(size=224, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size - 0.5
    img = np.where((xx / 0.45) ** 2 + (yy / 0.35) ** 2 < 1, 0.35, 0.0)  # body
    for _ in range(6):  # organs: soft ellipses of their own intensity
        cy, cx = rng.uniform(-0.2, 0.2, 2)
        ry, rx = rng.uniform(0.04, 0.12, 2)
        img += rng.uniform(0.1, 0.4) * np.exp(-(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2) ** 2)
    img += rng.normal(0, 0.02, img.shape)
    return np.clip(img, 0, 1).astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    weights = os.path.join(a.out, "swin_unet_t.safetensors")
    if not os.path.exists(weights):
        cfg = ModelConfig()
        save_safetensors(randomize_(SwinUnet(cfg), a.seed), cfg, weights, source="random (swinrt.demo_inputs)")
    np.save(os.path.join(a.out, "slice.npy"), ct_like_slice(seed=a.seed))
    print(f"wrote {weights} and {os.path.join(a.out, 'slice.npy')}")


if __name__ == "__main__":
    main()
