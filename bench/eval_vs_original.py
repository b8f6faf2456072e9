#!/usr/bin/env python3
"""The whole evaluation of one 512x512xD volume with eight organ-shaped
classes: the original protocol (test.py's inference() with
utils.test_single_volume: scipy zoom, the PyTorch reference model of
python/swinrt/model.py on CUDA when present, else the CPU, medpy) against
`swinrt eval`, on the same machine in one run. The model is a random-weight
Swin-Unet-T (the original's defaults: 224x224, embed 96, depths 2-2-2-2).

    python bench/eval_vs_original.py [--depth 100] [--swinrt build/release/swinrt] \\
        [--devices cuda,cpu] [--repeat 3] [--orig-repeat 1] [--json out.json]

`swinrt eval` is timed as a whole process (start, weights, engine, reading,
everything), and by its own progress line (the case from its inference to its
metrics: no start-up, no weights, no engine creation); medians over --repeat
runs. The original is timed
from reading the case to its last metric, model already on the device (the
median of --orig-repeat runs; medpy makes one run minutes long on a CPU).
Needs torch, numpy, scipy, h5py, medpy and safetensors (PYTHONPATH may carry
the last two). On a CPU-only machine, --depth 4 makes a quick check.
"""
import argparse
import json
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np
import scipy.ndimage as ndi
import torch
from medpy.metric import binary

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "bench"))

from pipeline_vs_python import organs  # noqa: E402
from swinrt.config import ModelConfig  # noqa: E402
from swinrt.model import SwinUnet, randomize_  # noqa: E402
from swinrt.weights import save_safetensors  # noqa: E402


def percase(pred, gt):
    """utils.calculate_metric_percase of the original."""
    pred[pred > 0] = 1
    gt[gt > 0] = 1
    if pred.sum() > 0 and gt.sum() > 0:
        return binary.dc(pred, gt), binary.hd95(pred, gt)
    if pred.sum() > 0:
        return 1, 0
    return 0, 0


def original_protocol(net, device, path, classes, S):
    """test_single_volume on one case; returns per-class metrics and the
    seconds spent in each step."""
    t = dict(read=0.0, zoom=0.0, network=0.0, metrics=0.0)
    t0 = time.perf_counter()
    with h5py.File(path, "r") as f:
        image, label = f["image"][:], f["label"][:]
    t["read"] = time.perf_counter() - t0
    prediction = np.zeros_like(label)
    for ind in range(image.shape[0]):
        t0 = time.perf_counter()
        slc = image[ind, :, :]
        x, y = slc.shape
        if x != S or y != S:
            slc = ndi.zoom(slc, (S / x, S / y), order=3)
        t1 = time.perf_counter()
        inp = torch.from_numpy(slc).unsqueeze(0).unsqueeze(0).float().to(device)
        with torch.no_grad():
            out = torch.argmax(torch.softmax(net(inp), dim=1), dim=1).squeeze(0).cpu().numpy()
        t2 = time.perf_counter()
        prediction[ind] = ndi.zoom(out, (x / S, y / S), order=0) if (x != S or y != S) else out
        t3 = time.perf_counter()
        t["zoom"] += (t1 - t0) + (t3 - t2)
        t["network"] += t2 - t1
    t0 = time.perf_counter()
    metrics = [percase(prediction == c, label == c) for c in range(1, classes)]
    t["metrics"] = time.perf_counter() - t0
    return metrics, t


def write_case(path, D, seed):
    """A Synapse-like test volume: image normalised to [0, 1], organs
    slightly brighter than the background, float32 labels 0..8."""
    label = organs((D, 512, 512), seed).astype(np.float32)
    rng = np.random.default_rng(seed)
    image = np.clip(0.3 + 0.04 * label + 0.1 * rng.standard_normal(label.shape), 0, 1).astype(np.float32)
    with h5py.File(path, "w") as f:
        f["image"] = image
        f["label"] = label


