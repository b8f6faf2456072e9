"""Times the evaluation pipeline's CPU parts against the original Python
protocol's (scipy.ndimage.zoom, medpy) on one 512x512xD volume, in one run.

    python bench/pipeline_vs_python.py [--depth 100] [--repeat 5] [--probe PATH]

The probe (tests/pipeline_probe.cpp, built with the tests) times only the
computation, as this script does for scipy and medpy: no process start, no
file I/O. Prints medians and ratios; docs/EVALUATION.md quotes the output.
"""

import argparse
import os
import pathlib
import statistics
import subprocess
import tempfile
import time

import numpy as np
import scipy.ndimage as ndi
from medpy.metric import binary

ROOT = pathlib.Path(__file__).resolve().parents[1]


def organs(shape, seed, jitter=0.0):
    """Eight ellipsoid organs of Synapse-like sizes; `jitter` moves them."""
    rng = np.random.default_rng(seed)
    d, h, w = shape
    zz, yy, xx = np.ogrid[:d, :h, :w]
    lab = np.zeros(shape, np.int64)
    centers = [(.5, .45, .3), (.4, .5, .7), (.6, .6, .5), (.3, .35, .45), (.55, .3, .6), (.45, .65, .35),
               (.5, .5, .5), (.7, .4, .4)]
    radii = [(.25, .12, .1), (.2, .08, .1), (.15, .06, .05), (.1, .04, .04), (.2, .1, .12), (.12, .05, .07),
             (.3, .03, .03), (.1, .06, .05)]
    for c, (ctr, rad) in enumerate(zip(centers, radii), 1):
        off = rng.normal(0, jitter, 3) if jitter else np.zeros(3)
        m = sum(((g - (q + o) * n) / (r * n)) ** 2 for g, q, o, r, n in zip((zz, yy, xx), ctr, off, rad, shape)) < 1
        lab[m] = c
    return lab


def timed(f, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def probe_ms(probe, *args):
    out = subprocess.run([probe, *map(str, args)], capture_output=True, text=True, check=True).stdout
    return float(out.split("median_ms")[1].split()[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--medpy-repeat", type=int, default=1, help="medpy is slow: runs per class")
    ap.add_argument("--probe", default=os.environ.get("SWINRT_PROBE",
                                                      str(ROOT / "build/release/tests/swinrt_pipeline_probe")))
    a = ap.parse_args()
    D, S = a.depth, 224
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        image = rng.random((D, 512, 512)).astype(np.float32)
        np.save(tmp / "img.npy", image)
        py = timed(lambda: [ndi.zoom(s, (S / 512, S / 512), order=3) for s in image], a.repeat)
        cc = probe_ms(a.probe, "zoom", tmp / "img.npy", tmp / "z.npy", "--order", 3, "--shape", f"{S},{S}",
                      "--repeat", a.repeat)
        rows.append((f"zoom order 3, {D} slices 512x512 -> 224x224", py, cc))

        labels = rng.integers(0, 9, (D, S, S)).astype(np.int64)
        np.save(tmp / "lab.npy", labels)
        py = timed(lambda: [ndi.zoom(s, (512 / S, 512 / S), order=0) for s in labels], a.repeat)
        cc = probe_ms(a.probe, "zoom", tmp / "lab.npy", tmp / "z0.npy", "--order", 0, "--shape", "512,512",
                      "--repeat", a.repeat)
        rows.append((f"zoom order 0, {D} slices 224x224 -> 512x512", py, cc))

        gt, pred = organs((D, 512, 512), 0), organs((D, 512, 512), 1, jitter=0.01)
        np.save(tmp / "gt.npy", gt)
        np.save(tmp / "pred.npy", pred)
        p1, g1 = (pred == 1), (gt == 1)
        np.save(tmp / "p1.npy", p1.astype(np.uint8))
        np.save(tmp / "g1.npy", g1.astype(np.uint8))
        py = timed(lambda: binary.hd95(p1, g1), a.medpy_repeat)
        cc = probe_ms(a.probe, "hd95", tmp / "p1.npy", tmp / "g1.npy", "--repeat", a.repeat)
        rows.append((f"hd95, one organ (class 1) in {D}x512x512", py, cc))

        def all_classes():
            for c in range(1, 9):
                p, g = pred == c, gt == c
                if p.any() and g.any():
                    binary.dc(p, g)
                    binary.hd95(p, g)

        py = timed(all_classes, a.medpy_repeat)
        cc = probe_ms(a.probe, "evaluate", tmp / "pred.npy", tmp / "gt.npy", "--classes", 9, "--repeat", a.repeat)
        rows.append((f"dc + hd95, classes 1..8 of {D}x512x512 (one case)", py, cc))

    print(f"{'step':56s} {'scipy/medpy ms':>15s} {'swinrt ms':>10s} {'ratio':>8s}")
    for name, py, cc in rows:
        print(f"{name:56s} {py:15.1f} {cc:10.1f} {py / cc:7.1f}x")
    total_py = sum(r[1] for r in rows if not r[0].startswith("hd95"))
    total_cc = sum(r[2] for r in rows if not r[0].startswith("hd95"))
    print(f"{'protocol without the network (both zooms + metrics)':56s} {total_py:15.1f} {total_cc:10.1f} "
          f"{total_py / total_cc:7.1f}x")


if __name__ == "__main__":
    main()
