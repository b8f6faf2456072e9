#!/usr/bin/env python3
"""The PyTorch peer of `swinrt bench --compare`: times the project's PyTorch
reference model (python/swinrt/model.py) on the same GPU, in the modes users
run it: eager, eager replayed as a CUDA graph, and torch.compile
(mode="reduce-overhead"). Medians of CUDA-event timings, milliseconds per
batch, written as JSON {precision: {batch: {mode: ms}}}.

    python bench/torch_peer.py --config-json '{"img_size": 224, ...}' \
        --batch 1,32 --precision fp16 --json out.json
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import torch  # noqa: E402

from swinrt.config import ModelConfig  # noqa: E402
from swinrt.model import SwinUnet, randomize_  # noqa: E402

DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def median_ms(fn, warmup, iterations):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iterations):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def time_modes(model, x, modes, warmup, iterations):
    out = {}
    with torch.inference_mode():
        if "eager" in modes:
            out["eager"] = median_ms(lambda: model(x), warmup, iterations)
        if "graph" in modes:
            static_x = x.clone()
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(3):
                    model(static_x)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                model(static_x)
            out["graph"] = median_ms(graph.replay, warmup, iterations)
    if "compile" in modes:
        compiled = torch.compile(model, mode="reduce-overhead")
        with torch.inference_mode():
            for _ in range(5):
                compiled(x)
            out["compile"] = median_ms(lambda: compiled(x), warmup, iterations)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config-json", required=True)
    ap.add_argument("--batch", default="1")
    ap.add_argument("--precision", default="fp16")
    ap.add_argument("--modes", default="eager,graph,compile")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    cfg = ModelConfig.from_json(a.config_json)
    modes = a.modes.split(",")
    results = {}
    for prec in a.precision.split(","):
        torch.backends.cuda.matmul.allow_tf32 = prec == "tf32"
        torch.backends.cudnn.allow_tf32 = prec == "tf32"
        model = SwinUnet(cfg)
        randomize_(model, 0)
        model = model.cuda().eval().to(DTYPES[prec])
        results[prec] = {}
        for b in (int(v) for v in a.batch.split(",")):
            x = torch.rand(b, 1, cfg.img_size, cfg.img_size, device="cuda", dtype=DTYPES[prec])
            results[prec][str(b)] = time_modes(model, x, modes, a.warmup, a.iterations)
            print(f"torch {prec} batch {b}: " + ", ".join(f"{m} {t:.3f} ms" for m, t in results[prec][str(b)].items()),
                  file=sys.stderr, flush=True)
        torch._dynamo.reset()
    with open(a.json, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