def run_swinrt(binary_path, weights, vol, device, batch, out_json):
    """Seconds of the whole process, seconds of the case as swinrt reports it
    (its progress line: inference to metrics, no start-up), and its banner."""
    cmd = [binary_path, "eval", "--weights", str(weights), "--volume-path", str(vol), "--device", device,
           "--batch", str(batch), "--json", str(out_json)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"swinrt eval --device {device} failed ({r.returncode}):\n{r.stderr}")
    m = re.search(r"^case\w+: \d+ slices, ([\d.]+) s$", r.stderr, re.M)
    lines = r.stderr.strip().splitlines()
    return seconds, float(m.group(1)) if m else float("nan"), lines[0] if lines else ""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--depth", type=int, default=100, help="slices of the volume (100: the issue's figure)")
    ap.add_argument("--swinrt", default=os.environ.get("SWINRT_BIN", str(ROOT / "build/release/swinrt")))
    ap.add_argument("--devices", default=None,
                    help="swinrt eval devices, comma-separated (default: cuda,cpu where torch sees a GPU, else cpu)")
    ap.add_argument("--torch-device", default=None, help="device of the original (default: cuda if available)")
    ap.add_argument("--repeat", type=int, default=3, help="swinrt runs per device (median)")
    ap.add_argument("--orig-repeat", type=int, default=1, help="runs of the original (median)")
    ap.add_argument("--batch", type=int, default=8, help="swinrt eval --batch")
    ap.add_argument("--workdir", default=None, help="keep the volume and model here (default: a temporary directory)")
    ap.add_argument("--json", default=None, help="write the figures here")
    a = ap.parse_args()

    has_cuda = torch.cuda.is_available()
    devices = (a.devices or ("cuda,cpu" if has_cuda else "cpu")).split(",")
    torch_device = a.torch_device or ("cuda" if has_cuda else "cpu")
    # Strict FP32 for the reference, as swinrt's default precision (PyTorch
    # runs convolutions in TF32 on the GPU unless told not to).
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if not (os.path.isfile(a.swinrt) and os.access(a.swinrt, os.X_OK)):
        sys.exit(f"{a.swinrt}: the swinrt binary is not there (build it, or give --swinrt / SWINRT_BIN)")

    tmp = pathlib.Path(a.workdir or tempfile.mkdtemp(prefix="swinrt-evalbench-"))
    try:
        vol = tmp / "vol"
        (vol / "lists_Synapse").mkdir(parents=True, exist_ok=True)
        case = "case0001"
        write_case(vol / f"{case}.npy.h5", a.depth, seed=0)
        (vol / "lists_Synapse" / "test_vol.txt").write_text(case + "\n")
        cfg = ModelConfig(num_classes=9).validate()  # Swin-Unet-T, the original's defaults
        torch.manual_seed(0)
        net = randomize_(SwinUnet(cfg), seed=0).eval()
        weights = tmp / "swin-t.safetensors"
        save_safetensors(net, cfg, str(weights), source="bench/eval_vs_original.py (random weights)")
        net = net.to(torch_device)

        # The original protocol: one warm-up slice (CUDA context, kernels), then timed runs.
        with torch.no_grad():
            net(torch.zeros(1, 1, cfg.img_size, cfg.img_size, device=torch_device))
        orig_runs, orig_steps, orig_metrics = [], [], None
        for _ in range(a.orig_repeat):
            t0 = time.perf_counter()
            orig_metrics, steps = original_protocol(net, torch_device, vol / f"{case}.npy.h5", cfg.num_classes,
                                                    cfg.img_size)
            orig_runs.append(time.perf_counter() - t0)
            orig_steps.append(steps)
        orig = statistics.median(orig_runs)

        rows = [("original (scipy + torch + medpy)", torch_device, orig, orig_runs)]
        agreement = {}
        banners = {}
        for dev in devices:
            times, case_times = [], []
            for _ in range(a.repeat):
                s, cs, banner = run_swinrt(a.swinrt, weights, vol, dev, a.batch, tmp / f"eval_{dev}.json")
                times.append(s)
                case_times.append(cs)
                banners[dev] = banner
            rows.append(("swinrt eval (whole process)", dev, statistics.median(times), times))
            rows.append(("swinrt eval (the case, no start-up)", dev, statistics.median(case_times), case_times))
            doc = json.loads((tmp / f"eval_{dev}.json").read_text())["cases"][case]
            same = sum(1 for c in range(1, cfg.num_classes)
                       if (doc[str(c)]["dice"], doc[str(c)]["hd95"]) == tuple(map(float, orig_metrics[c - 1])))
            worst = max(abs(doc[str(c)]["dice"] - orig_metrics[c - 1][0]) for c in range(1, cfg.num_classes))
            agreement[dev] = dict(identical_classes=same, max_dice_diff=worst)
    finally:
        if not a.workdir:
            shutil.rmtree(tmp, ignore_errors=True)

    gpu = torch.cuda.get_device_name(0) if has_cuda else "none"
    print(f"volume 512x512x{a.depth}, 8 organ classes, Swin-Unet-T (random weights); GPU: {gpu}; "
          f"{os.cpu_count()} CPU threads")
    step = orig_steps[len(orig_steps) // 2]
    print("original, per step (s): " + ", ".join(f"{k} {v:.2f}" for k, v in step.items()))
    for dev, banner in banners.items():
        print(f"swinrt {dev}: {banner}")
    print(f"\n{'protocol':38s} {'device':>6s} {'median s':>10s} {'runs':>5s} {'speed-up':>9s}")
    for name, dev, sec, runs in rows:
        print(f"{name:38s} {dev:>6s} {sec:10.3f} {len(runs):5d} {orig / sec:8.1f}x")
    for dev, ag in agreement.items():
        print(f"swinrt {dev} vs original: {ag['identical_classes']}/8 classes with identical (dice, hd95); "
              f"max |dice difference| {ag['max_dice_diff']:.3g} (argmax near-ties may flip pixels)")
    if a.json:
        out = dict(depth=a.depth, gpu=gpu, original=dict(device=torch_device, seconds=orig_runs, steps=orig_steps),
                   swinrt=[dict(what=name, device=dev, seconds=runs) for name, dev, sec, runs in rows[1:]],
                   agreement=agreement)
        pathlib.Path(a.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
