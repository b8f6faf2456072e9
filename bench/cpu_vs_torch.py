#!/usr/bin/env python3
"""swinrt's CPU backend against the PyTorch reference on the same CPU, in one
run: Swin-Unet-T, 224x224, FP32, median milliseconds per slice over the
iterations, at each batch size.

    python bench/cpu_vs_torch.py --swinrt build/release/swinrt --batch 1,8 --iterations 5
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import torch  # noqa: E402

from swinrt.config import ModelConfig  # noqa: E402
from swinrt.model import SwinUnet, randomize_  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--swinrt", default="build/release/swinrt")
    ap.add_argument("--batch", default="1,8")
    ap.add_argument("--iterations", type=int, default=5)
    a = ap.parse_args()
    batches = [int(b) for b in a.batch.split(",")]
    threads = os.cpu_count()
    torch.set_num_threads(threads)
    model = randomize_(SwinUnet(ModelConfig()), 0).eval()
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "r.json")
        subprocess.run([a.swinrt, "bench", "--random", "swin-t", "--device", "cpu", "--precision", "fp32", "--batch",
                        a.batch, "--warmup", "1", "--iterations", str(a.iterations), "--json", out], check=True,
                       stdout=subprocess.DEVNULL)
        ours = json.load(open(out))["fp32"]
    print(f"CPU, {threads} threads, Swin-Unet-T 224x224 fp32, ms per slice (median of {a.iterations})")
    print(f"{'batch':>5} {'PyTorch':>10} {'swinrt':>10} {'speed-up':>9}")
    for b in batches:
        x = torch.rand(b, 1, 224, 224)
        times = []
        with torch.inference_mode():
            model(x)
            for _ in range(a.iterations):
                t0 = time.perf_counter()
                model(x)
                times.append((time.perf_counter() - t0) * 1000 / b)
        times.sort()
        t = times[len(times) // 2]
        s = ours[str(b)]["median_ms"] / b
        print(f"{b:>5} {t:>10.1f} {s:>10.1f} {t / s:>8.2f}x")


if __name__ == "__main__":
    main()
